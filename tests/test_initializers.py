"""jaxlayers.initializers: shapes, determinism, statistics from Keras' formulas, parity with Keras."""

import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras  # noqa: E402
from jaxlayers import initializers as I  # noqa: E402

# An "rbg" key: its random kernels compile several times faster than threefry's, which dominates this
# file's run time. The initializers take any key; test_raw_uint32_keys_work uses the default kind.
KEY = jax.random.key(0, impl="rbg")
DENSE = (400, 300)  # fan_in 400, fan_out 300
CONV = (3, 3, 16, 32)  # receptive field 9: fan_in 144, fan_out 288
FANS = {DENSE: (400, 300), CONV: (144, 288)}
WIDE = (32, 144)  # orthogonal's stand-in for DENSE (its QR is slow): wide, flattens like CONV
# Every test draws one of these two shapes (orthogonal: shapes that flatten to them): each new
# shape, dtype or key type costs a compilation of the random bits generator, the bulk of the run time.
TRUNC = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]

RANDOM = [
    ("glorot_uniform", {}),
    ("glorot_normal", {}),
    ("he_uniform", {}),
    ("he_normal", {}),
    ("lecun_uniform", {}),
    ("lecun_normal", {}),
    ("variance_scaling", {}),
    ("variance_scaling", {"scale": 3.0, "mode": "fan_out", "distribution": "uniform"}),
    ("variance_scaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"}),
    ("variance_scaling", {"scale": 2.0, "mode": "fan_in", "distribution": "normal"}),
    ("random_normal", {}),
    ("random_normal", {"mean": 1.0, "stddev": 2.0}),
    ("random_uniform", {}),
    ("random_uniform", {"minval": -3.0, "maxval": 1.0}),
    ("truncated_normal", {}),
    ("truncated_normal", {"mean": 1.0, "stddev": 2.0}),
    ("orthogonal", {}),
    ("orthogonal", {"gain": 2.5}),
]
CONSTANT = [("zeros", {}), ("ones", {}), ("constant", {"value": 3.5}), ("identity", {"gain": 2.0})]
VS_PRESETS = {  # name: (scale, mode, distribution)
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def _ids(cases):
    return [f"{n}-{','.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in cases]


def _expected(name, kw, shape):
    """(distribution, mean, std, lo, hi) from Keras' formulas, computed here independently."""
    if name in VS_PRESETS or name == "variance_scaling":
        scale, mode, dist = VS_PRESETS.get(name) or (
            kw.get("scale", 1.0), kw.get("mode", "fan_in"), kw.get("distribution", "truncated_normal"))
        dist = "truncated_normal" if dist == "normal" else dist
        fan_in, fan_out = FANS[shape]
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        var = scale / n
        if dist == "uniform":
            limit = math.sqrt(3 * var)
            return "uniform", 0.0, math.sqrt(var), -limit, limit
        if dist == "truncated_normal":
            bound = 2 * math.sqrt(var) / TRUNC
            return "truncated", 0.0, math.sqrt(var), -bound, bound
        return "normal", 0.0, math.sqrt(var), -np.inf, np.inf
    if name == "random_normal":
        m, s = kw.get("mean", 0.0), kw.get("stddev", 0.05)
        return "normal", m, s, -np.inf, np.inf
    if name == "random_uniform":
        a, b = kw.get("minval", -0.05), kw.get("maxval", 0.05)
        return "uniform", (a + b) / 2, (b - a) / math.sqrt(12), a, b
    if name == "truncated_normal":
        m, s = kw.get("mean", 0.0), kw.get("stddev", 0.05)
        return "truncated", m, s * TRUNC, m - 2 * s, m + 2 * s
    raise KeyError(name)


# ------------------------------------------------------------------------------ every initializer


@pytest.mark.parametrize("name,kw", RANDOM + CONSTANT, ids=_ids(RANDOM + CONSTANT))
def test_shape_dtype_determinism(name, kw):
    init = getattr(I, name)(**kw)
    shape = WIDE if name == "orthogonal" else DENSE
    a = init(KEY, shape)
    assert a.shape == shape and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, init(KEY, shape))
    # other dtypes and shapes, checked by tracing (no compilation)
    for dtype in (jnp.bfloat16, jnp.float16):
        b = jax.eval_shape(lambda k: init(k, list(shape), dtype), KEY)
        assert b.shape == shape and b.dtype == dtype
    other = init(jax.random.key(1, impl="rbg"), shape)
    if (name, kw) in RANDOM:
        assert not np.allclose(a, other)
    else:
        np.testing.assert_array_equal(a, other)
    if name != "identity":
        assert jax.eval_shape(lambda k: init(k, CONV), KEY).shape == CONV


def test_raw_uint32_keys_work():
    # the default (threefry) key, in its legacy raw uint32 form
    init = I.glorot_uniform()
    a = np.asarray(init(jax.random.PRNGKey(0), DENSE))
    limit = math.sqrt(6 / 700)
    assert a.shape == DENSE and np.abs(a).max() <= limit and np.abs(a).max() > 0.99 * limit
    np.testing.assert_allclose(a.std(), limit / math.sqrt(3), rtol=0.03)
    np.testing.assert_array_equal(a, init(jax.random.PRNGKey(0), DENSE))
    np.testing.assert_array_equal(a, init(jax.random.key(0), DENSE))  # the typed form: same bits


@pytest.mark.parametrize("name,kw", RANDOM, ids=_ids(RANDOM))
def test_seed_is_folded_into_the_key(name, kw):
    shape = WIDE if name == "orthogonal" else DENSE
    base = getattr(I, name)(**kw)(KEY, shape)
    s1 = getattr(I, name)(seed=1, **kw)(KEY, shape)
    s1_again = getattr(I, name)(seed=1, **kw)(KEY, shape)
    s2 = getattr(I, name)(seed=2, **kw)(KEY, shape)
    np.testing.assert_array_equal(s1, s1_again)
    assert not np.allclose(s1, s2) and not np.allclose(s1, base)
    np.testing.assert_array_equal(s1, getattr(I, name)(**kw)(jax.random.fold_in(KEY, 1), shape))


STAT_CASES = [(n, kw, s) for n, kw in RANDOM if n != "orthogonal" for s in (DENSE, CONV)]


@pytest.mark.parametrize("name,kw,shape", STAT_CASES,
                         ids=[f"{i}-{s}" for i, (_, _, s) in zip(_ids([c[:2] for c in STAT_CASES]), STAT_CASES)])
def test_statistics_follow_keras_formula(name, kw, shape):
    w = np.asarray(getattr(I, name)(**kw)(KEY, shape), np.float64)
    dist, mean, std, lo, hi = _expected(name, kw, shape)
    n = w.size
    rel = 0.03 if n > 50_000 else 0.08
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(n)
    np.testing.assert_allclose(w.std(), std, rtol=rel)
    assert w.min() >= lo - 1e-6 * abs(lo) and w.max() <= hi + 1e-6 * abs(hi)
    if dist != "normal":  # the bounds are reached (within 1% of the range for uniform, 5% truncated)
        span = hi - lo
        tol = 0.01 if dist == "uniform" else 0.05
        assert w.min() < lo + tol * span and w.max() > hi - tol * span
    else:
        assert w.min() < mean - 3 * std and w.max() > mean + 3 * std


def _keras_call(init, shape):
    """Keras' draw for `shape`. Keras relies on implicit rank promotion (its Orthogonal does), so
    that one runs under "allow"; the others run under the suite's setting, because the setting is
    part of jit's cache key and each random kernel would otherwise be compiled twice."""
    if isinstance(init, keras.initializers.Orthogonal):
        with jax.numpy_rank_promotion("allow"):
            return np.asarray(init(shape))
    return np.asarray(init(shape))


def _keras_init(name, kw, seed=None):
    init = keras.initializers.get(name).__class__(**kw)
    if seed is not None:
        # Keras' JAX backend draws with `jax.random.*(seed, ...)` when the seed is a key
        init.seed = seed
    return init


@pytest.mark.parametrize("name,kw", [c for c in RANDOM if c[0] != "orthogonal"],
                         ids=_ids([c for c in RANDOM if c[0] != "orthogonal"]))
def test_statistics_close_to_keras_own(name, kw):
    ours = np.asarray(getattr(I, name)(**kw)(KEY, DENSE))
    theirs = _keras_call(_keras_init(name, kw, seed=jax.random.key(1234, impl="rbg")), DENSE)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.03)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.02 * theirs.std() + 1e-3)
    np.testing.assert_allclose([ours.min(), ours.max()], [theirs.min(), theirs.max()],
                               rtol=0.1 if "uniform" not in name and kw.get("distribution") != "uniform" else 0.01)


@pytest.mark.parametrize("name,kw", RANDOM, ids=_ids(RANDOM))
@pytest.mark.parametrize("shape", [DENSE, CONV])
def test_bit_identical_to_keras_for_the_same_key(name, kw, shape):
    shape = WIDE if name == "orthogonal" and shape == DENSE else shape
    # Keras' JAX backend draws with `jax.random.*(seed, ...)` when the seed is a key; feed it ours.
    k = KEY
    init = _keras_init(name, kw, seed=k)
    theirs = _keras_call(init, shape)
    np.testing.assert_array_equal(np.asarray(getattr(I, name)(**kw)(k, shape)), theirs)


# ------------------------------------------------------------------------------------ particulars


@pytest.mark.parametrize("gain", [1.0, 2.5])
@pytest.mark.parametrize("shape", [(144, 32), WIDE, CONV, (9, 16, 32), (1, 32, 144)])
def test_orthogonal(shape, gain):
    w = np.asarray(I.orthogonal(gain=gain)(KEY, shape), np.float64)
    assert w.shape == shape
    flat = w.reshape(-1, shape[-1])
    rows, cols = flat.shape
    gram = flat.T @ flat if rows >= cols else flat @ flat.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=2e-5 * gain**2)
    assert np.all(np.abs(w) <= gain + 1e-6)


def test_orthogonal_rejects_rank_below_two():
    with pytest.raises(ValueError, match="at least two-dimensional"):
        I.Orthogonal()(KEY, (5,))


def test_identity():
    np.testing.assert_array_equal(I.Identity(gain=2.0)(KEY, (3, 5)), 2 * np.eye(3, 5))
    np.testing.assert_array_equal(I.identity(gain=0.5)(KEY, (4, 2)), 0.5 * np.eye(4, 2))
    for shape in [(3,), (3, 3, 3), ()]:
        with pytest.raises(ValueError, match="2D matrices"):
            I.identity()(KEY, shape)


def test_constants():
    np.testing.assert_array_equal(I.Constant(3.5)(KEY, (2, 3)), np.full((2, 3), 3.5))
    np.testing.assert_array_equal(I.constant()(KEY, (2,)), [0.0, 0.0])
    c = I.constant(7)(KEY, (2, 2), jnp.int32)
    assert c.dtype == jnp.int32 and np.all(np.asarray(c) == 7)
    np.testing.assert_array_equal(I.zeros()(KEY, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(I.Ones()(KEY, (4,)), np.ones(4))
    assert I.ones()(KEY, ()).shape == ()


def test_truncated_normal_within_two_stddev():
    w = np.asarray(I.truncated_normal(mean=0.5, stddev=0.1)(KEY, DENSE))
    assert w.min() >= 0.5 - 0.2 - 1e-6 and w.max() <= 0.5 + 0.2 + 1e-6
    assert w.min() < 0.5 - 0.19 and w.max() > 0.5 + 0.19
    w = np.asarray(I.he_normal()(KEY, DENSE))
    bound = 2 * math.sqrt(2 / 400) / TRUNC
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    np.testing.assert_allclose(w.std(), math.sqrt(2 / 400), rtol=0.02)


def test_compute_fans_matches_keras():
    from keras.src.initializers.random_initializers import compute_fans

    for shape in [(), (5,), (4, 7), (3, 3, 16, 32), (2, 3, 4, 5, 6), (0, 3), (1, 1, 1)]:
        assert I.compute_fans(shape) == compute_fans(shape), shape
    assert I.compute_fans((3, 4, 5)) == (12, 15)
    assert I.compute_fans((3, 3, 16, 32)) == (144, 288)
    axes = dict(input_axes=(0, 2), output_axes=(1,))
    assert I.compute_fans((2, 3, 4), **axes) == compute_fans((2, 3, 4), **axes) == (8, 3)
    # the axes reach the initializers: CONV with fan_in over axes (0, 1, 3) = 288, fan_out axis 2 = 16
    conv_axes = dict(input_axes=(0, 1, 3), output_axes=(2,))
    w = np.asarray(I.VarianceScaling(mode="fan_in", distribution="uniform", **conv_axes)(KEY, CONV))
    assert np.abs(w).max() <= math.sqrt(3 / 288) * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * math.sqrt(3 / 288)
    w = np.asarray(I.VarianceScaling(mode="fan_out", distribution="uniform", **conv_axes)(KEY, CONV))
    assert math.sqrt(3 / 16) * 0.99 < np.abs(w).max() <= math.sqrt(3 / 16) * (1 + 1e-6)


def test_variance_scaling_argument_errors():
    with pytest.raises(ValueError, match="scale"):
        I.VarianceScaling(scale=0.0)
    with pytest.raises(ValueError, match="mode"):
        I.VarianceScaling(mode="fan_sum")
    with pytest.raises(ValueError, match="distribution"):
        I.VarianceScaling(distribution="cauchy")
    # case-insensitive distribution, as in Keras
    np.testing.assert_array_equal(
        I.VarianceScaling(distribution="Uniform")(KEY, DENSE),
        I.VarianceScaling(distribution="uniform")(KEY, DENSE),
    )
    with pytest.raises(ValueError, match="seed"):
        I.GlorotUniform(seed="x")(KEY, (2, 2))
    with pytest.raises(ValueError, match="shape"):
        I.GlorotUniform()(KEY, (None, 3))


# -------------------------------------------------------------------------------------------- get


def test_both_spellings_are_the_same_constructor():
    pairs = [("GlorotUniform", "glorot_uniform"), ("GlorotNormal", "glorot_normal"),
             ("HeUniform", "he_uniform"), ("HeNormal", "he_normal"), ("LecunUniform", "lecun_uniform"),
             ("LecunNormal", "lecun_normal"), ("Orthogonal", "orthogonal"), ("Zeros", "zeros"),
             ("Ones", "ones"), ("Constant", "constant"), ("Identity", "identity"),
             ("RandomNormal", "random_normal"), ("RandomUniform", "random_uniform"),
             ("TruncatedNormal", "truncated_normal"), ("VarianceScaling", "variance_scaling")]
    for camel, snake in pairs:
        assert getattr(I, camel) is getattr(I, snake) is I.ALL[camel] is I.ALL[snake]


def test_names_cover_keras():
    from keras.src.initializers import ALL_OBJECTS_DICT

    # all but the abstract base class and STFT (a signal-processing kernel, not provided here)
    keras_names = {n for n in ALL_OBJECTS_DICT if "stft" not in n.lower() and n.lower() != "initializer"}
    assert keras_names == set(I.names())
    assert I.names() == tuple(sorted(I.ALL))


@pytest.mark.parametrize("name", I.names())
def test_get_by_name_matches_keras_get(name):
    shape = WIDE if "orthogonal" in name.lower() else DENSE
    ours = I.get(name)
    assert callable(ours)
    if name.lower() == "constant":
        # keras.initializers.get("Constant") raises KeyError 'value' in Keras 3.15 (from_config
        # needs a value); Constant() defaults to 0 in both libraries
        np.testing.assert_array_equal(np.asarray(ours(KEY, shape)), np.zeros(shape))
        return
    theirs = keras.initializers.get(name)
    if hasattr(theirs, "seed"):
        theirs.seed = KEY
    ref = _keras_call(theirs, shape)
    np.testing.assert_array_equal(np.asarray(ours(KEY, shape)), ref)


def test_get_aliases():
    # Keras resolves "uniform" / "normal" to RandomUniform / RandomNormal with their defaults
    np.testing.assert_array_equal(I.get("uniform")(KEY, DENSE), I.RandomUniform(-0.05, 0.05)(KEY, DENSE))
    np.testing.assert_array_equal(I.get("normal")(KEY, DENSE), I.RandomNormal(0.0, 0.05)(KEY, DENSE))
    assert keras.initializers.get("uniform").get_config()["maxval"] == 0.05
    np.testing.assert_array_equal(I.get("one")(KEY, (2,)), [1, 1])
    np.testing.assert_array_equal(I.get("zero")(KEY, (2,)), [0, 0])


def test_get_config_dict_callable_constructor_and_array():
    cfg = {"class_name": "VarianceScaling",
           "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"}}
    np.testing.assert_array_equal(I.get(cfg)(KEY, DENSE),
                                  I.VarianceScaling(2.0, "fan_out", "uniform")(KEY, DENSE))
    # what keras.initializers.serialize produces is understood
    ser = keras.initializers.serialize(keras.initializers.HeNormal())
    np.testing.assert_array_equal(I.get(ser)(KEY, DENSE), I.he_normal()(KEY, DENSE))
    ser = keras.initializers.serialize(keras.initializers.Constant(2.5))
    np.testing.assert_array_equal(I.get(ser)(KEY, (2,)), [2.5, 2.5])

    def mine(key, shape, dtype=jnp.float32):
        return jnp.full(shape, 9.0, dtype)

    assert I.get(mine) is mine
    init = I.get(I.GlorotUniform)  # a constructor is called with its defaults
    np.testing.assert_array_equal(init(KEY, DENSE), I.glorot_uniform()(KEY, DENSE))
    value = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(I.get(value)(KEY, (2, 3)), value)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        I.get(value)(KEY, (3, 2))


def test_get_errors():
    with pytest.raises(ValueError, match=r"Unknown initializer 'glorot'.*Valid names: .*glorot_uniform") as e:
        I.get("glorot")
    for name in I.names():
        assert name in str(e.value)
    with pytest.raises(ValueError, match="None"):
        I.get(None)
    with pytest.raises(ValueError, match="Unknown initializer 'Nope'"):
        I.get({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        I.get({"config": {}})
    with pytest.raises(ValueError, match="interpret"):
        I.get(42)
    with pytest.raises(TypeError):
        I.ALL["mine"] = I.zeros  # read-only
