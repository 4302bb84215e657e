"""Embedding and Masking against Keras 3 (JAX backend), masks, and error messages."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)


def keras_call(layer, x, weights=None):
    with jax.numpy_rank_promotion("allow"):
        layer.build(x.shape)
        if weights is not None:
            layer.set_weights(weights)
        return np.asarray(layer(x))


def test_embedding_matches_keras_and_shapes():
    layer = jl.Embedding(10, 4)
    out_shape, params = layer.init(KEY, (None, None))
    assert out_shape == (None, None, 4) and params["embeddings"].shape == (10, 4)
    assert float(jnp.max(jnp.abs(params["embeddings"]))) <= 0.05  # Keras' "uniform"
    x = np.array([[1, 2, 9], [0, 0, 3]], np.int32)
    y = jax.jit(layer.apply)(params, x)
    np.testing.assert_array_equal(y, np.asarray(params["embeddings"])[x])
    k = keras.layers.Embedding(10, 4)
    np.testing.assert_allclose(y, keras_call(k, x, [np.asarray(params["embeddings"])]))
    assert [w.path.split("/")[-1] for w in k.weights] == ["embeddings"]


def test_embedding_any_rank_and_int64():
    layer = jl.Embedding(5, 2)
    out_shape, params = layer.init(KEY, (None, 2, 3))
    assert out_shape == (None, 2, 3, 2)
    x = np.arange(12).reshape(2, 2, 3) % 5
    assert layer.apply(params, x).shape == (2, 2, 3, 2)


def test_embedding_out_of_range_indices_as_documented_and_as_keras():
    layer = jl.Embedding(4, 3)
    _, params = layer.init(KEY, (None, None))
    table = np.asarray(params["embeddings"])
    x = np.array([[0, 3, 4, -1, -4, -5, 100]], np.int32)
    y = np.asarray(layer.apply(params, x))
    np.testing.assert_array_equal(y[0, :2], table[[0, 3]])
    np.testing.assert_array_equal(y[0, 3], table[3])   # -1: the last row
    np.testing.assert_array_equal(y[0, 4], table[0])   # -4: the first row
    assert np.isnan(y[0, [2, 5, 6]]).all()             # 4, -5, 100: NaN rows
    ref = keras_call(keras.layers.Embedding(4, 3), x, [table])
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref))


def test_embedding_float_input_raises_at_apply():
    layer = jl.Embedding(10, 4)
    _, params = layer.init(KEY, (None, 3))
    with pytest.raises(TypeError, match=r"Embedding\(10, 4\): expected integer indices, "
                                        r"received a float32 input of shape \(2, 3\)"):
        layer.apply(params, np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="expected integer indices"):
        jax.jit(layer.apply)(params, jnp.ones((2, 3)))


def test_embedding_mask_zero_produces_mask_values_unchanged():
    layer = jl.Embedding(10, 4, mask_zero=True)
    assert layer.name == "Embedding(10, 4, mask_zero=True)"
    _, params = layer.init(KEY, (None, None))
    x = np.array([[3, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(layer.apply(params, x), np.asarray(params["embeddings"])[x])
    np.testing.assert_array_equal(layer.masking.out(x, None), x != 0)
    assert jl.Embedding(10, 4).masking.out == "drop"


def test_embedding_regularizer_and_constraint():
    layer = jl.Embedding(6, 3, embeddings_regularizer=jl.regularizers.L1(0.5),
                         embeddings_constraint="non_neg")
    _, params = layer.init(KEY, (None, 2))
    np.testing.assert_allclose(layer.penalty(params),
                               0.5 * jnp.sum(jnp.abs(params["embeddings"])), rtol=1e-6)
    assert (layer.constrain(params)["embeddings"] >= 0).all()


def test_masking_matches_keras_values_and_mask():
    x = np.array(jax.random.normal(KEY, (3, 5, 2)), np.float32)
    x[0, 3:] = 2.0
    x[2, 0] = 2.0
    x[1, 1] = [2.0, 1.0]  # only one feature equals mask_value: not masked
    layer = jl.Masking(2.0)
    out_shape, params = layer.init(KEY, (None, None, 2))
    assert out_shape == (None, None, 2) and params == ()
    y = layer.apply(params, x)
    k = keras.layers.Masking(2.0)
    np.testing.assert_allclose(y, keras_call(k, x))
    with jax.numpy_rank_promotion("allow"):
        kmask = np.asarray(k.compute_mask(x))
    np.testing.assert_array_equal(layer.masking.out(x, None), kmask)
    assert not kmask[0, 3] and kmask[1, 1]


def test_mask_drops_after_a_layer_that_removes_time():
    # Masking -> Flatten -> Dense: the mask cannot follow Flatten; nothing breaks.
    model = jl.serial(jl.Masking(), jl.Flatten(), jl.Dense(2))
    _, params = model.init(KEY, (None, 3, 2))
    x = np.ones((2, 3, 2), np.float32)
    np.testing.assert_allclose(model.apply(params, x),
                               x.reshape(2, 6) @ np.asarray(params[2]["kernel"]) + np.asarray(params[2]["bias"]),
                               rtol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: jl.Embedding(0, 4), "Embedding: input_dim must be a positive int"),
    (lambda: jl.Embedding(10, 2.0), "Embedding: output_dim must be a positive int"),
    (lambda: jl.Embedding(10, 2, embeddings_initializer="nope"), "embeddings_initializer"),
    (lambda: jl.Masking("x"), "Masking: mask_value must be a number"),
])
def test_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_shape_errors():
    with pytest.raises(jl.ShapeError, match=r"Masking\(\).*rank >= 2.*\(None,\)"):
        jl.Masking().init(KEY, (None,))
    layer = jl.Masking()
    with pytest.raises(jl.ShapeError, match=r"Masking\(\).*\(batch, time, features\)"):
        layer.apply((), np.ones((3,), np.float32))


def test_embedding_weights_argument_sets_the_initial_table():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = jl.Embedding(4, 3, weights=[table])
    _, params = layer.init(jax.random.key(0), (None, 2))
    np.testing.assert_array_equal(params["embeddings"], table)
    np.testing.assert_array_equal(layer.apply(params, np.array([[3, 1]])), table[[[3, 1]]])
    with pytest.raises(ValueError, match=r"Embedding: weights must have shape \(4, 2\), "
                                         r"received \(4, 3\)"):
        jl.Embedding(4, 2, weights=table)
