"""Image layers against Keras 3 (JAX backend): resizing and cropping exactly, augmentations
with their randomness pinned (a zero-width factor, or Keras' own transform with the same
parameter), and the distribution of each augmentation's random parameter under jit and vmap."""
import functools
import math

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras.src.utils.image_utils import smart_resize

import jaxlayers as jl
from jaxlayers.layers.augmentation_color import adjust_brightness, adjust_contrast
from tests.keras_ref import normal

KEY = jax.random.key(0)


def keras_call(layer, x, training):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(layer(x, training=training))


def run(layer, x, rng=None, train=False):
    _, params = layer.init(KEY, (None,) + x.shape[1:])
    return np.asarray(layer.apply(params, x, rng=rng, train=train))


def batch_of_draws(layer, x, n):
    """`n` training outputs of `layer` on the single image `x`, one key each, under jit and
    vmap: (n, h, w, c)."""
    _, params = layer.init(KEY, (None,) + x.shape[1:])
    keys = jax.random.split(jax.random.key(3), n)
    draw = jax.jit(jax.vmap(lambda k: layer.apply(params, x, rng=k, train=True)[0]))
    return np.asarray(draw(keys))


IMAGES = normal((2, 7, 6, 3)) * 40 + 120


@pytest.mark.parametrize("kwargs", [
    {}, {"interpolation": "nearest"}, {"interpolation": "bicubic"},
    {"interpolation": "lanczos3", "antialias": True}, {"crop_to_aspect_ratio": True},
    {"pad_to_aspect_ratio": True, "fill_value": 3.0}, {"data_format": "channels_first"}])
def test_resizing_matches_keras(kwargs):
    x = IMAGES if kwargs.get("data_format") != "channels_first" else IMAGES[:, :, :4]
    ref = keras_call(keras.layers.Resizing(4, 9, **kwargs), x, False)
    np.testing.assert_allclose(run(jl.Resizing(4, 9, **kwargs), x), ref, rtol=1e-5, atol=1e-4)


def test_resizing_refuses_tensorflow_only_interpolations():
    with pytest.raises(ValueError, match="Resizing: interpolation='area' exists only in "
                                         "TensorFlow"):
        jl.Resizing(2, 2, interpolation="area")


@pytest.mark.parametrize("size", [(3, 4), (9, 4), (3, 8)])
def test_center_crop_matches_keras(size):
    ref = keras_call(keras.layers.CenterCrop(*size), IMAGES, False)
    np.testing.assert_allclose(run(jl.CenterCrop(*size), IMAGES), ref, rtol=1e-5, atol=1e-4)


def test_random_crop_windows_and_inference():
    x = np.arange(2 * 7 * 6, dtype=np.float32).reshape(2, 7, 6, 1)
    np.testing.assert_allclose(run(jl.RandomCrop(4, 3), x),
                               np.asarray(smart_resize(x, (4, 3))), rtol=1e-6)
    outs = batch_of_draws(jl.RandomCrop(4, 3), x[:1], 200)
    corners = {(int(o[0, 0, 0]) // 6, int(o[0, 0, 0]) % 6) for o in outs}
    assert corners == {(r, c) for r in range(4) for c in range(4)}   # every window drawn
    for o in outs:
        r, c = int(o[0, 0, 0]) // 6, int(o[0, 0, 0]) % 6
        np.testing.assert_array_equal(o, x[0, r:r + 4, c:c + 3])


@pytest.mark.parametrize("mode, axes", [("horizontal", (1,)), ("vertical", (0,)),
                                        ("horizontal_and_vertical", (0, 1))])
def test_random_flip_matches_keras_and_flips_half(mode, axes):
    x = IMAGES[:1]
    outs = batch_of_draws(jl.RandomFlip(mode), x, 400)
    flipped = np.array([np.allclose(o, np.flip(x[0], axes)) for o in outs])
    assert all(f or np.allclose(o, x[0]) for f, o in zip(flipped, outs))
    assert 0.4 < flipped.mean() < 0.6
    klayer = keras.layers.RandomFlip(mode)
    ref = np.asarray(klayer.transform_images(np.repeat(x, 2, 0), {
        "flips": np.array([True, False]).reshape(2, 1, 1, 1)}))
    np.testing.assert_allclose(ref[0], np.flip(x[0], axes))
    np.testing.assert_allclose(ref[1], x[0])
    np.testing.assert_array_equal(run(jl.RandomFlip(mode), x), x)       # inference


@pytest.mark.parametrize("kwargs", [{"fill_mode": "constant", "fill_value": 5.0},
                                    {"fill_mode": "reflect", "interpolation": "nearest"},
                                    {"fill_mode": "wrap"}, {"fill_mode": "nearest"}])
def test_affine_augmentations_match_keras_with_pinned_factors(kwargs):
    for make in [lambda m: m.RandomRotation((0.125, 0.125), **kwargs),
                 lambda m: m.RandomRotation((-0.3, -0.3), **kwargs),
                 lambda m: m.RandomZoom((-0.3, -0.3), (0.25, 0.25), **kwargs),
                 lambda m: m.RandomZoom((0.4, 0.4), **kwargs),
                 lambda m: m.RandomTranslation((0.25, 0.25), (-0.4, -0.4), **kwargs)]:
        ref = keras_call(make(keras.layers), IMAGES, True)
        got = run(make(jl), IMAGES, rng=jax.random.key(1), train=True)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(run(make(jl), IMAGES), IMAGES)    # inference


def test_affine_channels_first_matches_channels_last():
    layer = functools.partial(jl.RandomRotation, (0.1, 0.1), fill_mode="constant")
    last = run(layer(), IMAGES, rng=KEY, train=True)
    first = run(layer(data_format="channels_first"), IMAGES.transpose(0, 3, 1, 2), rng=KEY,
                train=True)
    np.testing.assert_allclose(first.transpose(0, 2, 3, 1), last, rtol=1e-5, atol=1e-4)


def dot_image(size=21, row=None, col=None):
    """A 3x3 bright square centred at (row, col) on black."""
    x = np.zeros((1, size, size, 1), np.float32)
    r, c = size // 2 if row is None else row, size // 2 if col is None else col
    x[0, r - 1:r + 2, c - 1:c + 2, 0] = 1
    return x


def dot_positions(outs):
    """The centroid (row, col) of each image's brightness."""
    rows, cols = np.meshgrid(np.arange(outs.shape[1]), np.arange(outs.shape[2]), indexing="ij")
    mass = outs[..., 0].sum((1, 2))
    return np.stack([(outs[..., 0] * rows).sum((1, 2)) / mass,
                     (outs[..., 0] * cols).sum((1, 2)) / mass], 1)


def test_random_translation_distribution():
    layer = jl.RandomTranslation(0.2, (-0.1, 0.3), fill_mode="constant")
    shifts = dot_positions(batch_of_draws(layer, dot_image(), 300)) - 10
    assert shifts[:, 0].min() >= -0.2 * 21 - 1 and shifts[:, 0].max() <= 0.2 * 21 + 1
    assert shifts[:, 1].min() >= -0.1 * 21 - 1 and shifts[:, 1].max() <= 0.3 * 21 + 1
    np.testing.assert_allclose(shifts.mean(0), [0.0, 0.1 * 21], atol=0.6)
    assert shifts[:, 0].std() > 2                              # spread, not a constant


def test_random_rotation_and_zoom_distributions():
    outs = batch_of_draws(jl.RandomRotation(0.1, fill_mode="constant"), dot_image(col=17), 300)
    rows, cols = (dot_positions(outs) - 10).T
    turns = np.arctan2(rows, cols) / (2 * math.pi)
    assert np.abs(turns).max() <= 0.1 + 0.01 and turns.std() > 0.04
    assert abs(turns.mean()) < 0.015
    outs = batch_of_draws(jl.RandomZoom((-0.5, 0.0), fill_mode="constant"), dot_image(col=14),
                          300)
    distance = dot_positions(outs)[:, 1] - 10            # 4 / zoom, zoom in [0.5, 1]
    assert distance.min() >= 4 - 0.1 and distance.max() <= 8 + 0.1 and distance.std() > 0.8


def test_color_transforms_match_keras():
    x = IMAGES.clip(0, 255)
    factors = np.array([0.3, 1.6], np.float32)
    ref = keras.layers.RandomContrast(0.5).transform_images(
        x, {"contrast_factor": factors.reshape(2, 1, 1, 1)})
    np.testing.assert_allclose(adjust_contrast(x, factors, (0, 255)), ref, rtol=1e-5,
                               atol=1e-3)
    deltas = np.array([-0.2, 0.1], np.float32)
    ref = keras.layers.RandomBrightness(0.5, value_range=(0, 1)).transform_images(
        x / 255, {"rgb_delta": deltas.reshape(2, 1, 1, 1)})
    np.testing.assert_allclose(adjust_brightness(x / 255, deltas, (0, 1)), ref, rtol=1e-5,
                               atol=1e-6)


def test_contrast_and_brightness_distributions():
    x = np.full((1, 4, 4, 1), 100.0, np.float32)
    x[0, 0, 0, 0] = 116.0                                   # mean 101, deviation 15 there
    outs = batch_of_draws(jl.RandomContrast((0.2, 0.5)), x, 400)
    factors = (outs[:, 0, 0, 0] - outs[:, 1, 1, 0]) / 16
    assert factors.min() >= 0.8 - 1e-4 and factors.max() <= 1.5 + 1e-4
    np.testing.assert_allclose(factors.mean(), 1.15, atol=0.03)
    outs = batch_of_draws(jl.RandomBrightness((-0.1, 0.3)), x, 400)
    deltas = (outs[:, 1, 1, 0] - 100) / 255
    assert deltas.min() >= -0.1 - 1e-5 and deltas.max() <= 0.3 + 1e-5
    np.testing.assert_allclose(deltas.mean(), 0.1, atol=0.01)
    assert keras.layers.RandomContrast(0.5).factor == (0, 0.5)    # the rule followed


def test_augmentations_are_identity_in_inference_and_need_a_key_in_training():
    x = IMAGES
    for layer in [jl.RandomContrast(0.5), jl.RandomBrightness(0.2), jl.RandomZoom(0.2),
                  jl.RandomTranslation(0.1, 0.1), jl.RandomRotation(0.2), jl.RandomFlip()]:
        np.testing.assert_array_equal(run(layer, x), x)
        with pytest.raises(ValueError, match=f"{layer.kind}.*needs an rng"):
            run(layer, x, train=True)
    with pytest.raises(jl.ShapeError, match="RandomFlip.*rank-4"):
        jl.RandomFlip().init(KEY, (None, 4, 3))
    with pytest.raises(ValueError, match="RandomRotation: factor must be"):
        jl.RandomRotation(2.0)
    uint8 = np.full((1, 4, 4, 3), 200, np.uint8)
    assert run(jl.RandomBrightness(0.2), uint8, rng=KEY, train=True).dtype == jnp.float32


def test_random_invert_matches_keras_and_inverts_with_its_probability():
    x = IMAGES.clip(0, 255)
    ref = keras.layers.RandomInvert().transform_images(
        x, {"apply_inversion": np.array([True, False])})
    np.testing.assert_allclose(ref[0], 255 - x[0])          # Keras' inversion: high - x
    np.testing.assert_allclose(ref[1], x[1])
    got = run(jl.RandomInvert(), x, rng=KEY, train=True)      # factor 1: p uniform in [0, 1]
    assert all(np.allclose(g, 255 - xi) or np.allclose(g, xi) for g, xi in zip(got, x))
    outs = batch_of_draws(jl.RandomInvert((0.6, 0.6)), x[:1], 400)   # p pinned at 0.6
    inverted = np.array([np.allclose(o, 255 - x[0]) for o in outs])
    assert all(i or np.allclose(o, x[0]) for i, o in zip(inverted, outs))
    assert 0.52 < inverted.mean() < 0.68
    np.testing.assert_array_equal(run(jl.RandomInvert(), x), x)


@pytest.mark.parametrize("value_range", [(0, 255), (0, 1)])
def test_auto_contrast_matches_keras(value_range):
    x = IMAGES.clip(0, 255) / (255 / value_range[1])
    x[1, ..., 2] = 0.5                                  # a constant channel stays as it is
    ref = keras_call(keras.layers.AutoContrast(value_range), x, False)
    got = run(jl.AutoContrast(value_range), x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4 * value_range[1])
    np.testing.assert_allclose(run(jl.AutoContrast(value_range), x, train=True), got)
