"""Pooling layers against Keras 3 (JAX backend); the reshape + max lowering of tiling max
pools against lax.reduce_window (numbers and gradients); error messages."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers.pooling import _pooling, tiled_max_pool
from jaxlayers.layers.spatial import Layout
from tests.keras_ref import keras_apply, normal

CF = "channels_first"
KEY = jax.random.key(0)

POOL = [
    # (kind, args, kwargs, input shape)
    ("MaxPooling1D", (), {}, (2, 7, 3)),
    ("MaxPooling1D", (3,), dict(strides=2, padding="same"), (2, 8, 2)),
    ("MaxPooling1D", (2,), dict(strides=1, data_format=CF), (2, 2, 5)),
    ("MaxPooling2D", (), {}, (2, 6, 5, 2)),
    ("MaxPooling2D", ((3, 2),), dict(strides=(2, 1)), (2, 7, 5, 2)),
    ("MaxPooling2D", (3,), dict(strides=2, padding="same"), (2, 6, 5, 2)),
    ("MaxPooling2D", (2,), dict(padding="same", data_format=CF), (2, 2, 5, 3)),
    ("MaxPooling3D", (), {}, (2, 4, 5, 4, 2)),
    ("MaxPooling3D", (2,), dict(strides=(1, 2, 2), padding="same", data_format=CF),
     (2, 2, 3, 4, 3)),
    ("AveragePooling1D", (2,), {}, (2, 7, 3)),
    ("AveragePooling1D", (3,), dict(strides=2, padding="same"), (2, 8, 2)),
    ("AveragePooling1D", (4,), dict(strides=3, padding="same", data_format=CF), (2, 2, 9)),
    ("AveragePooling2D", (2,), {}, (2, 6, 5, 2)),
    ("AveragePooling2D", ((3, 2),), dict(strides=(2, 1)), (2, 7, 5, 2)),
    ("AveragePooling2D", (3,), dict(strides=2, padding="same"), (2, 6, 5, 2)),
    ("AveragePooling2D", ((2, 3),), dict(strides=1, padding="same", data_format=CF),
     (2, 2, 4, 5)),
    ("AveragePooling3D", (2,), {}, (2, 4, 5, 4, 2)),
    ("AveragePooling3D", (3,), dict(strides=2, padding="same", data_format=CF), (2, 2, 4, 5, 3)),
]


@pytest.mark.parametrize("kind,args,kwargs,shape", POOL, ids=lambda v: str(v))
def test_pooling_matches_keras(kind, args, kwargs, shape):
    x = normal(shape)
    layer = getattr(jl, kind)(*args, **kwargs)
    out_shape, params = layer.init(KEY, (None,) + shape[1:])
    y = layer.apply(params, x)
    ref = keras_apply(getattr(keras.layers, kind)(*args, **kwargs), x)
    assert tuple(out_shape[1:]) == ref.shape[1:]
    np.testing.assert_allclose(np.asarray(y), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["Max", "Average"])
@pytest.mark.parametrize("data_format", ["channels_last", CF])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_matches_keras(rank, kind, data_format, keepdims):
    name = f"Global{kind}Pooling{rank}D"
    shape = (2,) + (3, 4, 2)[:rank] + (3,) if data_format == "channels_last" else (
        (2, 3) + (3, 4, 2)[:rank])
    x = normal(shape)
    layer = getattr(jl, name)(data_format=data_format, keepdims=keepdims)
    out_shape, _ = layer.init(KEY, (None,) + shape[1:])
    ref = keras_apply(getattr(keras.layers, name)(data_format=data_format, keepdims=keepdims), x)
    assert tuple(out_shape[1:]) == ref.shape[1:]
    np.testing.assert_allclose(np.asarray(layer.apply((), x)), ref, atol=1e-5, rtol=1e-5)


def test_same_average_divides_by_real_elements():
    x = np.ones((1, 5, 1), np.float32)
    layer = jl.AveragePooling1D(3, strides=2, padding="same")
    np.testing.assert_allclose(np.asarray(layer.apply((), x)), np.ones((1, 3, 1)))


def test_aliases_are_the_same_constructors():
    assert jl.MaxPool2D is jl.MaxPooling2D and jl.AvgPool3D is jl.AveragePooling3D
    assert jl.GlobalMaxPool1D is jl.GlobalMaxPooling1D
    assert jl.GlobalAvgPool2D is jl.GlobalAveragePooling2D


def test_free_spatial_dims():
    layer = jl.MaxPooling2D(3, strides=2, padding="same")
    out, _ = layer.init(KEY, (None, None, 7, 4))
    assert out == (None, None, 4, 4)
    assert layer.apply((), jnp.ones((1, 9, 7, 4))).shape == (1, 5, 4, 4)
    assert jl.GlobalAveragePooling1D().init(KEY, (None, None, 5))[0] == (None, 5)


# --------------------------------------------------------------------------- tiled max pooling


TILED = [(1, "channels_last", (3, 8, 2), (2,)), (2, "channels_last", (2, 6, 4, 3), (3, 2)),
         (2, CF, (2, 3, 4, 6), (2, 3)), (3, "channels_last", (2, 4, 2, 6, 2), (2, 1, 3)),
         # Remainders (cropped: in no "valid" window), as the seed CNN's 11x11 -> 5x5.
         (2, "channels_last", (2, 7, 5, 3), (2, 2)), (1, CF, (2, 3, 7), (3,))]


@pytest.mark.parametrize("rank,fmt,shape,pool", TILED, ids=str)
def test_tiled_max_pool_equals_reduce_window(rank, fmt, shape, pool):
    kind = f"MaxPooling{rank}D"
    fast = _pooling(kind, rank, "max", pool, None, "valid", fmt)
    slow = _pooling(kind, rank, "max", pool, None, "valid", fmt, tiled=False)
    # Ties on purpose (rounded values, relu-like zeros) so the gradient's choice matters.
    x = jnp.asarray(np.maximum(np.round(normal(shape) * 2), 0.0))
    np.testing.assert_array_equal(fast.apply((), x), slow.apply((), x))
    g = jnp.asarray(normal(fast.init(KEY, shape)[0], seed=3))
    grad_fast = jax.vjp(lambda x: fast.apply((), x), x)[1](g)[0]
    grad_slow = jax.vjp(lambda x: slow.apply((), x), x)[1](g)[0]
    np.testing.assert_array_equal(grad_fast, grad_slow)
    dx = jnp.asarray(normal(shape, seed=4))
    np.testing.assert_array_equal(jax.jvp(lambda x: fast.apply((), x), (x,), (dx,))[1],
                                  jax.jvp(lambda x: slow.apply((), x), (x,), (dx,))[1])
    jac_fast = jax.jacfwd(lambda x: fast.apply((), x))(x)
    np.testing.assert_array_equal(jac_fast, jax.jacrev(lambda x: slow.apply((), x))(x))
    # The fast path is really taken: reduce_window forward inside a custom JVP, and its
    # gradient has no select-and-scatter (reduce_window's own transpose).
    assert "custom_jvp_call" in str(jax.make_jaxpr(lambda x: fast.apply((), x))(x))
    assert "custom_jvp_call" not in str(jax.make_jaxpr(lambda x: slow.apply((), x))(x))
    grad_jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: jnp.sum(fast.apply((), x))))(x))
    assert "select_and_scatter" not in grad_jaxpr
    assert "select_and_scatter" in str(
        jax.make_jaxpr(jax.grad(lambda x: jnp.sum(slow.apply((), x))))(x))


def test_tiled_max_pool_ties_go_to_the_first_maximum():
    # Every window all equal: the whole cotangent goes to the window's first element in
    # row-major order (top-left), as reduce_window's select-and-scatter sends it.
    x = jnp.zeros((1, 4, 4, 1))
    g = jax.grad(lambda x: jnp.sum(jl.MaxPooling2D(2).apply((), x) * jnp.arange(1.0, 5.0)
                                   .reshape(1, 2, 2, 1)))(x)
    want = np.zeros((4, 4))
    want[0, 0], want[0, 2], want[2, 0], want[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(g[0, :, :, 0], want)
    # A tie between the 2nd and 4th positions of a window: the 2nd wins.
    x = jnp.array([[0.0, 5.0], [1.0, 5.0]]).reshape(1, 2, 2, 1)
    g = jax.grad(lambda x: jl.MaxPooling2D(2).apply((), x).sum())(x)
    np.testing.assert_array_equal(g[0, :, :, 0], [[0, 1], [0, 0]])


def test_tiled_max_pool_inference_is_reduce_window():
    # Without differentiation the lowered program is exactly reduce_window (no reshape,
    # no crop of a remainder), the fastest forward on XLA:CPU.
    x = jnp.ones((2, 11, 11, 3))
    hlo = jax.jit(jl.MaxPooling2D(2).apply).lower((), x).as_text()
    assert "reduce_window" in hlo and "slice" not in hlo and "reshape" not in hlo


def test_tiled_max_pool_second_order_and_jit():
    x = jnp.asarray(normal((2, 4, 4, 1)))
    layout = Layout(2)
    f = jax.jit(lambda x: jnp.sum(tiled_max_pool(x, layout, (2, 2)) ** 2))
    g = jax.grad(f)(x)
    ref = jax.grad(lambda x: jnp.sum(jl.MaxPooling2D(2, strides=1).apply((), x)[:, ::2, ::2] ** 2))(x)
    np.testing.assert_allclose(g, ref, atol=1e-6)


@pytest.mark.parametrize("layer", [jl.MaxPooling2D(3, strides=2, padding="same"),
                                   jl.AveragePooling2D(2, strides=1, padding="same"),
                                   jl.MaxPooling1D(2)], ids=lambda l: l.name)
def test_reduce_window_paths_differentiate_under_jit(layer):
    x = jnp.asarray(normal((2, 5, 2) if "1D" in layer.name else (2, 5, 5, 2)))
    g = jax.jit(jax.grad(lambda x: jnp.sum(layer.apply((), x) ** 2)))(x)
    ref = jax.grad(lambda x: jnp.sum(layer.apply((), x) ** 2))(x)
    np.testing.assert_allclose(g, ref, atol=1e-6)
    assert np.any(np.asarray(g) != 0)


def test_non_tiling_max_pool_uses_reduce_window():
    x = jnp.ones((1, 5, 4, 1))
    assert "reduce_window" in str(jax.make_jaxpr(lambda x: jl.MaxPooling2D().apply((), x))(x))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make,words", [
    (lambda: jl.MaxPooling2D(0), ["MaxPooling2D", "pool_size"]),
    (lambda: jl.MaxPooling2D((2, 2, 2)), ["pool_size"]),
    (lambda: jl.AveragePooling1D(2, strides=0), ["AveragePooling1D", "strides"]),
    (lambda: jl.MaxPooling1D(padding="causal"), ["padding", "causal"]),
    (lambda: jl.AveragePooling3D(2, data_format="NCDHW"), ["data_format"]),
    (lambda: jl.GlobalMaxPooling2D(keepdims="yes"), ["keepdims"]),
    (lambda: jl.GlobalAveragePooling1D(data_format="cf"), ["GlobalAveragePooling1D",
                                                           "data_format"]),
])
def test_bad_configuration_raises_valueerror(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("layer,shape,words", [
    (jl.MaxPooling2D(3), (None, 2, 6, 1), ["MaxPooling2D", "pool_size=(3, 3)", "(None, 2, 6, 1)"]),
    (jl.AveragePooling1D(4, padding="valid"), (None, 3, 2), ["AveragePooling1D", "(None, 3, 2)"]),
    (jl.MaxPooling3D(), (None, 4, 4, 4), ["rank-5", "(None, 4, 4, 4)"]),
    (jl.GlobalMaxPooling1D(), (None, 4), ["GlobalMaxPooling1D", "rank-3"]),
])
def test_impossible_shapes_raise_shapeerror(layer, shape, words):
    with pytest.raises(jl.ShapeError) as e:
        layer.init(KEY, shape)
    for w in words:
        assert w in str(e.value)


def test_apply_with_wrong_input_raises_shapeerror():
    with pytest.raises(jl.ShapeError, match=r"MaxPooling2D.*rank-4.*\(4, 4, 1\)"):
        jl.MaxPooling2D().apply((), jnp.ones((4, 4, 1)))
    with pytest.raises(jl.ShapeError, match=r"AveragePooling2D.*pool_size=\(3, 3\)"):
        jl.AveragePooling2D(3).apply((), jnp.ones((1, 2, 4, 1)))
