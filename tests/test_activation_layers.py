"""Advanced activation layers against Keras 3 (JAX backend), PReLU with its weights copied in."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)


def rand(seed, shape):
    return (np.random.default_rng(seed).normal(size=shape) * 3).astype(np.float32)


def keras_call(layer, x):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(layer(x))


@pytest.mark.parametrize("ours,theirs", [
    (lambda: jl.ReLU(), lambda: keras.layers.ReLU()),
    (lambda: jl.ReLU(max_value=2.0), lambda: keras.layers.ReLU(max_value=2.0)),
    (lambda: jl.ReLU(negative_slope=0.1, threshold=0.5),
     lambda: keras.layers.ReLU(negative_slope=0.1, threshold=0.5)),
    (lambda: jl.ReLU(max_value=3.0, negative_slope=0.2, threshold=1.0),
     lambda: keras.layers.ReLU(max_value=3.0, negative_slope=0.2, threshold=1.0)),
    (lambda: jl.LeakyReLU(), lambda: keras.layers.LeakyReLU()),
    (lambda: jl.LeakyReLU(0.05), lambda: keras.layers.LeakyReLU(0.05)),
    (lambda: jl.ELU(), lambda: keras.layers.ELU()),
    (lambda: jl.ELU(alpha=0.4), lambda: keras.layers.ELU(alpha=0.4)),
    (lambda: jl.Softmax(), lambda: keras.layers.Softmax()),
    (lambda: jl.Softmax(axis=1), lambda: keras.layers.Softmax(axis=1)),
    (lambda: jl.Softmax(axis=(1, 2)), lambda: keras.layers.Softmax(axis=(1, 2))),
])
def test_matches_keras(ours, theirs):
    x = rand(0, (3, 4, 5))
    x[0, 0, :3] = [0.5, 1.0, 0.0]  # exactly at thresholds
    layer = ours()
    out_shape, params = layer.init(KEY, (None, 4, 5))
    assert out_shape == (None, 4, 5) and params == ()
    np.testing.assert_allclose(layer.apply(params, x), keras_call(theirs(), x), atol=1e-6)


def test_leaky_relu_layer_default_slope_is_keras_0_3():
    x = jnp.array([[-1.0, 2.0]])
    np.testing.assert_allclose(jl.LeakyReLU().apply((), x), [[-0.3, 2.0]])


@pytest.mark.parametrize("shared_axes,shape", [
    (None, (2, 3, 4)),
    ([1], (2, 3, 4)),
    ([1, 2], (2, 3, 4, 5)),   # one slope per channel of an image
    (2, (2, 3, 4)),
    ([1, 2, 3], (2, 3, 4, 5)),
])
def test_prelu_matches_keras(shared_axes, shape):
    ours = jl.PReLU(shared_axes=shared_axes)
    _, params = ours.init(KEY, (None,) + shape[1:])
    theirs = keras.layers.PReLU(shared_axes=shared_axes)
    theirs.build(shape)
    assert params["alpha"].shape == tuple(theirs.alpha.shape)
    np.testing.assert_array_equal(params["alpha"], 0.0)  # Keras' default initializer: zeros
    alpha = rand(1, params["alpha"].shape) / 3
    theirs.set_weights([alpha])
    x = rand(2, shape)
    np.testing.assert_allclose(ours.apply({"alpha": jnp.asarray(alpha)}, x),
                               keras_call(theirs, x), atol=1e-6)


def test_prelu_regularizer_and_constraint():
    layer = jl.PReLU(alpha_initializer="ones", alpha_regularizer=jl.regularizers.L1(0.5),
                     alpha_constraint="non_neg", shared_axes=[1])
    _, params = layer.init(KEY, (None, 3, 2))
    assert params["alpha"].shape == (1, 2)
    np.testing.assert_allclose(layer.penalty(params), 0.5 * 2)
    np.testing.assert_array_equal(layer.constrain({"alpha": jnp.array([[-1.0, 1.0]])})["alpha"],
                                  [[0.0, 1.0]])


def test_prelu_bfloat16_computes_in_bfloat16():
    layer = jl.PReLU(alpha_initializer="ones")
    _, params = layer.init(KEY, (None, 3))
    y = layer.apply(params, jnp.array([[-1.0, 0.5, 2.0]], jnp.bfloat16))
    assert y.dtype == jnp.bfloat16


def test_errors():
    with pytest.raises(ValueError, match="ReLU.*max_value"):
        jl.ReLU(max_value=-1.0)
    with pytest.raises(ValueError, match="ReLU.*negative_slope"):
        jl.ReLU(negative_slope=None)
    with pytest.raises(ValueError, match="ReLU.*threshold"):
        jl.ReLU(threshold=-0.5)
    with pytest.raises(ValueError, match="LeakyReLU.*negative_slope"):
        jl.LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="Softmax.*axis"):
        jl.Softmax(axis="last")
    with pytest.raises(jl.ShapeError, match=r"Softmax\(axis=2\).*out of range.*\(None, 3\)"):
        jl.Softmax(axis=2).init(KEY, (None, 3))
    with pytest.raises(ValueError, match="PReLU.*shared_axes"):
        jl.PReLU(shared_axes=["time"])
    with pytest.raises(ValueError, match="PReLU.*initializer"):
        jl.PReLU(alpha_initializer="no_such_init")
    with pytest.raises(jl.ShapeError, match=r"PReLU.*known size.*\(None, None, 4\)"):
        jl.PReLU().init(KEY, (None, None, 4))
    jl.PReLU(shared_axes=1).init(KEY, (None, None, 4))  # a shared free axis is fine
    with pytest.raises(jl.ShapeError, match=r"PReLU.*shared_axes \[3\].*non-batch"):
        jl.PReLU(shared_axes=3).init(KEY, (None, 2, 4))
    layer = jl.PReLU()
    _, params = layer.init(KEY, (None, 2, 4))
    with pytest.raises(jl.ShapeError, match=r"PReLU.*\(2, 4\).*\(5, 2, 3\)"):
        layer.apply(params, jnp.ones((5, 2, 3)))
