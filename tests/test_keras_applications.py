"""Every keras.applications family imports with `jl.from_keras` and matches Keras' logits and
features (the body without its top) within float32 rounding. Built locally, weights=None, at
small input sizes, one architecture per family; the body is the same model cut before its
top (the layer before its global pooling or Flatten), imported as a second output of one
Keras model over the same layers."""
import jax
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.io.keras_import import CONVERTERS
from tests.keras_ref import keras_model_outputs, normal, numpy_initializers

A = keras.applications
# family -> (constructor, input size, extra arguments)
FAMILIES = {
    "VGG": (A.VGG16, 32, {}),
    "ResNet": (A.ResNet50, 32, {}),
    "ResNetV2": (A.ResNet50V2, 32, {}),
    "MobileNet": (A.MobileNet, 32, {"alpha": 0.25}),
    "MobileNetV2": (A.MobileNetV2, 32, {"alpha": 0.35}),
    "MobileNetV3": (A.MobileNetV3Small, 32, {"include_preprocessing": False}),
    "DenseNet": (A.DenseNet121, 32, {}),
    "InceptionV3": (A.InceptionV3, 75, {}),
    "InceptionResNetV2": (A.InceptionResNetV2, 75, {}),
    "Xception": (A.Xception, 71, {}),
    "NASNet": (A.NASNetMobile, 32, {}),
    "EfficientNetV2": (A.EfficientNetV2B0, 32, {"include_preprocessing": False}),
    "ConvNeXt": (A.ConvNeXtTiny, 32, {"include_preprocessing": False}),
    # EfficientNet (v1) always starts with Rescaling and Normalization.
    "EfficientNet": (A.EfficientNetB0, 32, {}),
}
def _body_end(km):
    """The last layer before the classification top (its global pooling or Flatten)."""
    kinds = [type(l).__name__ for l in km.layers]
    top = max((i for i, k in enumerate(kinds) if k == "GlobalAveragePooling2D"),
              default=None)
    return km.layers[(kinds.index("Flatten") if top is None else top) - 1]



@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_application_imports_and_matches_keras(family):
    """The model with its top and its body (cut before the top) as the two outputs of one
    Keras model: one import, one compile, both compared."""
    ctor, size, extra = FAMILIES[family]
    keras.utils.set_random_seed(0)
    # rank promotion: Keras relies on it (ConvNeXt's LayerScale)
    with jax.numpy_rank_promotion("allow"), numpy_initializers():
        km = ctor(weights=None, input_shape=(size, size, 3), classes=5,
                  classifier_activation=None, **extra)
        both = keras.Model(km.input, [km.output, _body_end(km).output], name=f"{km.name}_both")
    x = normal((2, size, size, 3)) * 2
    refs = keras_model_outputs(both, x)
    model, params, state = jl.from_keras(both)
    ys = jax.jit(lambda p, s, x: jl.with_state(model).apply(p, s, x)[0])(params, state, x)
    assert len(ys) == 2 and ys[0].shape == (2, 5)
    for y, ref in zip(ys, refs):                       # logits, then the body's features
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-4, atol=1e-4 * scale)


def test_issue_16_layers_convert():
    """from_keras converts adaptive pooling, SpectralNormalization (vector_u to the state)
    and ReversibleEmbedding with their weights."""
    with jax.numpy_rank_promotion("allow"):
        km = keras.Sequential([keras.Input((6, 5, 2)), keras.layers.AdaptiveMaxPooling2D((3, 2)),
                               keras.layers.Flatten(),
                               keras.layers.SpectralNormalization(keras.layers.Dense(3))])
        ke = keras.Sequential([keras.Input((4,), dtype="int32"),
                               keras.layers.ReversibleEmbedding(6, 3, tie_weights=False)])
    model, params, state = jl.from_keras(km)
    np.testing.assert_array_equal(state[3]["vector_u"], np.asarray(km.layers[-1].vector_u))
    x = normal((2, 6, 5, 2))
    with jax.numpy_rank_promotion("allow"):
        ref = np.asarray(km(x, training=True))     # a training call: kernel / sigma
    y, new = model.apply(params, state, x, train=True)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new[3]["vector_u"]),
                               np.asarray(km.layers[-1].vector_u), rtol=1e-5, atol=1e-7)
    emb, eparams, _ = jl.from_keras(ke)
    assert set(eparams[1]) == {"embeddings", "reverse_embeddings"}
    ids = np.array([[1, 2, 0, 5]], np.int32)
    with jax.numpy_rank_promotion("allow"):
        np.testing.assert_allclose(np.asarray(emb.apply(eparams, ids)), np.asarray(ke(ids)))
