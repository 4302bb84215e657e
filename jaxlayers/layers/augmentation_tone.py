"""Tone augmentations on RGB images: RandomGrayscale, RandomSaturation and RandomHue (through
HSV, with Keras' conversion formulas), Solarization and RandomPosterization (on the 0-255
scale, the image mapped there from its `value_range` and back)."""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from ..core import Layer, describe
from .args import ArgumentTypeError, keras_layer, number
from .augmentation import factor_range, image_layer, value_range_arg

__all__ = ["RandomGrayscale", "RandomSaturation", "RandomHue", "Solarization",
           "RandomPosterization", "rgb_to_grayscale", "rgb_to_hsv", "hsv_to_rgb",
           "adjust_saturation", "adjust_hue", "solarize", "posterize"]

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)      # Keras' (and TensorFlow's) luminance weights


def rgb_to_grayscale(x):
    """The luminance of channels_last RGB images, kept in all three channels."""
    gray = x @ jnp.asarray(GRAY_WEIGHTS, x.dtype)
    return jnp.broadcast_to(gray[..., None], x.shape)


def rgb_to_hsv(x):
    """Hue and saturation in [0, 1] and value (the channel maximum, on the image's scale)."""
    eps = jnp.finfo(x.dtype).eps
    x = jnp.where(jnp.abs(x) < eps, 0.0, x)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    value = jnp.maximum(jnp.maximum(r, g), b)
    spread = value - jnp.minimum(jnp.minimum(r, g), b)
    saturation = jnp.where(value > 0, spread / jnp.where(value > 0, value, 1.0), 0.0)
    norm = 1.0 / (6.0 * jnp.where(spread > 0, spread, 1.0))
    hue = jnp.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = jnp.where(value == r, norm * (g - b), hue)
    hue = jnp.where(spread > 0, hue, 0.0) + (hue < 0.0).astype(hue.dtype)
    return jnp.stack([hue, saturation, value], -1)


def hsv_to_rgb(hsv):
    """The inverse of `rgb_to_hsv` (hue taken modulo 1)."""
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    dh = jnp.mod(hue, 1.0) * 6.0
    shares = [jnp.clip(jnp.abs(dh - 3.0) - 1.0, 0.0, 1.0),
              jnp.clip(2.0 - jnp.abs(dh - 2.0), 0.0, 1.0),
              jnp.clip(2.0 - jnp.abs(dh - 4.0), 0.0, 1.0)]
    return jnp.stack([value * (1.0 - saturation + saturation * d) for d in shares], -1)


def _per_image(values, x):
    return values.reshape(-1, 1, 1).astype(x.dtype)


def adjust_saturation(x, multipliers):
    """Multiply each image's HSV saturation by its multiplier (shape (batch,)), clipped to
    [0, 1]: 0 gives the gray image, large values the fully saturated one."""
    hsv = rgb_to_hsv(x)
    saturation = jnp.clip(hsv[..., 1] * _per_image(multipliers, x), 0.0, 1.0)
    return hsv_to_rgb(jnp.stack([hsv[..., 0], saturation, hsv[..., 2]], -1))


def _to_unit(x, value_range, scale=1.0):
    low, high = value_range
    return (x - low) / (high - low) * scale


def _from_unit(x, value_range, scale=1.0):
    low, high = value_range
    return x / scale * (high - low) + low


def adjust_hue(x, deltas, value_range):
    """Rotate each image's hue by its delta (in turns, shape (batch,)); the result clipped to
    `value_range`."""
    hsv = rgb_to_hsv(_to_unit(x, value_range))
    hue = hsv[..., 0] + _per_image(deltas, x)
    hue = jnp.where(hue > 1.0, hue - 1.0, hue)
    hue = jnp.where(hue < 0.0, hue + 1.0, hue)
    rgb = hsv_to_rgb(jnp.stack([hue, hsv[..., 1], hsv[..., 2]], -1))
    return _from_unit(jnp.clip(rgb, 0.0, 1.0), value_range)


@keras_layer
def RandomGrayscale(factor=0.5, data_format=None, seed=None) -> Layer:
    """Turn images gray at random in training: each image, with probability `factor`, takes
    its luminance ``0.2989 r + 0.5870 g + 0.1140 b`` in all three channels; the identity in
    inference.

    Args:
      factor: the probability, a number in [0, 1].
      data_format: "channels_last" (None) or "channels_first".
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: ``(batch, h, w, 3)`` RGB images, or 1 channel (left as it is); channels
    first allowed. Output shape: the same.
    """
    kind = "RandomGrayscale"
    factor = number(kind, "factor", factor, minimum=0.0, maximum=1.0)

    def transform(rng, x):
        if x.shape[-1] == 1:
            return x
        pick = jax.random.uniform(rng, (x.shape[0], 1, 1, 1)) < factor
        return jnp.where(pick, rgb_to_grayscale(x), x)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed,
                       active=factor > 0, channels=(1, 3))


@keras_layer
def RandomSaturation(factor, value_range=(0, 255), data_format=None, seed=None) -> Layer:
    """Change each image's saturation at random in training; the identity in inference.

    Each image draws u uniform in the factor's range and multiplies its HSV saturation by
    ``u / (1 - u)``: u = 0.5 keeps the image, 0 (or less) makes it gray, 1 fully saturated.
    The factor follows Keras 3's code: a number f means ``[-f, f]``, so about half the draws
    of ``RandomSaturation(f)`` give a gray image (Keras' docstring says ``[0, f]``; pass a pair
    for that). The saturation is clipped to [0, 1] (Keras clips it to `value_range`, which
    with (0, 255) lets it pass 1 and the colours turn negative).

    Args:
      factor: a number f (``[-f, f]``) or a pair (lower, upper), in [-1, 1].
      value_range: the images' ``(low, high)`` (HSV is computed on that scale).
      data_format: "channels_last" (None) or "channels_first".
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: ``(batch, h, w, 3)`` RGB images (or channels first). Output shape: the same.
    """
    kind = "RandomSaturation"
    low, high = factor_range(kind, "factor", factor)
    value_range_arg(kind, value_range)

    def transform(rng, x):
        u = jax.random.uniform(rng, (x.shape[0],), minval=low, maxval=high)
        return adjust_saturation(x, u / (1.0 - u + 1e-7))

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed,
                       channels=(3,))


@keras_layer
def RandomHue(factor, value_range=(0, 255), data_format=None, seed=None) -> Layer:
    """Rotate each image's hue at random in training; the identity in inference.

    Each image draws u uniform in the factor's range and a random sign, and its hue turns by
    ``sign * u / 2`` (factor 1: up to half a turn either way), as Keras.

    Args:
      factor: a number f (``[0, f]``) or a pair (lower, upper), in [0, 1].
      value_range: the images' ``(low, high)``; outputs are clipped to it.
      data_format: "channels_last" (None) or "channels_first".
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: ``(batch, h, w, 3)`` RGB images (or channels first). Output shape: the same.
    """
    kind = "RandomHue"
    low, high = factor_range(kind, "factor", factor, bounds=(0.0, 1.0))
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        k1, k2 = jax.random.split(rng)
        sign = jnp.where(jax.random.uniform(k1, (x.shape[0],)) > 0.5, -1.0, 1.0)
        u = jax.random.uniform(k2, (x.shape[0],), minval=low, maxval=high)
        return adjust_hue(x, sign * u * 0.5, limits)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed,
                       active=(low, high) != (0, 0), channels=(3,))


def solarize(x, additions, thresholds, value_range):
    """On the 0-255 scale: add each image's addition, clip to [0, 255], and invert
    (``255 - v``) the values at or above the image's threshold; back to `value_range`."""
    y = jnp.clip(_to_unit(x, value_range, 255.0) + additions.reshape(-1, 1, 1, 1), 0, 255)
    y = jnp.where(y < thresholds.reshape(-1, 1, 1, 1), y, 255.0 - y)
    return _from_unit(y, value_range, 255.0)


def _unit_pair(kind, arg, value):
    """Solarization's factors: a number f means ``[0, f]``, a pair is sorted; in [0, 1]."""
    if isinstance(value, (tuple, list)):
        return factor_range(kind, arg, value, bounds=(0.0, 1.0))
    return 0.0, number(kind, arg, value, minimum=0.0, maximum=1.0)


@keras_layer
def Solarization(addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None,
                 data_format=None) -> Layer:
    """Solarize images in training: on the 0-255 scale each image adds a random offset,
    then every value at or above a random threshold v becomes ``255 - v``; the identity in
    inference. With the defaults every pixel is inverted.

    Offsets and thresholds are uniform in ``255 * [lower, upper]`` of their factor. Keras 3
    draws from ``[lower, 255 * upper]``, the same whenever lower is 0 (a number f means
    ``[0, f]``).

    Args:
      addition_factor: a number f (``[0, f]``) or a pair (lower, upper), in [0, 1].
      threshold_factor: a number f (``[0, f]``) or a pair (lower, upper), in [0, 1].
      value_range: the images' ``(low, high)``, mapped to 0-255 and back.
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.
      data_format: "channels_last" (None) or "channels_first" (a base-layer keyword in Keras;
        the layer acts on each value alike).

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: the same.
    """
    kind = "Solarization"
    add = _unit_pair(kind, "addition_factor", addition_factor)
    thr = _unit_pair(kind, "threshold_factor", threshold_factor)
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        k1, k2 = jax.random.split(rng)
        batch = x.shape[0]
        additions = jax.random.uniform(k1, (batch,), minval=255 * add[0], maxval=255 * add[1])
        thresholds = jax.random.uniform(k2, (batch,), minval=255 * thr[0],
                                        maxval=255 * thr[1])
        return solarize(x, additions, thresholds, limits)

    return image_layer(kind, describe(kind, addition_factor, threshold_factor), data_format,
                       transform, seed=seed)


def posterize(x, bits, value_range):
    """Keep the top `bits` (per image, shape (batch,)) of each 8-bit value: on the 0-255
    scale ``v >> (8 - bits) << (8 - bits)``, values truncated to integers first."""
    shift = (8 - bits).astype(jnp.uint8).reshape(-1, 1, 1, 1)
    v = jnp.clip(_to_unit(x, value_range, 255.0), 0, 255).astype(jnp.uint8)
    v = jnp.left_shift(jnp.right_shift(v, shift), shift)
    return _from_unit(v.astype(x.dtype), value_range, 255.0)


def _bits(kind, factor):
    expected = "an int or a pair of ints in [1, 8]"
    values = factor if isinstance(factor, (tuple, list)) else (factor,)
    if isinstance(factor, (tuple, list)) and len(factor) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ArgumentTypeError(f"{kind}: factor must be {expected}, received {factor!r}")
    if not all(1 <= v <= 8 for v in values):
        raise ValueError(f"{kind}: factor must be {expected}, received {factor!r}")
    return (1, int(factor)) if len(values) == 1 else tuple(sorted(map(int, factor)))


@keras_layer
def RandomPosterization(factor, value_range=(0, 255), data_format=None, seed=None) -> Layer:
    """Reduce each image to a random number of bits per channel in training (on the 0-255
    scale); the identity in inference.

    Keras 3's draw: a pair ``(n, n)`` keeps exactly n bits; otherwise the bits are a random
    integer in ``[lower, upper)`` (the upper bound excluded), where a number f means
    ``(1, f)``.

    Args:
      factor: an int f or a pair of ints (lower, upper), in [1, 8].
      value_range: the images' ``(low, high)``, mapped to 0-255 and back.
      data_format: "channels_last" (None) or "channels_first".
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: the same.
    """
    kind = "RandomPosterization"
    low, high = _bits(kind, factor)
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        if low == high:
            bits = jnp.full((x.shape[0],), low)
        else:
            bits = jax.random.randint(rng, (x.shape[0],), low, high)
        return posterize(x, bits, limits)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed)
