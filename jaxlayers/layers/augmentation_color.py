"""Colour augmentations: RandomContrast and RandomBrightness (Keras' arithmetic on
`value_range` images, the result clipped to that range)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, describe
from .args import keras_layer
from .augmentation import factor_range, image_layer, value_range_arg

__all__ = ["RandomContrast", "RandomBrightness", "adjust_contrast", "adjust_brightness"]


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
