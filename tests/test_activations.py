"""jaxlayers.activations against keras.activations (Keras 3, JAX backend)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras  # noqa: E402
from jaxlayers import activations as A  # noqa: E402

# Values around every kink of the catalogue, a dense grid, and extremes.
GRID = np.concatenate([
    np.linspace(-50.0, 50.0, 201),
    [-1e4, -88.0, -6.0, -3.0, -1.0, -0.5, 0.0, 1e-7, 0.5, 1.0, 3.0, 6.0, 88.0, 1e4],
]).astype(np.float32)
# Kink-free points for gradients (no 0, +-0.5, +-1, +-3, 6, ...), plus extremes.
GRAD_GRID = np.concatenate([
    -50.0 + 100.0 * (np.arange(200) + 0.5) / 200.0 + 0.01,
    [-1e4, -1e3, -88.0, 88.0, 1e3, 1e4],
]).astype(np.float32)

# (name, kwargs): every elementwise activation with several argument settings (the aliases swish
# and hard_swish are the same functions as silu and hard_silu: see test_get_aliases_and_passthrough).
ELEMENTWISE = [
    ("relu", {}),
    ("relu", {"negative_slope": 0.1}),
    ("relu", {"max_value": 6.0}),
    ("relu", {"max_value": 3.5}),
    ("relu", {"threshold": 2.0}),
    ("relu", {"threshold": -1.0}),
    ("relu", {"negative_slope": 0.1, "max_value": 4.0}),
    ("relu", {"negative_slope": 0.25, "threshold": 1.5}),
    ("relu", {"max_value": 3.0, "threshold": 1.0}),
    ("relu", {"max_value": 3.0, "threshold": -1.0}),
    ("relu", {"negative_slope": 0.3, "max_value": 5.0, "threshold": 2.0}),
    ("relu", {"negative_slope": 0.3, "max_value": 6.0, "threshold": -2.0}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.3}),
    ("relu6", {}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("celu", {}),
    ("celu", {"alpha": 0.5}),
    ("gelu", {}),  # approximate=False
    ("gelu", {"approximate": True}),
    ("sigmoid", {}),
    ("hard_sigmoid", {}),
    ("sparse_sigmoid", {}),
    ("log_sigmoid", {}),
    ("silu", {}),
    ("hard_silu", {}),
    ("softplus", {}),
    ("softsign", {}),
    ("squareplus", {}),
    ("squareplus", {"b": 1.0}),
    ("sparse_plus", {}),
    ("mish", {}),
    ("tanh", {}),
    ("tanh_shrink", {}),
    ("hard_tanh", {}),
    ("hard_shrink", {}),
    ("hard_shrink", {"threshold": 2.0}),
    ("soft_shrink", {}),
    ("soft_shrink", {"threshold": 2.0}),
    ("threshold", {"threshold": 1.0, "default_value": -5.0}),
    ("threshold", {"threshold": -3.0, "default_value": 2.5}),
    ("linear", {}),
    ("exponential", {}),
]
# exp overflows by design; everything else must have finite gradients at extreme inputs too.
NO_LARGE_GRAD = {"exponential"}


def _ids(cases):
    return [f"{n}-{','.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in cases]


def _close(ours, ref, scale=1.0):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    # atol 1e-6 relative to the magnitude of the values compared (inputs reach 1e4); `scale`
    # may be one number or one per element
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(ours - ref) <= 2e-6 * np.abs(ref) + 1e-6 * np.asarray(scale))
    bad &= ~((ours == ref) | (np.isnan(ours) & np.isnan(ref)))   # equal infinities, nans
    assert not bad.any(), (f"{bad.sum()} of {bad.size} differ: ours {ours[bad][:5]}, "
                           f"Keras {ref[bad][:5]}")


def _ours_and_keras(compute, *args):
    """`(compute(jaxlayers.activations, *args), compute(keras.activations, *args))` as numpy trees,
    from one compiled program (Keras traced under rank promotion "allow").

    Compiling is what costs here: one program for both sides (XLA merges what they share), with
    LLVM optimisations off, is several times cheaper than dispatching hundreds of small ops
    eagerly; the numerics are unaffected."""

    def both(*args):
        ours = compute(A, *args)
        with jax.numpy_rank_promotion("allow"):
            ref = compute(keras.activations, *args)
        return ours, ref

    lowered = jax.jit(both).lower(*args)
    try:
        compiled = lowered.compile({"xla_backend_optimization_level": 0})
    except Exception:  # an XLA without that option
        compiled = lowered.compile()
    return jax.tree.map(np.asarray, compiled(*args))


def _elementwise_values_and_grads(module, x, gx):
    """Every case's values on `x` and derivatives on `gx`."""
    vals = [getattr(module, n)(x, **kw) for n, kw in ELEMENTWISE]
    grads = [jax.grad(lambda v, n=n, kw=kw: jnp.sum(getattr(module, n)(v, **kw)))(gx) for n, kw in ELEMENTWISE]
    return vals, grads


@pytest.fixture(scope="module")
def elementwise():
    return _ours_and_keras(_elementwise_values_and_grads, jnp.asarray(GRID), jnp.asarray(GRAD_GRID))


@pytest.mark.parametrize("i", range(len(ELEMENTWISE)), ids=_ids(ELEMENTWISE))
def test_elementwise_matches_keras(elementwise, i):
    name, kw = ELEMENTWISE[i]
    (vals, _), (ref_vals, _) = elementwise
    ours, ref = vals[i], ref_vals[i]
    assert ours.dtype == np.float32
    if name == "exponential":  # exp(1e4) overflows to inf in both
        assert np.array_equal(np.isinf(ours), np.isinf(ref))
    _close(ours, ref)


@pytest.mark.parametrize("i", range(len(ELEMENTWISE)), ids=_ids(ELEMENTWISE))
def test_elementwise_gradient_finite_and_matches_keras(elementwise, i):
    name, kw = ELEMENTWISE[i]
    (_, grads), (_, ref_grads) = elementwise
    ours, ref = grads[i], ref_grads[i]
    must_be_finite = np.abs(GRAD_GRID) < 80 if name in NO_LARGE_GRAD else np.ones(GRAD_GRID.shape, bool)
    bad = must_be_finite & ~np.isfinite(ours)
    assert not bad.any(), f"{name}{kw}: non-finite gradient at {GRAD_GRID[bad]}"
    finite = np.isfinite(ref) & must_be_finite
    # float32 rounding of a derivative of x * f(x) grows with |x| (e.g. approximate gelu's
    # 1 + tanh(u) cancels near u = -14, where both sides are ~8e-6 off the true ~5e-13)
    _close(ours[finite], ref[finite], scale=np.maximum(1.0, np.abs(GRAD_GRID[finite])))


def test_stable_functions_at_extremes_exact_values(elementwise, axis_results):
    (vals, grads), _ = elementwise
    out = {n: vals[i] for i, (n, kw) in enumerate(ELEMENTWISE) if not kw}
    dout = {n: grads[i] for i, (n, kw) in enumerate(ELEMENTWISE) if not kw}
    at = [int(np.flatnonzero(GRID == v)[0]) for v in (-1e4, -88.0, 88.0, 1e4)]
    gat = [int(np.flatnonzero(GRAD_GRID == v)[0]) for v in (-1e4, -88.0, 88.0, 1e4)]
    # exp(-88) is (nearly) subnormal: flushed to zero or kept, both fine
    np.testing.assert_allclose(out["softplus"][at], [0.0, 6.05e-39, 88.0, 1e4], rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(out["log_sigmoid"][at], [-1e4, -88.0, 0.0, 0.0], rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(out["mish"][at], [0.0, 0.0, 88.0, 1e4], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(out["elu"][at], [-1.0, -1.0, 88.0, 1e4], rtol=1e-6)
    np.testing.assert_allclose(out["selu"][at], [-1.7580993, -1.7580993, 92.46168, 10507.01], rtol=1e-6)
    np.testing.assert_allclose(out["sigmoid"][at], [0.0, 6.05e-39, 1.0, 1.0], rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(dout["log_sigmoid"][gat], [1.0, 1.0, 0.0, 0.0], atol=1e-30)
    np.testing.assert_allclose(dout["softplus"][gat], [0.0, 0.0, 1.0, 1.0], atol=1e-37)
    np.testing.assert_allclose(dout["mish"][gat], [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    # softmax rows of huge logits (rows 4 and 5 of MATRIX)
    (avals, _), _ = axis_results
    i = AXIS_CASES.index(next(c for c in AXIS_CASES if c[0] == "softmax" and c[2] == {"axis": -1}))
    j = AXIS_CASES.index(next(c for c in AXIS_CASES if c[0] == "log_softmax" and c[2] == {"axis": -1}))
    np.testing.assert_allclose(avals[i][4:], [[1, 0, 0, 0, 0, 0], [1 / 6] * 6], rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(avals[j][4:], [[0, -2e4, -1e4, -1e4, -1e4, -2e4], [-np.log(6)] * 6],
                               rtol=1e-6)


def test_relu_semantics_by_hand():
    x = jnp.asarray([-10.0, -5.0, -0.5, 0.0, 5.0, 10.0])
    np.testing.assert_array_equal(A.relu(x), [0, 0, 0, 0, 5, 10])
    np.testing.assert_array_equal(A.relu(x, negative_slope=0.5), [-5, -2.5, -0.25, 0, 5, 10])
    np.testing.assert_array_equal(A.relu(x, max_value=5.0), [0, 0, 0, 0, 5, 5])
    # strictly greater: x == threshold gives 0
    np.testing.assert_array_equal(A.relu(x, threshold=5.0), [0, 0, 0, 0, 0, 10])
    # below the threshold: negative_slope * (x - threshold)
    np.testing.assert_allclose(
        A.relu(x, negative_slope=0.1, threshold=5.0), [-1.5, -1.0, -0.55, -0.5, 0.0, 10.0]
    )
    # negative threshold keeps values in (threshold, 0] ... unless max_value clips them to 0 (Keras)
    np.testing.assert_array_equal(A.relu(x, threshold=-1.0), [0, 0, -0.5, 0, 5, 10])
    np.testing.assert_array_equal(A.relu(x, threshold=-1.0, max_value=6.0), [0, 0, 0, 0, 5, 6])
    np.testing.assert_allclose(A.hard_sigmoid(jnp.asarray([-4.0, -3.0, 0.0, 1.5, 3.0])), [0, 0, 0.5, 0.75, 1])
    np.testing.assert_allclose(A.leaky_relu(jnp.asarray([-1.0, 2.0])), [-0.2, 2.0])
    np.testing.assert_array_equal(A.threshold(x, 0.0, -7.0), [-7, -7, -7, -7, 5, 10])


MATRIX = np.array(
    [[0.1, -2.0, 3.0, 50.0, -50.0, 0.0],
     [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
     [-88.0, 88.0, 0.5, -0.5, 2.0, -3.0],
     [1e3, -1e3, 4.0, 2.0, 0.0, -1.0],
     [1e4, -1e4, 0.0, 0.0, 0.0, -1e4],
     [-1e4, -1e4, -1e4, -1e4, -1e4, -1e4]],
    np.float32,
)


RNG = np.random.default_rng(0)
CUBE = (RNG.normal(size=(2, 3, 4)) * 10).astype(np.float32)
SPARSE_ONE = MATRIX[:5] * 10  # per row and per column, a one-element support (where Keras is right)
SPARSE_ONE[1] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
# (name, input, kwargs) for the functions that act along an axis
AXIS_CASES = (
    [(n, MATRIX, {"axis": a}) for n in ("softmax", "log_softmax", "glu") for a in (0, -1)]
    + [("glu", MATRIX, {"axis": 1})]
    + [(n, CUBE, {"axis": (0, 2)}) for n in ("softmax", "log_softmax")]
    + [("sparsemax", SPARSE_ONE, {"axis": a}) for a in (0, -1)]
)


def _weighted_sum(y):
    """A scalar whose gradient exercises every output (a plain sum of a softmax is constant)."""
    return jnp.sum(y * jnp.cos(jnp.arange(y.size, dtype=y.dtype)).reshape(y.shape))


def _axis_values_and_grads(module, xs):
    vals, grads = [], []
    for (n, _, kw), x in zip(AXIS_CASES, xs):
        f = getattr(module, n)
        vals.append(f(x, **kw))
        grads.append(jax.grad(lambda v, f=f, kw=kw: _weighted_sum(f(v, **kw)))(x))
    return vals, grads


@pytest.fixture(scope="module")
def axis_results():
    return _ours_and_keras(_axis_values_and_grads, [jnp.asarray(x) for _, x, _ in AXIS_CASES])


@pytest.mark.parametrize("i", range(len(AXIS_CASES)),
                         ids=[f"{n}-{x.shape}-{kw}" for n, x, kw in AXIS_CASES])
def test_axis_functions_match_keras(axis_results, i):
    name, x, kw = AXIS_CASES[i]
    (vals, grads), (ref_vals, ref_grads) = axis_results
    _close(vals[i], ref_vals[i])
    assert np.all(np.isfinite(vals[i])) and np.all(np.isfinite(grads[i]))
    _close(grads[i], ref_grads[i])
    if name == "softmax":
        axis = kw.get("axis", -1)
        np.testing.assert_allclose(vals[i].sum(axis=axis), 1.0, rtol=1e-6)
    if name == "glu":
        assert vals[i].shape[kw["axis"]] == x.shape[kw["axis"]] // 2


def test_stable_functions_at_extremes_exact_values():
    x = jnp.asarray([-1e4, -100.0, 100.0, 1e4], jnp.float32)
    # exp(-100) is subnormal: flushed to zero or kept, both fine
    np.testing.assert_allclose(A.softplus(x), [0.0, 0.0, 100.0, 1e4], rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(A.log_sigmoid(x), [-1e4, -100.0, 0.0, 0.0], rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(A.mish(x), [0.0, 0.0, 100.0, 1e4], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(A.elu(x), [-1.0, -1.0, 100.0, 1e4], rtol=1e-6)
    np.testing.assert_allclose(A.sigmoid(x), [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    g = jax.grad(lambda v: jnp.sum(A.log_sigmoid(v)))(x)
    np.testing.assert_allclose(g, [1.0, 1.0, 0.0, 0.0], atol=1e-30)
    g = jax.grad(lambda v: jnp.sum(A.softplus(v)))(x)
    np.testing.assert_allclose(g, [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    m = jnp.asarray([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    np.testing.assert_allclose(A.softmax(m), [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(A.log_softmax(m), [[0.0, -2e4, -1e4], [-np.log(3)] * 3], rtol=1e-6)


def test_relu_semantics_by_hand():
    x = jnp.asarray([-10.0, -5.0, -0.5, 0.0, 5.0, 10.0])
    np.testing.assert_array_equal(A.relu(x), [0, 0, 0, 0, 5, 10])
    np.testing.assert_array_equal(A.relu(x, negative_slope=0.5), [-5, -2.5, -0.25, 0, 5, 10])
    np.testing.assert_array_equal(A.relu(x, max_value=5.0), [0, 0, 0, 0, 5, 5])
    # strictly greater: x == threshold gives 0
    np.testing.assert_array_equal(A.relu(x, threshold=5.0), [0, 0, 0, 0, 0, 10])
    # below the threshold: negative_slope * (x - threshold)
    np.testing.assert_allclose(
        A.relu(x, negative_slope=0.1, threshold=5.0), [-1.5, -1.0, -0.55, -0.5, 0.0, 10.0]
    )
    # negative threshold keeps values in (threshold, 0] ... unless max_value clips them to 0 (Keras)
    np.testing.assert_array_equal(A.relu(x, threshold=-1.0), [0, 0, -0.5, 0, 5, 10])
    np.testing.assert_array_equal(A.relu(x, threshold=-1.0, max_value=6.0), [0, 0, 0, 0, 5, 6])
    np.testing.assert_allclose(A.hard_sigmoid(jnp.asarray([-4.0, -3.0, 0.0, 1.5, 3.0])), [0, 0, 0.5, 0.75, 1])
    np.testing.assert_allclose(A.leaky_relu(jnp.asarray([-1.0, 2.0])), [-0.2, 2.0])
    np.testing.assert_allclose(A.threshold(x, 0.0, -7.0), [-7, -7, -7, -7, 5, 10])


def test_glu_by_hand_and_rejects_odd():
    y = A.glu(jnp.asarray(MATRIX), axis=0)
    assert y.shape == (3, 6)
    b = np.clip(MATRIX[3:].astype(np.float64), -500, 500)
    np.testing.assert_allclose(y, MATRIX[:3] / (1 + np.exp(-b)), rtol=1e-6, atol=1e-30)
    with pytest.raises(ValueError, match="even"):
        A.glu(jnp.ones((3, 5)))


def _sparsemax_reference(z, axis):
    """Projection onto the simplex by bisection on tau (independent of the sort-based algorithm)."""
    z = np.moveaxis(np.asarray(z, np.float64), axis, -1)
    lo = z.max(-1, keepdims=True) - 1.0
    hi = z.max(-1, keepdims=True)
    for _ in range(200):
        mid = (lo + hi) / 2
        s = np.maximum(z - mid, 0).sum(-1, keepdims=True)
        lo, hi = np.where(s > 1, mid, lo), np.where(s > 1, hi, mid)
    return np.moveaxis(np.maximum(z - (lo + hi) / 2, 0), -1, axis)


def test_sparsemax_is_the_simplex_projection():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 7)).astype(np.float32) * np.array([[0.1], [0.5], [1.0], [3.0], [10.0]], np.float32)
    # Keras 3.15 has a bug (keras-team/keras#23425): its threshold is wrong when the support has
    # more than one element (it returns [0, 0, 0.25] for the first textbook row below)
    textbook = np.array([[0.0, 0.5, 1.0], [1.0, 0.8, 0.0]], np.float32)
    y0, y1, t = jax.jit(lambda v, w: (A.sparsemax(v, axis=0), A.sparsemax(v, axis=-1), A.sparsemax(w)))(
        jnp.asarray(x), jnp.asarray(textbook))
    for axis, y in ((0, np.asarray(y0)), (-1, np.asarray(y1))):
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-5)
        assert np.all(y >= 0)
        np.testing.assert_allclose(y, _sparsemax_reference(x, axis), atol=2e-6)
    np.testing.assert_allclose(t, [[0.0, 0.25, 0.75], [0.6, 0.4, 0.0]], atol=1e-7)
    # Keras' own test input (a one-element support, where Keras is right)
    x = np.linspace(1, 12, num=12).reshape(-1, 2).astype(np.float32)
    np.testing.assert_allclose(_sparsemax_reference(x, 0)[-1], [1.0, 1.0])


def test_dtypes():
    # bfloat16 stays bfloat16, integers become the default float (checked by tracing, no compile)
    for name, kw in ELEMENTWISE:
        f = getattr(A, name)
        bf16 = jax.eval_shape(lambda v: f(v, **kw), jax.ShapeDtypeStruct((3,), jnp.bfloat16))
        assert bf16.dtype == jnp.bfloat16 and bf16.shape == (3,), name
        if name != "linear":
            assert jax.eval_shape(lambda v: f(v, **kw), jax.ShapeDtypeStruct((3,), jnp.int32)).dtype == jnp.float32, name
    for name, axis in [("softmax", 0), ("log_softmax", -1), ("glu", 0), ("sparsemax", 1)]:
        out = jax.eval_shape(lambda v: getattr(A, name)(v, axis=axis), jax.ShapeDtypeStruct((4, 6), jnp.bfloat16))
        assert out.dtype == jnp.bfloat16, name
    y = A.gelu(jnp.asarray([-1.5, 0.25, 2.0], jnp.bfloat16))
    np.testing.assert_allclose(np.asarray(y, np.float32), [-0.100199, 0.149677, 1.954500], rtol=1e-2)


# ---------------------------------------------------------------------------------------------- get


def test_names_match_keras_catalogue():
    from keras.src.activations import ALL_OBJECTS_DICT

    assert set(A.names()) == set(ALL_OBJECTS_DICT)
    assert A.names() == tuple(sorted(A.ALL))
    assert len(A.names()) == 32


def test_get_by_name():
    for name in A.names():
        assert A.get(name) is A.ALL[name] is getattr(A, name)


def test_get_aliases_and_passthrough():
    assert A.get("swish") is A.silu
    assert A.get("hard_swish") is A.hard_silu
    assert A.get(None) is A.linear
    fn = lambda x: 2 * x  # noqa: E731
    assert A.get(fn) is fn
    assert A.get(jnp.tanh) is jnp.tanh
    with pytest.raises(TypeError):
        A.ALL["new"] = fn  # read-only


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown activation 'rellu'.*Valid names: celu, elu, .*threshold") as e:
        A.get("rellu")
    for name in A.names():
        assert name in str(e.value)
    with pytest.raises(ValueError, match="relu"):
        A.get(3)


@pytest.mark.parametrize("fn", [A.hard_silu, A.hard_swish])
def test_hard_silu_value_and_gradient_are_finite_at_infinities(fn):
    x = jnp.array([-jnp.inf, -4.0, -3.0, -1.0, 0.0, 2.0, 3.0, 5.0, jnp.inf])
    np.testing.assert_allclose(fn(x), [0, 0, 0, -1 / 3, 0, 5 / 3, 3, 5, jnp.inf])
    grads = jax.vmap(jax.grad(fn))(x)
    assert np.all(np.isfinite(grads))
    np.testing.assert_allclose(np.asarray(grads)[[0, 1, 3, 4, 7, 8]], [0, 0, 1 / 6, 0.5, 1, 1])
