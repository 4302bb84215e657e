"""Preprocessing layers against Keras 3 (JAX backend) or a numpy formula, and `jl.adapt`."""
import jax
import keras
import numpy as np
import pytest
from keras.src.layers.preprocessing import discretization as keras_discretization

import jaxlayers as jl
from tests.keras_ref import keras_apply, normal

KEY = jax.random.key(0)


def run(layer, x, shape=None):
    _, params = layer.init(KEY, shape or (None,) + tuple(np.shape(x)[1:]))
    return np.asarray(layer.apply(params, x))


def test_rescaling_matches_keras():
    x = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    for scale, offset in [(1 / 255, -0.5), ([1.0, 2.0, 3.0], [0.0, 1.0, -1.0])]:
        ref = keras_apply(keras.layers.Rescaling(scale, offset), x)
        np.testing.assert_allclose(run(jl.Rescaling(scale, offset), x), ref, rtol=1e-6)
    with pytest.raises(jl.ShapeError, match="Rescaling.*scale of shape \\(2,\\)"):
        jl.Rescaling([1.0, 2.0]).init(KEY, (None, 3))


@pytest.mark.parametrize("axis, mean, variance", [(-1, [1.0, -2.0, 0.5], [4.0, 0.0, 2.0]),
                                                  (None, 0.5, 3.0), ((1, 2), 0.2, 9.0)])
@pytest.mark.parametrize("invert", [False, True])
def test_normalization_matches_keras(axis, mean, variance, invert):
    x = normal((2, 4, 3))
    ref = keras_apply(keras.layers.Normalization(axis=axis, mean=mean, variance=variance,
                                                 invert=invert), x)
    got = run(jl.Normalization(axis=axis, mean=mean, variance=variance, invert=invert), x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_normalization_adapt_matches_keras_and_is_pure():
    data = normal((50, 3)) * 3 + 1
    layer = jl.Normalization(name="norm")
    with pytest.raises(jl.ShapeError, match="Normalization.*jl.adapt"):
        layer.init(KEY, (None, 3))
    adapted = jl.adapt(layer, data)
    batched = jl.adapt(layer, [data[:20], data[20:]])       # an iterable of batches
    assert adapted.label == "norm"
    keras_layer = keras.layers.Normalization()
    keras_layer.adapt(data)
    x = normal((4, 3), seed=3)
    np.testing.assert_allclose(run(adapted, x), np.asarray(keras_layer(x)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(batched, x), run(adapted, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(adapted, data).mean(0), 0, atol=1e-5)
    with pytest.raises(TypeError, match="adapt: Dense.*nothing to adapt"):
        jl.adapt(jl.Dense(2), data)


def test_normalization_errors_name_the_layer():
    with pytest.raises(ValueError, match="Normalization: give both mean and variance"):
        jl.Normalization(mean=1.0)
    with pytest.raises(jl.ShapeError, match="Normalization.*batch axis"):
        jl.Normalization(axis=0, mean=0.0, variance=1.0).init(KEY, (None, 3))


@pytest.mark.parametrize("mode, shape", [("one_hot", (3, 1)), ("one_hot", (3, 2)),
                                         ("multi_hot", (3, 4)), ("count", (3, 4))])
def test_category_encoding_matches_keras(mode, shape):
    x = np.random.default_rng(0).integers(0, 5, shape)
    ref = keras_apply(keras.layers.CategoryEncoding(5, output_mode=mode), x)
    layer = jl.CategoryEncoding(5, output_mode=mode)
    out_shape, _ = layer.init(KEY, (None,) + shape[1:])
    got = run(layer, x)
    np.testing.assert_array_equal(got, ref)
    assert out_shape[1:] == got.shape[1:]


def test_category_encoding_count_weights():
    x = np.array([[0, 1, 1], [2, 2, 0]])
    w = np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 3.0]], np.float32)
    ref = np.asarray(keras.layers.CategoryEncoding(3, output_mode="count")(x, count_weights=w))
    layer = jl.CategoryEncoding(3, output_mode="count")
    _, params = layer.init(KEY, ((None, 3), (None, 3)))
    np.testing.assert_allclose(layer.apply(params, (x, w)), ref)
    with pytest.raises(ValueError, match="CategoryEncoding: num_tokens must be given"):
        jl.CategoryEncoding()


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
def test_discretization_matches_keras(mode):
    x = normal((3, 4))
    edges = [-1.0, -0.2, 0.0, 0.9]
    ref = keras_apply(keras.layers.Discretization(edges, output_mode=mode), x)
    np.testing.assert_array_equal(run(jl.Discretization(edges, output_mode=mode), x), ref)


def test_discretization_adapt_matches_keras_quantiles():
    batches = [normal((40, 2), seed=s) * (s + 1) for s in range(3)]
    summary = np.array([[], []], dtype="float32")
    for batch in batches:                       # Keras' update_state (its adapt needs tf.data)
        summary = keras_discretization.merge_summaries(
            keras_discretization.summarize(batch, 0.01), summary, 0.01)
    expected = keras_discretization.get_bin_boundaries(summary, 5).tolist()
    adapted = jl.adapt(jl.Discretization(num_bins=5), batches)
    x = normal((2, 6), seed=9) * 2
    ref = keras_apply(keras.layers.Discretization(expected), x)
    np.testing.assert_array_equal(run(adapted, x), ref)
    with pytest.raises(ValueError, match="Discretization: give exactly one"):
        jl.Discretization()


def test_integer_lookup_follows_keras_index_layout():
    # Keras' IntegerLookup needs TensorFlow; the layout is Keras' documented one:
    # [mask] + [OOV] * num_oov_indices + vocabulary, OOV index ``token % num_oov``.
    x = np.array([[7, 3, 0, 12], [9, 7, 5, 4]])
    vocab = [7, 9, 12]
    got = run(jl.IntegerLookup(vocabulary=vocab), x)
    np.testing.assert_array_equal(got, [[1, 0, 0, 3], [2, 1, 0, 0]])
    got = run(jl.IntegerLookup(vocabulary=vocab, mask_token=0, num_oov_indices=2), x)
    np.testing.assert_array_equal(got, [[3, 2, 0, 5], [4, 3, 2, 1]])
    back = run(jl.IntegerLookup(vocabulary=vocab, mask_token=0, num_oov_indices=2,
                                invert=True), got)
    np.testing.assert_array_equal(back, np.where(np.isin(x, vocab + [0]), x, -1))
    multi = run(jl.IntegerLookup(vocabulary=vocab, output_mode="multi_hot"), x)
    np.testing.assert_array_equal(multi, [[1, 1, 0, 1], [1, 1, 1, 0]])
    idf = [0.5, 1.0, 2.0]
    tf_idf = run(jl.IntegerLookup(vocabulary=vocab, output_mode="tf_idf", idf_weights=idf), x)
    count = run(jl.IntegerLookup(vocabulary=vocab, output_mode="count"), x)
    np.testing.assert_allclose(tf_idf, count * np.array([np.mean(idf)] + idf))


def test_integer_lookup_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="IntegerLookup: oov_method='farmhash' is not "
                                         "supported.*input pipeline"):
        jl.IntegerLookup(vocabulary=[1], oov_method="farmhash")
    with pytest.raises(ValueError, match="IntegerLookup: vocabulary has repeated"):
        jl.IntegerLookup(vocabulary=[1, 1])
    with pytest.raises(ValueError, match="IntegerLookup: give the vocabulary"):
        jl.IntegerLookup()


def test_preprocessing_runs_under_jit_and_vmap():
    layer = jl.Discretization([0.0, 1.0], output_mode="one_hot")
    _, params = layer.init(KEY, (None, 3))
    x = normal((4, 2, 3))
    eager = np.stack([layer.apply(params, xi) for xi in x])
    np.testing.assert_array_equal(jax.jit(jax.vmap(lambda xi: layer.apply(params, xi)))(x),
                                  eager)


def test_from_keras_converts_each_preprocessing_and_augmentation_layer():
    adapted = keras.layers.Normalization()
    adapted.adapt(normal((30, 5, 4, 3)) * 2 + 1)
    model = keras.Sequential([
        keras.Input((5, 4, 3)),
        keras.layers.Rescaling(0.5, offset=1.0),
        adapted,
        keras.layers.Normalization(mean=[0.0, 1.0, 2.0], variance=[1.0, 2.0, 3.0],
                                   invert=True),
        keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
        keras.layers.RandomZoom(0.1), keras.layers.RandomTranslation(0.1, 0.1),
        keras.layers.RandomContrast(0.2), keras.layers.RandomBrightness(0.1),
        keras.layers.RandomInvert(), keras.layers.AutoContrast(),
        keras.layers.Resizing(8, 6, interpolation="bicubic"),
        keras.layers.CenterCrop(6, 6),
        keras.layers.Discretization([-1.0, 0.0, 1.0, 3.0]),
        keras.layers.CategoryEncoding(5, output_mode="one_hot"),
    ])
    x = normal((2, 5, 4, 3)) * 3
    with jax.numpy_rank_promotion("allow"):
        ref = np.asarray(model(x, training=False))
    layer, params = jl.from_keras(model)[:2]
    np.testing.assert_allclose(layer.apply(params, x), ref, atol=1e-6)
    kinds = [child.kind for child in layer.children if child.kind != "InputLayer"]
    assert kinds[:3] == ["Rescaling", "Normalization", "Normalization"]
    # RandomCrop in inference: Keras 3 returns the uncropped input (against its own output
    # shape); jaxlayers follows the documented rule, the center window resized.
    crop = jl.from_keras(keras.Sequential([keras.Input((6, 5, 1)),
                                           keras.layers.RandomCrop(4, 3)]))[0]
    assert [c.name for c in crop.children if c.kind != "InputLayer"] == ["RandomCrop(4, 3)"]
