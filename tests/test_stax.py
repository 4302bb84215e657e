"""jaxlayers.stax against jax.example_libraries.stax itself: names, signatures, shapes,
params (exact, same key), outputs, the usual stax programs, and mixing with jaxlayers."""
import inspect

import jax
import jax.example_libraries.stax as ref
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlayers as jl
from jaxlayers import stax

KEY = jax.random.key(0)
RNG = jax.random.key(7)


@pytest.fixture(autouse=True)
def partitionable(request):
    """Run with ``jax_threefry_partitionable=False`` unless a test asks for the default.

    With the default (True), XLA:CPU takes ~2.5 s of CPU to compile each random draw of
    rank >= 3 (every conv kernel); both stax and jaxlayers.stax draw through the same
    jax.random calls, so the equivalence holds under either setting.
    """
    with jax.threefry_partitionable(getattr(request, "param", False)):
        yield


def public(module):
    return {n for n in dir(module) if not n.startswith("_")}


def allow():
    """stax relies on rank promotion (``x @ W + b``); the suite sets it to "raise"."""
    return jax.numpy_rank_promotion("allow")


def tree_equal(a, b):
    """Same pytree structure (lists stay lists, tuples tuples) and bit-equal leaves."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert u.shape == v.shape and u.dtype == v.dtype
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def make_inputs(shape, seed=1):
    """Standard normal float32 inputs (numpy-made: no XLA compile per shape)."""
    if all(isinstance(d, int) for d in shape):
        return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)
    return [make_inputs(s, seed + i) for i, s in enumerate(shape)]


# --------------------------------------------------------------------------- names


def test_every_public_name_of_stax_is_here():
    assert public(ref) <= public(stax)
    assert public(ref) <= set(stax.__all__)
    assert set(stax.__all__) <= public(stax)


def test_star_import_gives_the_same_names():
    ours, theirs = {}, {}
    exec("from jaxlayers.stax import *", ours)
    exec("from jax.example_libraries.stax import *", theirs)
    assert set(ours) - {"__builtins__"} == set(theirs) - {"__builtins__"}


@pytest.mark.parametrize("name", ["relu", "log_softmax", "logsoftmax", "softmax", "softplus",
                                  "sigmoid", "elu", "leaky_relu", "selu", "gelu", "standardize",
                                  "glorot_normal", "glorot", "normal", "randn", "ones", "zeros",
                                  "jnp", "lax", "random", "math", "functools"])
def test_reexported_functions_and_initializers_are_stax_ones(name):
    assert getattr(stax, name) is getattr(ref, name)


CONSTRUCTORS = ["Dense", "GeneralConv", "Conv", "Conv1DTranspose", "ConvTranspose",
                "GeneralConvTranspose", "BatchNorm", "elementwise", "MaxPool", "SumPool",
                "AvgPool", "FanOut", "FanInConcat", "Dropout", "serial", "parallel",
                "shape_dependent"]
INSTANCES = ["Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus", "Sigmoid", "Elu",
             "LeakyRelu", "Selu", "Gelu", "Flatten", "Identity", "FanInSum"]


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_constructor_signatures_match(name):
    ours = inspect.signature(getattr(stax, name)).parameters
    theirs = inspect.signature(getattr(ref, name)).parameters
    assert list(ours) == list(theirs)
    for p, q in zip(ours.values(), theirs.values()):
        assert p.kind == q.kind
        if not callable(q.default):
            assert p.default == q.default, (p, q)
        else:
            assert callable(p.default)


@pytest.mark.parametrize("name", INSTANCES)
def test_prebuilt_layers_are_layers_like_stax_pairs(name):
    layer = getattr(stax, name)
    assert isinstance(layer, jl.Layer)
    assert len(layer) == len(getattr(ref, name)) == 2
    init_fun, apply_fun = layer
    assert layer[0] is init_fun and layer[1] is apply_fun


# --------------------------------------------------------------------------- equivalence

# (id, build(module) -> layer, input shape (a list of shapes for fan-in), apply with rng)
CONFIGS = [
    ("Dense", lambda m: m.Dense(5), (3, 4), False),
    ("Dense-3d-inits", lambda m: m.Dense(2, W_init=m.normal(), b_init=m.zeros), (2, 3, 4), False),
    ("Conv", lambda m: m.Conv(4, (3, 3)), (2, 7, 7, 3), False),
    ("Conv-strided-same", lambda m: m.Conv(4, (3, 2), (2, 1), "SAME"), (2, 7, 6, 3), False),
    ("Conv-explicit-pad", lambda m: m.Conv(3, (2, 2), padding=((1, 0), (0, 2))), (2, 5, 5, 2),
     False),
    ("Conv-inits", lambda m: m.Conv(3, (1, 1), W_init=m.ones, b_init=m.normal(1.0)),
     (2, 4, 4, 2), False),
    ("GeneralConv-NCHW", lambda m: m.GeneralConv(("NCHW", "OIHW", "NCHW"), 4, (3, 3), (2, 2),
                                                 "SAME"), (2, 3, 9, 9), False),
    ("GeneralConv-HWCN", lambda m: m.GeneralConv(("HWCN", "OIHW", "NHWC"), 4, (3, 3), (2, 2),
                                                 "SAME"), (9, 8, 3, 2), False),
    ("GeneralConv-1d", lambda m: m.GeneralConv(("NWC", "WIO", "NWC"), 3, (3,)), (2, 8, 2), False),
    ("GeneralConv-3d", lambda m: m.GeneralConv(("NDHWC", "DHWIO", "NDHWC"), 2, (2, 2, 2), (1, 2, 1)),
     (2, 4, 5, 4, 3), False),
    ("ConvTranspose", lambda m: m.ConvTranspose(4, (3, 3)), (2, 5, 5, 3), False),
    ("ConvTranspose-strided-same", lambda m: m.ConvTranspose(4, (3, 3), (2, 2), "SAME"),
     (2, 5, 4, 3), False),
    ("Conv1DTranspose", lambda m: m.Conv1DTranspose(3, (3,), (2,), "SAME"), (2, 6, 2), False),
    ("GeneralConvTranspose-NCHW", lambda m: m.GeneralConvTranspose(
        ("NCHW", "HWIO", "NCHW"), 2, (2, 3), (2, 1)), (2, 3, 4, 4), False),
    ("ConvTranspose-explicit-pad", lambda m: m.ConvTranspose(2, (3, 2), (2, 3),
                                                             ((0, 3), (2, 1))), (2, 4, 4, 3), False),
    ("GeneralConv-negative-pad", lambda m: m.GeneralConv(("NCHW", "HWIO", "NHWC"), 2, (2, 2),
                                                         padding=((-1, 1), (2, 0))), (2, 3, 5, 4),
     False),
    ("BatchNorm", lambda m: m.BatchNorm(), (4, 3, 3, 2), False),
    ("BatchNorm-axis0", lambda m: m.BatchNorm(axis=0), (5, 3), False),
    ("BatchNorm-no-center", lambda m: m.BatchNorm(axis=(0, 1), center=False), (4, 3, 2), False),
    ("BatchNorm-no-scale", lambda m: m.BatchNorm(axis=(0,), scale=False), (4, 3, 2), False),
    ("BatchNorm-neither", lambda m: m.BatchNorm(center=False, scale=False), (4, 2, 2, 3), False),
    ("BatchNorm-inits-eps", lambda m: m.BatchNorm(epsilon=1e-2, beta_init=m.normal(),
                                                  gamma_init=m.normal()), (4, 3, 3, 2), False),
    ("elementwise-sin", lambda m: m.elementwise(jnp.sin), (3, 4), False),
    ("elementwise-kwargs", lambda m: m.elementwise(m.leaky_relu, negative_slope=0.3), (3, 4),
     False),
    *[(n, lambda m, n=n: getattr(m, n), (3, 5), False) for n in
      ["Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus", "Sigmoid", "Elu", "LeakyRelu",
       "Selu", "Gelu"]],
    ("MaxPool", lambda m: m.MaxPool((2, 2)), (2, 6, 6, 3), False),
    ("MaxPool-strided-same", lambda m: m.MaxPool((3, 3), (2, 2), "SAME"), (2, 7, 6, 3), False),
    ("MaxPool-1d", lambda m: m.MaxPool((2,), (2,)), (2, 7, 3), False),
    ("SumPool", lambda m: m.SumPool((2, 2), (1, 2)), (2, 5, 6, 3), False),
    ("SumPool-same", lambda m: m.SumPool((3, 3), padding="SAME"), (2, 5, 5, 2), False),
    ("AvgPool", lambda m: m.AvgPool((2, 2)), (2, 6, 6, 3), False),
    ("AvgPool-strided-same", lambda m: m.AvgPool((3, 3), (2, 2), "SAME"), (2, 7, 5, 3), False),
    ("AvgPool-NCHW", lambda m: m.AvgPool((2, 2), (2, 2), "SAME", spec="NCHW"), (2, 3, 5, 5),
     False),
    ("MaxPool-HWCN-spec", lambda m: m.MaxPool((2, 2), spec="HWCN"), (6, 5, 3, 2), False),
    ("SumPool-HWCN-spec", lambda m: m.SumPool((2, 2), (2, 1), "SAME", spec="HWCN"), (5, 4, 3, 2),
     False),
    ("Flatten", lambda m: m.Flatten, (2, 3, 4, 5), False),
    ("Identity", lambda m: m.Identity, (2, 3), False),
    ("FanOut", lambda m: m.FanOut(3), (2, 4), False),
    ("FanInSum", lambda m: m.FanInSum, [(2, 4), (2, 4), (2, 4)], False),
    ("FanInConcat", lambda m: m.FanInConcat(), [(2, 4), (2, 3)], False),
    ("FanInConcat-axis1", lambda m: m.FanInConcat(axis=1), [(2, 4, 3), (2, 1, 3)], False),
    ("Dropout", lambda m: m.Dropout(0.7), (4, 6), True),
    ("Dropout-test-mode", lambda m: m.Dropout(0.7, mode="test"), (4, 6), True),
    ("serial", lambda m: m.serial(m.Dense(6), m.Relu, m.Dense(3), m.LogSoftmax), (3, 4), False),
    ("serial-conv", lambda m: m.serial(m.Conv(3, (3, 3), padding="SAME"), m.BatchNorm(), m.Relu,
                                       m.AvgPool((2, 2)), m.Flatten, m.Dense(2)), (2, 6, 6, 2),
     False),
    ("parallel", lambda m: m.parallel(m.Dense(3), m.Dense(2)), [(2, 4), (2, 5)], False),
    ("fan-out-in-sum", lambda m: m.serial(m.FanOut(2), m.parallel(
        m.Dense(3), m.serial(m.Dense(3), m.Relu)), m.FanInSum), (2, 4), False),
    ("fan-out-in-concat-dropout", lambda m: m.serial(m.Dense(5), m.FanOut(3), m.parallel(
        m.Dropout(0.5), m.Identity, m.serial(m.Dropout(0.8), m.Dense(2))), m.FanInConcat(),
        m.Dropout(0.9)), (3, 4), True),
    ("shape_dependent", lambda m: m.serial(m.Dense(4), m.shape_dependent(
        lambda s: m.serial(m.Dense(s[-1] + 1), m.Tanh))), (3, 2), False),
]


@pytest.mark.parametrize("build,shape,with_rng", [c[1:] for c in CONFIGS],
                         ids=[c[0] for c in CONFIGS])
def test_same_shapes_params_and_outputs_as_stax(build, shape, with_rng):
    ours, theirs = build(stax), build(ref)
    assert isinstance(ours, jl.Layer)
    kw = {"rng": RNG} if with_rng else {}
    x = make_inputs(shape)
    out_shape, params = ours[0](KEY, shape)
    y = ours[1](params, x, **kw)               # no rank promotion on our side
    with allow():
        ref_shape, ref_params = theirs[0](KEY, shape)
        y_ref = theirs[1](ref_params, x, **kw)
    assert out_shape == ref_shape
    tree_equal(params, ref_params)
    tree_equal(y, y_ref)


@pytest.mark.parametrize("name", ["Conv-strided-same"])
@pytest.mark.parametrize("partitionable", [True], indirect=True)
def test_same_numbers_with_the_default_prng_config(name, partitionable):
    build, shape, with_rng = next(c[1:] for c in CONFIGS if c[0] == name)
    kw = {"rng": RNG} if with_rng else {}
    ours, theirs = build(stax), build(ref)
    out_shape, params = ours[0](KEY, shape)
    x = make_inputs(shape)
    with allow():
        ref_shape, ref_params = theirs[0](KEY, shape)
        y_ref = theirs[1](ref_params, x, **kw)
    assert out_shape == ref_shape
    tree_equal(params, ref_params)
    tree_equal(ours[1](params, x, **kw), y_ref)


NO_POOL = [c for c in CONFIGS if "Pool" not in c[0] and "conv" not in c[0]
           and "HWCN" not in c[0] and "BatchNorm" not in c[0]]


def free_batch(shape):
    if all(isinstance(d, int) for d in shape):
        return (-1,) + tuple(shape[1:])
    return [free_batch(s) for s in shape]


@pytest.mark.parametrize("build,shape", [c[1:3] for c in NO_POOL], ids=[c[0] for c in NO_POOL])
def test_minus_one_batch_shapes_as_stax(build, shape):
    shape = free_batch(shape)

    def init_shapes(layer):
        shapes = []

        def init(key):
            out_shape, params = layer[0](key, shape)
            shapes.append(out_shape)
            return params
        params = jax.eval_shape(init, KEY)     # traced only: no compile
        return shapes[0], jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), params)

    out_shape, params = init_shapes(build(stax))
    with allow():
        ref_shape, ref_params = init_shapes(build(ref))
    assert out_shape == ref_shape
    assert params == ref_params


def test_free_batch_stays_free_through_pooling():
    # stax's reduce_window shape rule turns a -1 batch into 0; jaxlayers keeps it free.
    out, _ = stax.MaxPool((2, 2))[0](KEY, (-1, 6, 6, 3))
    assert out == (-1, 5, 5, 3)
    assert ref.MaxPool((2, 2))[0](KEY, (-1, 6, 6, 3))[0] == (0, 5, 5, 3)
    out, _ = stax.AvgPool((2, 2), spec="NCHW")[0](KEY, (None, 3, 6, None))
    assert out == (None, 3, 5, None)
    out, _ = stax.serial(stax.Conv(4, (3, 3), (2, 2)), stax.BatchNorm(axis=(0, 1, 2)))[0](
        KEY, (None, 9, None, 2))
    assert out == (None, 4, None, 4)


def test_shapes_are_static_plain_ints():
    out, _ = stax.Conv(4, (3, 3))[0](KEY, (2, 7, 7, 3))
    assert isinstance(out, jl.Shape) and all(type(d) is int for d in out)
    shapes = jax.jit(stax.serial(stax.Dense(3), stax.FanOut(2)).init, static_argnums=1)(
        KEY, (-1, 4))[0]
    assert shapes == [(-1, 3), (-1, 3)]


def test_serial_params_list_parallel_params_tuple_as_stax():
    _, p = stax.serial(stax.Dense(2), stax.Relu)[0](KEY, (1, 3))
    assert isinstance(p, list) and isinstance(p[0], tuple) and p[1] == ()
    _, p = stax.parallel(stax.Dense(2), stax.Relu)[0](KEY, [(1, 3), (1, 3)])
    assert isinstance(p, tuple)
    ys = stax.parallel(stax.Identity, stax.Identity)[1](((), ()), [jnp.ones(2), jnp.zeros(2)])
    assert isinstance(ys, list)


def test_dense_takes_unbatched_examples_as_stax_for_per_example_vmap():
    # stax's Dense works on one example (x @ W + b), so `vmap(apply, (None, 0))` is a
    # common stax idiom (per-example gradients); the native jl.Dense needs a batch axis.
    ours, theirs = stax.serial(stax.Dense(3), stax.Relu), ref.serial(ref.Dense(3), ref.Relu)
    shape, params = ours[0](KEY, (4,))
    ref_shape, ref_params = theirs[0](KEY, (4,))
    assert shape == ref_shape == (3,)
    tree_equal(params, ref_params)
    x = make_inputs((5, 4))
    with allow():
        tree_equal(ours[1](params, x[0]), theirs[1](ref_params, x[0]))
    per_example = jax.vmap(ours[1], (None, 0))(params, x)
    np.testing.assert_allclose(per_example, ours[1](params, x), rtol=1e-6)

    def loss(params, x):
        return jnp.sum(ours[1](params, x) ** 2)
    grads = jax.vmap(jax.grad(loss), (None, 0))(params, x)
    assert grads[0][0].shape == (5, 4, 3)
    np.testing.assert_allclose(grads[0][0][2], jax.grad(loss)(params, x[2])[0][0], rtol=1e-6)


def test_stax_initializers_called_with_key_and_shape_only():
    # stax calls W_init(key, shape): two-argument initializers work, as in stax
    seen = []

    def W_init(key, shape):
        seen.append(tuple(shape))
        return jnp.full(shape, 0.5)
    for m in (stax, ref):
        for layer, shape in [(m.Dense(3, W_init=W_init, b_init=lambda k, s: jnp.ones(s)), (2, 4)),
                             (m.GeneralConv(("NCHW", "OIHW", "NCHW"), 2, (3, 1), W_init=W_init,
                                            b_init=lambda k, s: jnp.ones(s)), (1, 4, 5, 5))]:
            _, (W, b) = layer[0](KEY, shape)
            assert float(W[0, 0, 0, 0] if W.ndim == 4 else W[0, 0]) == 0.5 and float(b.sum()) == b.size
    assert seen == [(4, 3), (2, 4, 3, 1)] * 2


def test_every_apply_keyword_reaches_raw_stax_children():
    # stax.serial forwards every apply keyword, so a custom stax layer may take its own
    def Scale():
        return (lambda rng, shape: (shape, ()),
                lambda params, x, *, factor=1.0, **kwargs: x * factor)
    model = stax.serial(stax.Dense(2), Scale(), stax.serial(Scale()), jl.Dense(2))
    _, params = model.init(KEY, (-1, 3))
    x = make_inputs((2, 3))
    hidden = stax.Dense(2).apply(params[0], x)
    tree_equal(model.apply(params, x), jl.Dense(2).apply(params[3], hidden))
    np.testing.assert_allclose(model.apply(params, x, factor=3.0, train=True),
                               jl.Dense(2).apply(params[3], 9.0 * hidden), rtol=1e-6)


def test_serial_constrain_and_penalty_keep_stax_containers():
    model = stax.serial(stax.Dense(2), jl.Dense(2, kernel_constraint="non_neg",
                                                kernel_regularizer="l2"))
    _, params = model.init(KEY, (-1, 3))
    constrained = model.constrain(params)
    assert isinstance(constrained, list) and isinstance(constrained[0], tuple)
    assert float(jnp.min(constrained[1]["kernel"])) >= 0
    tree_equal(constrained[0], params[0])
    np.testing.assert_allclose(model.penalty(params), 0.01 * jnp.sum(params[1]["kernel"] ** 2),
                               rtol=1e-6)


def test_a_mask_made_inside_stax_serial_reaches_the_layers_after_it():
    model = stax.serial(jl.Embedding(5, 3, mask_zero=True), jl.LSTM(2))
    _, params = model.init(KEY, (-1, 4))
    x = jnp.array([[1, 2, 0, 0], [3, 1, 2, 0]])
    native = jl.serial(jl.Embedding(5, 3, mask_zero=True), jl.LSTM(2))
    tree_equal(model.apply(params, x), native.apply(tuple(params), x))
    unmasked = jl.serial(jl.Embedding(5, 3), jl.LSTM(2)).apply(tuple(params), x)
    assert not np.allclose(model.apply(params, x), unmasked)


# --------------------------------------------------------------------------- stax's defects kept


def test_dropout_rate_is_the_keep_fraction_and_rng_is_always_needed():
    x = jnp.ones((200, 50))
    y = stax.Dropout(0.9)[1]((), x, rng=RNG)
    kept = float(jnp.mean(y != 0))
    assert 0.87 < kept < 0.93
    np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 1 / 0.9], rtol=1e-6)
    for mode in ("train", "test"):
        with pytest.raises(ValueError, match="PRNG key"):
            stax.Dropout(0.9, mode=mode)[1]((), x)
    # test mode (anything but 'train') returns the input, whatever `train` says
    tree_equal(stax.Dropout(0.5, mode="test").apply((), x, rng=RNG, train=True), x)
    # Native dropout: rate is the fraction dropped, rng only with train=True.
    tree_equal(jl.Dropout(0.9).apply((), x), x)
    kept = float(jnp.mean(jl.Dropout(0.9).apply((), x, rng=RNG, train=True) != 0))
    assert 0.07 < kept < 0.13


def test_batchnorm_uses_the_batch_statistics_even_for_one_example():
    _, params = stax.BatchNorm()[0](KEY, (-1, 2, 2, 3))
    x = jax.random.normal(KEY, (1, 2, 2, 3)) * 5 + 3
    y = stax.BatchNorm()[1](params, x)
    np.testing.assert_allclose(jnp.mean(y, (0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(y, (0, 1, 2)), 1, atol=1e-2)
    # no state: the layer is stateless and params hold only (beta, gamma)
    assert not stax.BatchNorm().stateful and len(params) == 2


def test_negative_batchnorm_axis_counts_from_the_end():
    _, p = stax.BatchNorm(axis=(0, -1))[0](KEY, (4, 3, 2))
    assert p[0].shape == (3,)
    x = make_inputs((4, 3, 2))
    with allow():
        _, rp = ref.BatchNorm(axis=(0, 2))[0](KEY, (4, 3, 2))
        tree_equal(stax.BatchNorm(axis=(0, -1))[1](p, x), ref.BatchNorm(axis=(0, 2))[1](rp, x))


# --------------------------------------------------------------------------- mixing with jaxlayers


def test_stax_layers_inside_jl_serial():
    model = jl.serial(stax.Dense(6), stax.Relu, jl.Dense(3), stax.Dropout(0.8), stax.LogSoftmax)
    out_shape, params = model.init(KEY, (None, 4))
    assert out_shape == (None, 3)
    x = make_inputs((5, 4))
    y = model.apply(params, x, rng=RNG, train=True)   # contract keywords reach stax layers
    assert y.shape == (5, 3)
    np.testing.assert_allclose(jnp.sum(jnp.exp(y), -1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match=r"Dropout\(0.8\).*PRNG key"):
        model.apply(params, x)                         # stax's Dropout: rng in every mode
    # params are stax's tuples for the stax layers, Keras dicts for the native one
    assert isinstance(params[0], tuple) and set(params[2]) == {"kernel", "bias"}


def test_native_layers_and_raw_stax_pairs_inside_stax_serial():
    raw = ref.serial(ref.Dense(5), ref.Relu, ref.Dense(2))
    mixed = stax.serial(ref.Dense(5), stax.Relu, ref.Dense(2))
    shape, params = mixed[0](KEY, (-1, 3))
    ref_shape, ref_params = raw[0](KEY, (-1, 3))
    assert shape == ref_shape
    tree_equal(params, ref_params)
    x = make_inputs((4, 3))
    with allow():
        tree_equal(mixed[1](params, x), raw[1](ref_params, x))

    model = stax.serial(stax.Dense(8), jl.Dense(8, activation="relu"), jl.Dropout(0.5),
                        stax.Dense(2))
    _, params = model.init(KEY, (-1, 3))
    x = make_inputs((6, 3))
    eval_y = model.apply(params, x)                    # jl.Dropout inactive without train
    tree_equal(model.apply(params, x, rng=RNG), eval_y)
    train_y = model.apply(params, x, rng=RNG, train=True, extra="ignored by stax layers")
    assert not np.allclose(train_y, eval_y)
    with pytest.raises(ValueError, match="rng"):
        model.apply(params, x, train=True)


def test_stateful_native_child_makes_stax_serial_stateful():
    model = stax.serial(stax.Dense(4), jl.Dense(3, activity_regularizer="l2"), stax.Relu)
    assert model.stateful
    out_shape, params, state = model.init(KEY, (-1, 2))
    assert out_shape == (-1, 3) and isinstance(state, list)
    x = make_inputs((5, 2))
    y, state_eval = model.apply(params, state, x)
    tree_equal(state_eval, state)
    y_train, state_train = model.apply(params, state, x, train=True)
    tree_equal(y_train, y)
    assert float(jl.regularizers.activity_loss(state_train)) > 0
    stateless = stax.serial(stax.Dense(4), jl.Dense(3), stax.Relu)
    tree_equal(stateless.apply(params, x), y)


def test_summary_of_a_stax_model():
    model = stax.serial(stax.Conv(4, (3, 3), padding="SAME"), stax.BatchNorm(), stax.Relu,
                        stax.FanOut(2), stax.parallel(stax.Identity, stax.Conv(4, (1, 1))),
                        stax.FanInSum, stax.MaxPool((2, 2), (2, 2)), stax.Flatten,
                        stax.Dense(10), stax.LogSoftmax)
    lines = []
    s = jl.summary(model, (-1, 8, 8, 3), print_fn=lines.append)
    _, params = model.init(KEY, (-1, 8, 8, 3))
    n = sum(a.size for a in jax.tree_util.tree_leaves(params))
    assert s.total_params == s.trainable_params == n == (3 * 3 * 3 * 4 + 4) + 8 + (16 + 4) + (
        64 + 1) * 10
    assert s.output_shape == (None, 10)
    kinds = [r.layer.kind for r in s.rows]
    assert kinds[:5] == ["Conv", "BatchNorm", "Relu", "FanOut", "parallel"]
    assert "Dense" in kinds and "LogSoftmax" in kinds
    assert "Dense(10)" in lines[0] and "(None, 4, 4, 4)" in lines[0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make,match", [
    (lambda: stax.Dense(0), "Dense: out_dim"),
    (lambda: stax.Conv(0, (3, 3)), "Conv: out_chan"),
    (lambda: stax.GeneralConv(("NHWC", "HWIO"), 3, (3, 3)), "GeneralConv: dimension_numbers"),
    (lambda: stax.Conv(3, (3,)), "Conv: dimension_numbers.*filter_shape"),
    (lambda: stax.MaxPool((2, 2), padding=((0, 1), (0, 1))), "MaxPool: padding"),
    (lambda: stax.AvgPool((2, 2), spec="NHW"), "AvgPool: spec"),
    (lambda: stax.Dropout(1.5), "Dropout: rate"),
    (lambda: stax.FanOut(0), "FanOut: num"),
])
def test_bad_configuration_raises_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer,shape,match", [
    (stax.Dense(3), (-1, None), r"Dense\(3\).*last axis.*must be known"),
    (stax.Dense(3), 5, r"Dense\(3\).*shape tuple.*got 5"),
    (stax.Conv(3, (3, 3)), (-1, 8, 3), r"Conv\(3, \(3, 3\)\).*rank-4 input.*\(-1, 8, 3\)"),
    (stax.Conv(3, (3, 3)), (-1, 8, 8, -1), r"Conv.*channel axis"),
    (stax.BatchNorm(axis=(0, 3)), (-1, 4), r"BatchNorm.*out of range"),
    (stax.BatchNorm(axis=0), (-1, None), r"BatchNorm.*must be known"),
    (stax.MaxPool((2, 2)), (-1, 8, 3), r"MaxPool.*rank-4"),
    (stax.parallel(stax.Dense(2), stax.Dense(2)), [(1, 2)], r"parallel.*of 2 input shapes.*\(1, 2\)"),
    (stax.FanInSum, [(1, 2), (1, 3)], r"FanInSum.*same shape"),
    (stax.FanInSum, (1, 2), r"FanInSum.*of input shapes \(a fan-in\)"),
    (stax.FanInConcat(), [(1, 2), (1, 2, 3)], r"FanInConcat.*rank"),
    (stax.serial(stax.Dense(3), stax.Conv(2, (1, 1))), (-1, 4), r"serial\[1\] Conv.*rank-4"),
    (stax.shape_dependent(lambda s: jl.Dense(2, activity_regularizer="l2")), (-1, 2),
     r"shape_dependent.*stateful"),
])
def test_shapes_that_do_not_fit_raise_shape_error(layer, shape, match):
    with pytest.raises(jl.ShapeError, match=match):
        layer.init(KEY, shape)


def test_apply_with_wrong_input_raises_shape_error():
    _, p = stax.Dense(3)[0](KEY, (-1, 4))
    with pytest.raises(jl.ShapeError, match=r"Dense\(3\).*\(batch, \.\.\., 4\).*\(2, 5\)"):
        stax.Dense(3)[1](p, jnp.ones((2, 5)))
    _, p = stax.Conv(3, (2, 2))[0](KEY, (-1, 4, 4, 2))
    with pytest.raises(jl.ShapeError, match=r"Conv.*\(1, 4, 4, 5\).*2 input channels"):
        stax.Conv(3, (2, 2))[1](p, jnp.ones((1, 4, 4, 5)))
    with pytest.raises(jl.ShapeError, match=r"FanInSum.*same shape"):
        stax.FanInSum[1]((), [jnp.ones((1, 2)), jnp.ones((1, 3))])
    with pytest.raises(jl.ShapeError, match=r"parallel.*2 inputs"):
        stax.parallel(stax.Identity, stax.Identity)[1](((), ()), [jnp.ones(2)])


# --------------------------------------------------------------------------- stax programs


def mnist_style_program(stax, steps=100):
    """A stax MLP classifier as in jax's examples/mnist_classifier.py, on sklearn's digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    Dense, Relu, LogSoftmax = stax.Dense, stax.Relu, stax.LogSoftmax

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)

    init_random_params, predict = stax.serial(Dense(32), Relu, Dense(32), Relu, Dense(10),
                                              LogSoftmax)
    _, params = init_random_params(jax.random.key(0), (-1, 64))
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)

    def loss(params, x, y):
        return -jnp.mean(jnp.take_along_axis(predict(params, x), y[:, None], 1))

    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    for _ in range(steps):
        params, opt_state, value = step(params, opt_state, Xtr, ytr)
        losses.append(float(value))
    accuracy = float(jnp.mean(jnp.argmax(predict(params, Xte), -1) == yte))
    return losses, accuracy, params


def test_mnist_style_classifier_on_digits_runs_unchanged():
    losses, accuracy, params = mnist_style_program(stax)
    assert accuracy > 0.93
    assert losses[-1] < 0.2 * losses[0]
    with allow():
        ref_losses, ref_accuracy, ref_params = mnist_style_program(ref)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4, atol=1e-5)
    assert abs(accuracy - ref_accuracy) < 0.01
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), params,
                           ref_params)


def resnet_program(stax, steps=3):
    """jax's examples/resnet50.py with small sizes: ConvBlock / IdentityBlock from FanOut,
    parallel, FanInSum, Conv, BatchNorm, shape_dependent; an HWCN input; Avg/MaxPool."""
    (AvgPool, BatchNorm, Conv, Dense, FanInSum, FanOut, Flatten, GeneralConv, Identity,
     LogSoftmax, MaxPool, Relu) = (stax.AvgPool, stax.BatchNorm, stax.Conv, stax.Dense,
                                   stax.FanInSum, stax.FanOut, stax.Flatten, stax.GeneralConv,
                                   stax.Identity, stax.LogSoftmax, stax.MaxPool, stax.Relu)

    def ConvBlock(kernel_size, filters, strides=(2, 2)):
        ks = kernel_size
        filters1, filters2, filters3 = filters
        Main = stax.serial(
            Conv(filters1, (1, 1), strides), BatchNorm(), Relu,
            Conv(filters2, (ks, ks), padding="SAME"), BatchNorm(), Relu,
            Conv(filters3, (1, 1)), BatchNorm())
        Shortcut = stax.serial(Conv(filters3, (1, 1), strides), BatchNorm())
        return stax.serial(FanOut(2), stax.parallel(Main, Shortcut), FanInSum, Relu)

    def IdentityBlock(kernel_size, filters):
        ks = kernel_size
        filters1, filters2 = filters

        def make_main(input_shape):
            # the number of output channels depends on the number of input channels
            return stax.serial(
                Conv(filters1, (1, 1)), BatchNorm(), Relu,
                Conv(filters2, (ks, ks), padding="SAME"), BatchNorm(), Relu,
                Conv(input_shape[3], (1, 1)), BatchNorm())
        Main = stax.shape_dependent(make_main)
        return stax.serial(FanOut(2), stax.parallel(Main, Identity), FanInSum, Relu)

    def ResNet(num_classes):
        return stax.serial(
            GeneralConv(("HWCN", "OIHW", "NHWC"), 4, (3, 3), (2, 2), "SAME"),
            BatchNorm(), Relu, MaxPool((3, 3), strides=(2, 2)),
            ConvBlock(3, [4, 4, 8]),
            IdentityBlock(3, [4, 4]),
            AvgPool((2, 2)), Flatten, Dense(num_classes), LogSoftmax)

    batch_size, num_classes = 4, 5
    input_shape = (16, 16, 3, batch_size)
    init_fun, predict_fun = ResNet(num_classes)
    out_shape, params = init_fun(jax.random.key(0), input_shape)
    images = jax.random.normal(jax.random.key(1), input_shape)
    labels = jax.nn.one_hot(jnp.arange(batch_size) % num_classes, num_classes)

    def loss(params, images, labels):
        return -jnp.sum(predict_fun(params, images) * labels) / batch_size

    tx = optax.sgd(0.1, momentum=0.9)
    opt_state = tx.init(params)

    @jax.jit
    def update(params, opt_state):
        value, grads = jax.value_and_grad(loss)(params, images, labels)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    for _ in range(steps):
        params, opt_state, value = update(params, opt_state)
        losses.append(float(value))
    return out_shape, losses, (init_fun, predict_fun)


@pytest.mark.slow
def test_resnet_style_model_runs_unchanged():
    out_shape, losses, model = resnet_program(stax)
    assert out_shape == (4, 5)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    with allow():
        ref_shape, ref_losses, _ = resnet_program(ref)
    assert out_shape == ref_shape
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4, atol=1e-5)
    s = jl.summary(model, (16, 16, 3, None), print_fn=None)
    assert s.output_shape == (None, 5)
    assert "shape_dependent(make_main)" in [r.layer.name for r in s.rows]
