"""Core layers against Keras 3 with the same weights copied in."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlayers as jl
from tests.keras_ref import keras, keras_call

KEY = jax.random.key(0)


def normal(shape, seed=1):
    return np.asarray(jax.random.normal(jax.random.key(seed), shape), np.float32)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5), (2, 3, 2, 5)])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid"])
def test_dense_matches_keras(shape, activation):
    layer = jl.Dense(6, activation=activation, bias_initializer="random_normal")
    out_shape, params = layer.init(KEY, (None,) + shape[1:])
    x = normal(shape)
    y = layer.apply(params, x)
    ref = keras_call(keras.layers.Dense(6, activation=activation),
                     [params["kernel"], params["bias"]], x)
    assert out_shape == (None,) + shape[1:-1] + (6,)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_dense_without_bias_matches_keras():
    layer = jl.Dense(3, use_bias=False)
    _, params = layer.init(KEY, (None, 4))
    assert set(params) == {"kernel"}
    x = normal((5, 4))
    ref = keras_call(keras.layers.Dense(3, use_bias=False), [params["kernel"]], x)
    np.testing.assert_allclose(layer.apply(params, x), ref, atol=1e-5)


def test_dense_param_layout_and_initializers():
    _, params = jl.Dense(32).init(KEY, (None, 10))
    assert params["kernel"].shape == (10, 32) and params["bias"].shape == (32,)
    assert params["kernel"].dtype == jnp.float32
    limit = np.sqrt(6 / (10 + 32))  # glorot_uniform
    assert np.abs(params["kernel"]).max() <= limit and np.abs(params["kernel"]).max() > 0.8 * limit
    np.testing.assert_array_equal(params["bias"], 0)


def test_dense_activation_accepts_function():
    layer = jl.Dense(3, activation=jnp.tanh)
    _, params = layer.init(KEY, (None, 4))
    x = normal((2, 4))
    np.testing.assert_allclose(layer.apply(params, x),
                               np.tanh(x @ np.asarray(params["kernel"]) + np.asarray(params["bias"])),
                               atol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_flatten_matches_keras(data_format):
    x = normal((2, 3, 4, 5))
    layer = jl.Flatten(data_format)
    out_shape, _ = layer.init(KEY, (None, 3, 4, 5))
    ref = keras_call(keras.layers.Flatten(data_format=data_format), [], x)
    assert out_shape == (None, 60)
    np.testing.assert_allclose(layer.apply((), x), ref)


@pytest.mark.parametrize("target", [(6, 2), (-1, 3), (2, -1, 2)])
def test_reshape_matches_keras(target):
    x = normal((3, 4, 3))
    layer = jl.Reshape(target)
    out_shape, _ = layer.init(KEY, (None, 4, 3))
    ref = keras_call(keras.layers.Reshape(target), [], x)
    assert out_shape == (None,) + ref.shape[1:]
    np.testing.assert_allclose(layer.apply((), x), ref)


@pytest.mark.parametrize("dims", [(2, 1), (1, 3, 2), (3, 1, 2)])
def test_permute_matches_keras(dims):
    x = normal((2, 3, 4, 5))[..., : 5 if len(dims) == 3 else 1]
    x = x.reshape(x.shape[:len(dims) + 1])
    layer = jl.Permute(dims)
    out_shape, _ = layer.init(KEY, (None,) + x.shape[1:])
    ref = keras_call(keras.layers.Permute(dims), [], x)
    assert out_shape == (None,) + ref.shape[1:]
    np.testing.assert_allclose(layer.apply((), x), ref)


def test_repeat_vector_matches_keras():
    x = normal((2, 5))
    layer = jl.RepeatVector(3)
    out_shape, _ = layer.init(KEY, (None, 5))
    assert out_shape == (None, 3, 5)
    np.testing.assert_allclose(layer.apply((), x), keras_call(keras.layers.RepeatVector(3), [], x))


def test_dropout_is_identity_in_inference_like_keras():
    x = normal((4, 10))
    layer = jl.Dropout(0.5)
    _, params = layer.init(KEY, (None, 10))
    ref = keras_call(keras.layers.Dropout(0.5), [], x, training=False)
    np.testing.assert_array_equal(layer.apply(params, x), ref)
    np.testing.assert_array_equal(layer.apply(params, x, train=False, rng=KEY), x)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_training_keep_rate_and_scaling_like_keras(rate):
    x = np.ones((200, 100), np.float32)
    y = np.asarray(jl.Dropout(rate).apply((), x, rng=KEY, train=True))
    ref = keras_call(keras.layers.Dropout(rate, seed=3), [], x, training=True)
    for out in (y, ref):
        kept = out != 0
        np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
        assert abs(kept.mean() - (1 - rate)) < 0.02
    assert abs(y.mean() - 1) < 0.05  # the expectation is preserved


def test_dropout_noise_shape_shares_mask_along_axes():
    x = np.ones((4, 6, 5), np.float32)
    y = np.asarray(jl.Dropout(0.5, noise_shape=(None, 1, 5)).apply((), x, rng=KEY, train=True))
    assert (y == y[:, :1, :]).all()
    assert 0 < (y == 0).mean() < 1


def test_dropout_rate_edges():
    x = normal((3, 4))
    np.testing.assert_array_equal(jl.Dropout(0.0).apply((), x, train=True), x)
    np.testing.assert_array_equal(jl.Dropout(1.0).apply((), x, rng=KEY, train=True), 0)


def test_dropout_different_keys_give_different_masks():
    x = np.ones((8, 32), np.float32)
    a = jl.Dropout(0.5).apply((), x, rng=jax.random.key(1), train=True)
    b = jl.Dropout(0.5).apply((), x, rng=jax.random.key(2), train=True)
    assert not np.array_equal(a, b)


def test_input_layer_declares_and_checks_shape():
    layer = jl.InputLayer((10,))
    assert layer.init(KEY, None)[0] == (None, 10)
    assert layer.init(KEY, (None, 10))[0] == (None, 10)
    assert layer.init(KEY, (7, 10))[0] == (None, 10)
    x = normal((3, 10))
    np.testing.assert_array_equal(layer.apply((), x), x)


def test_identity_and_activation():
    x = normal((3, 4))
    np.testing.assert_array_equal(jl.Identity().apply((), x), x)
    ref = keras_call(keras.layers.Activation("softplus"), [], x)
    np.testing.assert_allclose(jl.Activation("softplus").apply((), x), ref, atol=1e-6)


def test_lambda_shape_inference_and_arguments():
    layer = jl.Lambda(lambda x, k: x[:, :k] * 2, arguments={"k": 2})
    out_shape, _ = layer.init(KEY, (None, 5))
    assert out_shape == (None, 2)
    x = normal((3, 5))
    np.testing.assert_allclose(layer.apply((), x), x[:, :2] * 2)
    # A free time axis stays free; a fixed one stays fixed even if it equals the probe size.
    assert jl.Lambda(lambda x: x[:, :2]).init(KEY, (None, None, 3))[0] == (None, 2, 3)
    assert jl.Lambda(jnp.sum, output_shape=()).init(KEY, (None, 4))[0] == (None,)
    assert jl.Lambda(lambda x: x, output_shape=lambda s: s).init(KEY, (None, 4))[0] == (None, 4)


def test_activation_accepts_a_parameter_free_layer_as_keras_3():
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    layer = jl.Dense(4, activation=jl.LeakyReLU(0.1))
    _, params = layer.init(jax.random.key(0), (None, 4))
    z = x @ np.asarray(params["kernel"])
    np.testing.assert_allclose(layer.apply(params, x), np.where(z >= 0, z, 0.1 * z), atol=1e-6)
    act = jl.Activation(jl.Softmax())
    np.testing.assert_allclose(act.apply((), x), jax.nn.softmax(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"activation: PReLU\(\) has weights"):
        jl.Dense(4, activation=jl.PReLU()).apply(params, x)
    with pytest.raises(jl.ShapeError, match=r"Dense.*BatchNormalization.*stateful"):
        jl.Dense(4, activation=jl.BatchNormalization())


def test_lambda_mask_matches_keras():
    # Keras' Lambda(mask=callable) computes the mask the next layer sees.
    import keras
    x = np.array([[[1., 2.], [0., 5.], [3., 1.]], [[0., 1.], [2., 2.], [0., 3.]]], np.float32)
    fn = lambda inputs, previous: inputs[..., 0] != 0                       # noqa: E731
    model = jl.serial(jl.Lambda(lambda v: v * 2, mask=fn), jl.GlobalAveragePooling1D())
    _, params = model.init(jax.random.key(0), (None, 3, 2))
    k_in = keras.Input((3, 2))
    k_out = keras.layers.GlobalAveragePooling1D()(keras.layers.Lambda(
        lambda v: v * 2, mask=lambda inputs, previous: keras.ops.not_equal(inputs[..., 0], 0))(
        k_in))
    np.testing.assert_allclose(model.apply(params, x), keras.Model(k_in, k_out)(x), atol=1e-6)
    fixed = jl.serial(jl.Lambda(lambda v: v, mask=np.array([[1, 1, 0], [1, 0, 0]], bool)),
                      jl.GlobalAveragePooling1D())
    np.testing.assert_allclose(fixed.apply(fixed.init(jax.random.key(0), (None, 3, 2))[1], x),
                               [[0.5, 3.5], [0., 1.]], atol=1e-6)


def test_input_layer_takes_keras_batch_shape_and_dtype():
    layer = jl.InputLayer(batch_shape=(4, 3), dtype="int32")
    assert layer.init(jax.random.key(0), None)[0] == (4, 3)
    assert layer.apply((), np.ones((4, 3), np.float32)).dtype == jnp.int32
    with pytest.raises(ValueError, match="InputLayer: input_tensor=.*jl.Input"):
        jl.InputLayer((3,), input_tensor=np.ones(3))
