"""Colour layers on `value_range` images: the augmentations RandomContrast, RandomBrightness
and RandomInvert (Keras' arithmetic, the result kept in that range), and AutoContrast."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, describe
from .args import keras_layer
from .augmentation import coin_flips, factor_range, image_layer, value_range_arg

__all__ = ["RandomContrast", "RandomBrightness", "RandomInvert", "AutoContrast",
           "adjust_contrast", "adjust_brightness", "auto_contrast"]


def adjust_contrast(x, factors, value_range):
    """``(x - mean) * factor + mean`` per image and channel (mean over height and width),
    clipped to `value_range`; `x` channels_last, `factors` of shape (batch,)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    y = (x - mean) * factors.reshape(-1, 1, 1, 1).astype(x.dtype) + mean
    return jnp.clip(y, value_range[0], value_range[1])


def adjust_brightness(x, deltas, value_range):
    """``x + delta * (high - low)`` per image, clipped to `value_range`."""
    span = value_range[1] - value_range[0]
    return jnp.clip(x + (deltas * span).reshape(-1, 1, 1, 1).astype(x.dtype),
                    value_range[0], value_range[1])


@keras_layer
def RandomContrast(factor, value_range=(0, 255), seed=None, data_format=None) -> Layer:
    """Scale each image's deviation from its per-channel mean by a random contrast factor in
    training (Keras' rule: the factor is uniform in ``[1 - lower, 1 + upper]``, where a
    number f means ``(lower, upper) = (0, f)``); the identity in inference.

    Args:
      factor: a number f or a pair (lower, upper), in [0, 1].
      value_range: the images' ``(low, high)``; outputs are clipped to it.
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.
      data_format: "channels_last" (None) or "channels_first" (a base-layer keyword in Keras).

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: the same.
    """
    kind = "RandomContrast"
    low, high = factor_range(kind, "factor", factor, bounds=(0.0, 1.0))
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        factors = jax.random.uniform(rng, (x.shape[0],), minval=1.0 - low, maxval=1.0 + high)
        return adjust_contrast(x, factors, limits)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed,
                       active=(low, high) != (0, 0))


@keras_layer
def RandomBrightness(factor, value_range=(0, 255), seed=None, data_format=None) -> Layer:
    """Add a random brightness offset to each image in training: ``x + u * (high - low)``
    with u uniform in the factor's range, clipped to `value_range`; the identity in inference.

    Args:
      factor: a number f (``u`` in ``[-f, f]``) or a pair (lower, upper), in [-1, 1].
      value_range: the images' ``(low, high)``; outputs are clipped to it.
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.
      data_format: "channels_last" (None) or "channels_first" (a base-layer keyword in Keras).

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: the same.
    """
    kind = "RandomBrightness"
    low, high = factor_range(kind, "factor", factor)
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        deltas = jax.random.uniform(rng, (x.shape[0],), minval=low, maxval=high)
        return adjust_brightness(x, deltas, limits)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed,
                       active=(low, high) != (0, 0))


@keras_layer
def RandomInvert(factor=1.0, value_range=(0, 255), seed=None, data_format=None) -> Layer:
    """Invert images (``high - x``) at random in training: each image draws a probability p
    uniform in the factor's range and is inverted with probability p; the identity in
    inference.

    Args:
      factor: a number f (p in ``[0, f]``) or a pair (lower, upper), in [0, 1].
      value_range: the images' ``(low, high)``; an inverted pixel is ``high - x``.
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: the same.
    """
    kind = "RandomInvert"
    low, high = factor_range(kind, "factor", factor, bounds=(0.0, 1.0))
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        flip = coin_flips(rng, x.shape[0], low, high).reshape(-1, 1, 1, 1)
        return jnp.where(flip, jnp.asarray(limits[1], x.dtype) - x, x)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed,
                       active=high > 0)


def auto_contrast(x, value_range):
    """Stretch each image's channels to span `value_range` (min to low, max to high); a
    constant channel is left as it is."""
    lo, hi = value_range
    low = jnp.min(x, axis=(1, 2), keepdims=True)
    high = jnp.max(x, axis=(1, 2), keepdims=True)
    flat = high == low
    span = jnp.where(flat, jnp.ones_like(high), high - low)
    y = jnp.clip((x - low) / span * (hi - lo) + lo, lo, hi)
    return jnp.where(flat, x, y)


@keras_layer
def AutoContrast(value_range=(0, 255), data_format=None) -> Layer:
    """Stretch each image's channels to the full `value_range` (not random: it acts in
    training and inference alike, as Keras).

    Args:
      value_range: the images' ``(low, high)``.
      data_format: "channels_last" (None) or "channels_first" (a base-layer keyword in Keras).

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: the same.
    """
    kind = "AutoContrast"
    limits = value_range_arg(kind, value_range)
    return image_layer(kind, describe(kind, value_range), data_format, None, active=False,
                       inference=lambda x: auto_contrast(x, limits))
