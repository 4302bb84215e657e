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
from jaxlayers.layers import augmentation_filter as AF
from jaxlayers.layers import augmentation_tone as AT
from jaxlayers.layers.augmentation_color import adjust_brightness, adjust_contrast
from jaxlayers.layers.augmentation_geometry import affine_transform
from tests.keras_ref import normal

KEY = jax.random.key(0)


def keras_call(layer, x, training):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(layer(x, training=training))


def run(layer, x, rng=None, train=False):
    _, params = layer.init(KEY, (None,) + x.shape[1:])
    return np.asarray(layer.apply(params, x, rng=rng, train=train))


def batch_of_draws(layer, x, n=400):
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


RGB = np.random.default_rng(5).uniform(0, 255, (2, 6, 5, 3)).astype(np.float32)
PICK = np.array([True, False])


def keras_transform(layer, x, transformation):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(layer.transform_images(x, transformation))


@pytest.mark.parametrize("scale", [255, 1])
def test_tone_transforms_match_keras_with_fixed_parameters(scale):
    x, vr = RGB / (255 / scale), (0, scale)
    ref = keras_transform(keras.layers.RandomGrayscale(), x, PICK.reshape(2, 1, 1, 1))
    got = np.where(PICK.reshape(2, 1, 1, 1), AT.rgb_to_grayscale(x), x)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert np.ptp(got[0], axis=-1).max() < 1e-4 * scale                  # gray: r = g = b
    u = np.array([0.1, 0.45] if scale == 255 else [0.2, 0.9], np.float32)  # 0.9: clipped at 1
    m = u / (1 - u + 1e-7)
    ref = keras_transform(keras.layers.RandomSaturation(0.5, value_range=vr), x, {"factor": m})
    np.testing.assert_allclose(AT.adjust_saturation(x, m), ref, rtol=1e-5, atol=1e-5 * scale)
    d = np.array([0.3, -0.45], np.float32)
    ref = keras_transform(keras.layers.RandomHue(0.5, value_range=vr), x, {"factor": d})
    np.testing.assert_allclose(AT.adjust_hue(x, d, vr), ref, rtol=1e-5, atol=1e-5 * scale)
    add, thr = np.array([20.0, 0.0], np.float32), np.array([128.0, 200.0], np.float32)
    ref = keras_transform(keras.layers.Solarization(value_range=vr), x, {
        "additions": add.reshape(2, 1, 1, 1), "thresholds": thr.reshape(2, 1, 1, 1)})
    np.testing.assert_allclose(AT.solarize(x, add, thr, vr), ref, rtol=1e-5, atol=1e-5 * scale)
    bits = np.array([3, 6], np.uint8)
    ref = keras_transform(keras.layers.RandomPosterization(4, value_range=vr), x,
                          {"shift_factor": 8 - bits})
    np.testing.assert_allclose(AT.posterize(x, bits, vr), ref, rtol=1e-6)
    assert len(np.unique(ref[0] * 255 / scale)) <= 8                     # 3 bits: 8 levels


@pytest.mark.parametrize("fill_mode", ["reflect", "constant"])
def test_filter_and_shear_transforms_match_keras_with_fixed_parameters(fill_mode):
    x = RGB
    u = np.array([0.1, 0.9], np.float32)
    ref = keras_transform(keras.layers.RandomSharpness(0.5), x, {"factor": u})
    np.testing.assert_allclose(AF.sharpen(x, u, (0, 255)), ref, rtol=1e-5, atol=1e-3)
    for size in [3, (3, 5)]:
        sigma = np.array([0.7, 0.4], np.float32)
        ref = keras_transform(keras.layers.RandomGaussianBlur(kernel_size=size), x, {
            "should_apply_blur": PICK, "blur_factor": sigma})
        blurred = AF.depthwise_filter(x, AF.gaussian_kernel(
            (size, size) if size == 3 else size, sigma))
        np.testing.assert_allclose(np.where(PICK.reshape(2, 1, 1, 1), blurred, x).clip(0, 255),
                                   ref, rtol=1e-5, atol=1e-3)
    boxes = np.array([[1.2, 3.7, 0.5, 4.1], [0.0, 5.0, 2.0, 6.0]], np.float32)
    klayer = keras.layers.RandomErasing(fill_value=7.0)
    masks = klayer._generate_batch_mask(x.shape, tuple(boxes.T))
    ref = keras_transform(klayer, x, {"apply_erasing": PICK, "batch_masks": masks,
                                      "fill_value": np.full_like(x, 7.0)})
    got = np.where(PICK.reshape(2, 1, 1, 1), AF.erase(x, boxes, np.full_like(x, 7.0)), x)
    np.testing.assert_array_equal(got, ref)
    shear = np.array([[0.2, -0.1], [-0.3, 0.25]], np.float32)
    ref = keras_transform(keras.layers.RandomShear(0.3, 0.3, fill_mode=fill_mode,
                                                   fill_value=4.0), x,
                          {"shear_factor": shear, "input_shape": x.shape})
    one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    matrices = np.stack([one, shear[:, 0], zero, shear[:, 1], one, zero], 1)
    np.testing.assert_allclose(affine_transform(x, matrices, "bilinear", fill_mode, 4.0), ref,
                               rtol=1e-5, atol=1e-3)


def pinned_pairs():
    """Layers whose randomness a factor pins, with the same arguments for jl and keras."""
    return [("RandomGrayscale", dict(factor=1.0)),
            ("RandomSaturation", dict(factor=(0.3, 0.3), value_range=(0, 255))),
            ("Solarization", dict(value_range=(0, 255))),
            ("RandomPosterization", dict(factor=(3, 3))),
            ("RandomSharpness", dict(factor=(0.8, 0.8))),
            ("RandomGaussianBlur", dict(factor=(1.0, 1.0), kernel_size=5, sigma=(0.6, 0.6)))]


@pytest.mark.parametrize("kind, kwargs", pinned_pairs())
def test_pinned_layers_match_keras_in_training_and_are_identity_in_inference(kind, kwargs):
    x = RGB
    ref = keras_call(getattr(keras.layers, kind)(**kwargs), x, True)
    layer = getattr(jl, kind)(**kwargs)
    np.testing.assert_allclose(run(layer, x, rng=KEY, train=True), ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(run(layer, x), x)
    with pytest.raises(ValueError, match=f"{kind}.*needs an rng"):
        run(layer, x, train=True)


def test_from_keras_converts_the_new_augmentations():
    layers = [keras.layers.RandomGrayscale(0.3), keras.layers.RandomSaturation(0.4),
              keras.layers.RandomHue(0.2, value_range=(0, 1)),
              keras.layers.Solarization(0.1, (0.2, 0.4)),
              keras.layers.RandomPosterization(5), keras.layers.RandomSharpness(0.3),
              keras.layers.RandomErasing(0.5, scale=0.2, fill_value=[1.0, 2.0, 3.0]),
              keras.layers.RandomGaussianBlur(0.5, kernel_size=(3, 5), sigma=0.5),
              keras.layers.RandomShear(0.2, (0.1, 0.3), fill_mode="constant")]
    model = keras.Sequential([keras.Input((6, 5, 3))] + layers)
    layer, params = jl.from_keras(model)[:2]
    np.testing.assert_array_equal(layer.apply(params, RGB), keras_call(model, RGB, False))
    got = layer.apply(params, RGB, rng=KEY, train=True)
    assert got.shape == RGB.shape and not np.allclose(got, RGB)
    names = [c.name for c in layer.children if c.kind != "InputLayer"]
    # Keras' configs hold the drawn ranges: Saturation (-f, f), Posterization (1, f).
    assert names[1] == "RandomSaturation((-0.4, 0.4))" and names[4] == "RandomPosterization((1, 5))"
    assert names[8] == "RandomShear((-0.2, 0.2), (0.1, 0.3))"


def test_grayscale_hue_and_saturation_distributions():
    x = np.array([[[[200.0, 50.0, 50.0]]]], np.float32)                   # one red pixel
    outs = batch_of_draws(jl.RandomGrayscale(0.3), x, 400)
    gray = np.ptp(outs[:, 0, 0], axis=-1) < 1e-3
    assert 0.24 < gray.mean() < 0.36
    hue = np.asarray(AT.rgb_to_hsv(jnp.asarray(batch_of_draws(jl.RandomHue((0.2, 0.6)), x))))
    turn = (hue[:, 0, 0, 0] + 0.5) % 1 - 0.5                              # red has hue 0
    assert np.all((np.abs(turn) >= 0.1 - 1e-4) & (np.abs(turn) <= 0.3 + 1e-4))
    assert 0.4 < (turn > 0).mean() < 0.6                                   # both directions
    sat = np.asarray(AT.rgb_to_hsv(jnp.asarray(batch_of_draws(jl.RandomSaturation(0.5), x))))
    ratio = sat[:, 0, 0, 1] / 0.75                                         # red: s = 0.75
    assert 0.4 < (ratio < 1e-6).mean() < 0.6         # Keras' [-f, f]: half the draws gray
    u = ratio[ratio > 1e-6] / (1 + ratio[ratio > 1e-6])                    # back to u
    assert u.max() <= 0.5 + 1e-3 and abs(u.mean() - 0.25) < 0.03


def test_solarization_posterization_and_sharpness_distributions():
    x = np.full((1, 2, 2, 1), 100.0, np.float32)
    outs = batch_of_draws(jl.Solarization(threshold_factor=(0.2, 0.6)), x)[:, 0, 0, 0]
    inverted = np.isclose(outs, 155.0)                # threshold in [51, 153]: p = 49 / 102
    assert np.all(inverted | np.isclose(outs, 100.0)) and abs(inverted.mean() - 49 / 102) < 0.07
    outs = batch_of_draws(jl.Solarization(addition_factor=(0.1, 0.2), threshold_factor=1.0), x)
    assert outs.min() >= 0 and len(np.unique(np.round(outs))) > 20
    outs = batch_of_draws(jl.RandomPosterization(6), x)[:, 0, 0, 0]    # bits 1..5 (6 excluded)
    freq = {v: np.mean(outs == v) for v in (0.0, 64.0, 96.0)}   # 100 = 0b1100100
    assert sum(freq.values()) == 1                              # 1 bit: 0, 2: 64, 3-5: 96
    np.testing.assert_allclose([freq[0.0], freq[64.0], freq[96.0]], [0.2, 0.2, 0.6], atol=0.06)
    img = np.zeros((1, 3, 3, 1), np.float32)
    img[0, 1, 1, 0] = 130.0                             # smoothed centre: 130 * 5/13 = 50
    outs = batch_of_draws(jl.RandomSharpness((0.2, 0.6), value_range=(0, 1000)), img)
    s = (outs[:, 1, 1, 0] - 50) / 80                    # centre = 50 + 80 s, s = 2u
    assert s.min() >= 0.4 - 1e-4 and s.max() <= 1.2 + 1e-4 and abs(s.mean() - 0.8) < 0.03


def test_blur_erasing_and_shear_distributions():
    dot = dot_image(9)
    outs = batch_of_draws(jl.RandomGaussianBlur((0.5, 0.5), sigma=(0.5, 1.0), value_range=(0, 1)),
                    dot)
    blurred = ~np.isclose(outs[:, 4, 3, 0], 1.0)
    assert abs(blurred.mean() - 0.5) < 0.07
    np.testing.assert_array_equal(outs[~blurred], np.repeat(dot, (~blurred).sum(), 0))
    flat = np.full((1, 10, 10, 1), 50.0, np.float32)
    outs = batch_of_draws(jl.RandomErasing((1.0, 1.0), scale=(0.09, 0.25), fill_value=0.0), flat)
    erased = (outs[..., 0] == 0)
    area = erased.sum((1, 2))
    assert area.min() >= 2 * 2 and area.max() <= 6 * 6 and np.all(area > 0)
    rows, cols = erased.any(2), erased.any(1)                    # one rectangle each
    assert np.all(erased.sum((1, 2)) == rows.sum(1) * cols.sum(1))
    outs = batch_of_draws(jl.RandomErasing((0.4, 0.4), fill_value=0.0), flat)
    assert abs((outs == 0).any((1, 2, 3)).mean() - 0.4) < 0.07
    shear = jl.RandomShear(x_factor=(0.2, 0.4), fill_mode="constant")
    outs = batch_of_draws(shear, dot_image(21, 16, 10))
    shift = dot_positions(outs)[:, 1] - 10                       # column read at c + s * row
    assert np.all((np.abs(shift) >= 0.2 * 16 - 0.3) & (np.abs(shift) <= 0.4 * 16 + 0.3))
    assert 0.4 < (shift > 0).mean() < 0.6


def test_new_augmentations_check_arguments_and_channels():
    with pytest.raises(ValueError, match="RandomGrayscale: factor must be a number in"):
        jl.RandomGrayscale(1.5)
    with pytest.raises(ValueError, match="RandomPosterization: factor must be an int or a pair"):
        jl.RandomPosterization(9)
    with pytest.raises(ValueError, match="RandomGaussianBlur: kernel_size must be an odd"):
        jl.RandomGaussianBlur(kernel_size=4)
    with pytest.raises(ValueError, match="RandomErasing: fill_value must be None, a number"):
        jl.RandomErasing(fill_value=[1.0, 2.0])
    with pytest.raises(jl.ShapeError, match="RandomHue.*expected 3 channels"):
        jl.RandomHue(0.2).init(KEY, (None, 4, 4, 2))
    np.testing.assert_array_equal(run(jl.RandomGrayscale(1.0), IMAGES[..., :1], rng=KEY,
                                      train=True), IMAGES[..., :1])
