"""UpSampling, ZeroPadding and Cropping against Keras 3 (JAX backend); error messages."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers.reshaping import _bilinear_matrix
from tests.keras_ref import keras_apply, normal

CF = "channels_first"
KEY = jax.random.key(0)

CASES = [
    # (kind, args, kwargs, input shape)
    ("UpSampling1D", (), {}, (2, 3, 2)),
    ("UpSampling1D", (3,), {}, (2, 4, 2)),
    ("UpSampling2D", (), {}, (2, 3, 2, 2)),
    ("UpSampling2D", ((2, 3),), dict(data_format=CF), (2, 2, 3, 2)),
    ("UpSampling2D", ((2, 3),), dict(interpolation="bilinear"), (2, 4, 3, 2)),
    ("UpSampling2D", (3,), dict(interpolation="bilinear", data_format=CF), (2, 2, 3, 5)),
    ("UpSampling2D", ((1, 4),), dict(interpolation="bilinear"), (1, 2, 3, 1)),
    ("UpSampling2D", (2,), dict(interpolation="bicubic"), (1, 4, 3, 2)),
    ("UpSampling2D", (2,), dict(interpolation="lanczos3"), (1, 4, 3, 1)),
    ("UpSampling3D", (), {}, (2, 2, 3, 2, 2)),
    ("UpSampling3D", ((1, 2, 3),), dict(data_format=CF), (2, 2, 2, 2, 2)),
    ("ZeroPadding1D", (), {}, (2, 3, 2)),
    ("ZeroPadding1D", ((1, 3),), {}, (2, 3, 2)),
    ("ZeroPadding1D", (2,), dict(data_format=CF), (2, 2, 3)),
    ("ZeroPadding2D", (), {}, (2, 3, 2, 2)),
    ("ZeroPadding2D", (2,), {}, (2, 3, 2, 2)),
    ("ZeroPadding2D", ((1, 2),), {}, (2, 3, 2, 2)),
    ("ZeroPadding2D", (((1, 0), (2, 3)),), dict(data_format=CF), (2, 2, 3, 2)),
    ("ZeroPadding3D", (), {}, (1, 2, 2, 2, 2)),
    ("ZeroPadding3D", ((1, 0, 2),), dict(data_format=CF), (1, 2, 2, 3, 2)),
    ("ZeroPadding3D", (((0, 1), (2, 0), (1, 1)),), {}, (1, 2, 2, 3, 2)),
    ("Cropping1D", (), {}, (2, 5, 2)),
    ("Cropping1D", ((0, 3),), {}, (2, 5, 2)),
    ("Cropping1D", (2,), {}, (2, 5, 2)),
    ("Cropping2D", (), {}, (2, 3, 3, 2)),
    ("Cropping2D", (1,), {}, (2, 4, 5, 2)),
    ("Cropping2D", ((1, 2),), dict(data_format=CF), (2, 2, 4, 5)),
    ("Cropping2D", (((1, 0), (0, 2)),), {}, (2, 4, 5, 2)),
    ("Cropping3D", (), {}, (1, 3, 4, 3, 2)),
    ("Cropping3D", ((0, 1, 2),), dict(data_format=CF), (1, 2, 3, 4, 5)),
    ("Cropping3D", (((1, 0), (0, 2), (1, 1)),), {}, (1, 3, 4, 3, 2)),
]


@pytest.mark.parametrize("kind,args,kwargs,shape", CASES, ids=lambda v: str(v))
def test_matches_keras(kind, args, kwargs, shape):
    x = normal(shape)
    layer = getattr(jl, kind)(*args, **kwargs)
    out_shape, params = layer.init(KEY, (None,) + shape[1:])
    assert params == ()
    y = layer.apply(params, x)
    ref = keras_apply(getattr(keras.layers, kind)(*args, **kwargs), x)
    assert tuple(out_shape[1:]) == ref.shape[1:]
    np.testing.assert_allclose(np.asarray(y), ref, atol=1e-5, rtol=1e-5)


def test_bilinear_weights_half_pixel_clamped():
    m = _bilinear_matrix(3, 2)
    # Output 0 sits at input position -0.25, clamped to 0; output 1 at 0.25.
    np.testing.assert_allclose(m[0], [1, 0, 0])
    np.testing.assert_allclose(m[1], [0.75, 0.25, 0])
    np.testing.assert_allclose(m[-1], [0, 0, 1])
    np.testing.assert_allclose(m.sum(1), 1, rtol=1e-6)


def test_bilinear_equals_jax_image_resize():
    x = jnp.asarray(normal((2, 4, 5, 3)))
    y = jl.UpSampling2D((3, 2), interpolation="bilinear").apply((), x)
    ref = jax.image.resize(x, (2, 12, 10, 3), "bilinear")
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_free_spatial_dims():
    assert jl.UpSampling2D(2).init(KEY, (None, None, 3, 1))[0] == (None, None, 6, 1)
    assert jl.ZeroPadding1D(2).init(KEY, (None, None, 3))[0] == (None, None, 3)
    assert jl.Cropping2D(1).init(KEY, (None, 4, None, 2))[0] == (None, 2, None, 2)
    assert jl.Cropping1D(1).apply((), jnp.ones((1, 6, 2))).shape == (1, 4, 2)


@pytest.mark.parametrize("make,words", [
    (lambda: jl.UpSampling1D(0), ["UpSampling1D", "size"]),
    (lambda: jl.UpSampling2D((2, 2, 2)), ["UpSampling2D", "size"]),
    (lambda: jl.UpSampling2D(interpolation="area"), ["interpolation", "bilinear", "'area'"]),
    (lambda: jl.UpSampling3D(data_format="x"), ["data_format"]),
    (lambda: jl.ZeroPadding2D((1, 2, 3)), ["ZeroPadding2D", "padding"]),
    (lambda: jl.ZeroPadding1D(-1), ["ZeroPadding1D", "non-negative"]),
    (lambda: jl.ZeroPadding3D(((1, 1), (1, 1), (1,))), ["ZeroPadding3D", "pairs"]),
    (lambda: jl.Cropping1D((1, 2, 3)), ["Cropping1D", "cropping"]),
    (lambda: jl.Cropping2D("a"), ["Cropping2D", "cropping"]),
])
def test_bad_configuration_raises_valueerror(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("layer,shape,words", [
    (jl.Cropping1D((2, 2)), (None, 4, 3), ["Cropping1D", "(2, 2)", "(None, 4, 3)"]),
    (jl.Cropping2D(((1, 1), (2, 3))), (None, 5, 5, 1), ["Cropping2D", "(None, 5, 5, 1)"]),
    (jl.UpSampling2D(), (None, 4, 4), ["UpSampling2D", "rank-4"]),
    (jl.ZeroPadding3D(), (None, 2, 2, 2), ["ZeroPadding3D", "rank-5"]),
])
def test_impossible_shapes_raise_shapeerror(layer, shape, words):
    with pytest.raises(jl.ShapeError) as e:
        layer.init(KEY, shape)
    for w in words:
        assert w in str(e.value)


def test_apply_with_wrong_input_raises_shapeerror():
    with pytest.raises(jl.ShapeError, match=r"Cropping2D.*\(1, 2, 2, 1\)"):
        jl.Cropping2D(1).apply((), jnp.ones((1, 2, 2, 1)))
    with pytest.raises(jl.ShapeError, match=r"UpSampling1D.*rank-3"):
        jl.UpSampling1D().apply((), jnp.ones((4, 2)))
