"""Filtering and occluding augmentations: RandomSharpness and RandomGaussianBlur (a small
depthwise convolution, zero-padded "same" as Keras' JAX backend) and RandomErasing (a random
rectangle filled with noise or a constant)."""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from ..core import Layer, describe
from .args import ArgumentTypeError, keras_layer, number
from .augmentation import coin_flips, factor_range, image_layer, value_range_arg
from .docstrings import doc

__all__ = ["RandomSharpness", "RandomGaussianBlur", "RandomErasing", "depthwise_filter",
           "sharpen", "gaussian_kernel", "erase"]

_A, _B = 1.0 / 13.0, 5.0 / 13.0
SMOOTH = ((_A, _A, _A), (_A, _B, _A), (_A, _A, _A))      # Keras' smoothing kernel


def depthwise_filter(x, kernel):
    """Filter each channel of channels_last images `x` with the 2-D `kernel` (kh, kw),
    zero padding, output the input's size."""
    c = x.shape[-1]
    k = jnp.broadcast_to(kernel.astype(x.dtype)[:, :, None, None], kernel.shape + (1, c))
    return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", feature_group_count=c,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def sharpen(x, factors, value_range):
    """Keras' sharpness: ``x + (1 - 2 u) (smooth(x) - x)`` per image (u of shape (batch,),
    0.5 keeps the image), clipped to `value_range`."""
    smooth = depthwise_filter(x, jnp.asarray(SMOOTH, x.dtype))
    s = (2.0 * factors).reshape(-1, 1, 1, 1).astype(x.dtype)
    return jnp.clip(x + (1.0 - s) * (smooth - x), value_range[0], value_range[1])


@keras_layer
@doc()
def RandomSharpness(factor, value_range=(0, 255), data_format=None, seed=None) -> Layer:
    """Sharpen or blur each image by a random amount in training; the identity in inference.

    Each image draws u uniform in the factor's range and becomes ``x + (1 - 2u) (s - x)``,
    s the image smoothed by Keras' 3x3 kernel (zero padding): u = 0.5 keeps the image, 0
    gives the smoothed image, 1 sharpens it.

    Args:
      factor: a number f (``[0, f]``) or a pair (lower, upper), in [0, 1].
      {shared_args}

    {same_images}
    """
    kind = "RandomSharpness"
    low, high = factor_range(kind, "factor", factor, bounds=(0.0, 1.0))
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        u = jax.random.uniform(rng, (x.shape[0],), minval=low, maxval=high)
        return sharpen(x, u, limits)

    return image_layer(kind, describe(kind, factor), data_format, transform, seed=seed)


def gaussian_kernel(size, sigma, dtype=jnp.float32):
    """A normalized 2-D Gaussian, ``size = (width, height)`` and ``sigma = (sx, sy)`` as in
    Keras' `gaussian_blur`: shape (height, width)."""
    def one(n, s):
        t = jnp.arange(n, dtype=dtype) - (n - 1) / 2
        k = jnp.exp(-0.5 * (t / s) ** 2)
        return k / jnp.sum(k)
    return jnp.outer(one(size[1], sigma[1]), one(size[0], sigma[0]))


def _odd_sizes(kind, kernel_size):
    expected = "an odd int > 0 or a pair of them (width, height)"
    values = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,)
    if len(values) not in (1, 2) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ArgumentTypeError(f"{kind}: kernel_size must be {expected}, "
                                f"received {kernel_size!r}")
    if not all(v > 0 and v % 2 == 1 for v in values):
        raise ValueError(f"{kind}: kernel_size must be {expected}, received {kernel_size!r}")
    return (int(values[0]), int(values[-1]))


@keras_layer
@doc()
def RandomGaussianBlur(factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
                       data_format=None, seed=None) -> Layer:
    """Blur images with a Gaussian at random in training; the identity in inference.

    Each image draws p uniform in the factor's range and is blurred with probability p;
    its two standard deviations (across and down) are drawn uniform in `sigma`'s range (plus
    1e-6), per image (Keras draws one pair per batch). Every output is clipped to
    `value_range`, as Keras.

    Args:
      factor: a number f (p in ``[0, f]``) or a pair (lower, upper), in [0, 1].
      kernel_size: the filter's size, an odd int or a pair of odd ints (width, height).
      sigma: a number s (``[0, s]``) or a pair (lower, upper), in [0, 1].
      {shared_args}

    {same_images}
    """
    kind = "RandomGaussianBlur"
    low, high = factor_range(kind, "factor", factor, bounds=(0.0, 1.0))
    size = _odd_sizes(kind, kernel_size)
    s_low, s_high = factor_range(kind, "sigma", sigma, bounds=(0.0, 1.0))
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        k1, k2 = jax.random.split(rng)
        blur = coin_flips(k1, x.shape[0], low, high)
        sigmas = jax.random.uniform(k2, (x.shape[0], 2), x.dtype, s_low, s_high) + 1e-6
        blurred = jax.vmap(lambda img, s: depthwise_filter(
            img[None], gaussian_kernel(size, s, x.dtype))[0])(x, sigmas)
        y = jnp.where(blur.reshape(-1, 1, 1, 1), blurred, x)
        return jnp.clip(y, limits[0], limits[1])

    return image_layer(kind, describe(kind, factor, kernel_size, sigma), data_format,
                       transform, seed=seed)


def erase(x, boxes, fill):
    """Replace, in each image, the pixels with ``x0 <= column < x1`` and ``y0 <= row < y1``
    by `fill` (an array like `x`); `boxes` (batch, 4) rows ``[x0, x1, y0, y1]``."""
    _, h, w, _ = x.shape
    rows = jnp.arange(h, dtype=boxes.dtype)[None, :, None, None]
    cols = jnp.arange(w, dtype=boxes.dtype)[None, None, :, None]
    x0, x1, y0, y1 = (boxes[:, i].reshape(-1, 1, 1, 1) for i in range(4))
    inside = (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)
    return jnp.where(inside, fill, x)


def _fill_value(kind, fill_value):
    if fill_value is None:
        return None
    if isinstance(fill_value, (tuple, list)):
        if len(fill_value) != 3:
            raise ValueError(f"{kind}: fill_value must be None, a number or three numbers "
                             f"(one per channel), received {fill_value!r}")
        return tuple(number(kind, "fill_value", v) for v in fill_value)
    return number(kind, "fill_value", fill_value)


@keras_layer
@doc()
def RandomErasing(factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
                  seed=None, data_format=None) -> Layer:
    """Erase a random rectangle of images at random in training; the identity in inference.

    Each image draws p uniform in the factor's range and is erased with probability p. The
    rectangle's width and height are ``sqrt(a) * w`` and ``sqrt(b) * h`` with a, b uniform
    in `scale`, placed uniformly inside the image; it is filled with `fill_value`, or (None)
    with Gaussian noise times the range's high end, clipped to `value_range`.

    Args:
      factor: a number f (p in ``[0, f]``) or a pair (lower, upper), in [0, 1].
      scale: a number s (``[0, s]``) or a pair (lower, upper) in [0, 1]: the fraction of
        each side, squared.
      fill_value: None (noise), a number, or three numbers (one per channel).
      value_range: the images' ``(low, high)``; the fill is clipped to it.
      {shared_args}

    {same_images}
    """
    kind = "RandomErasing"
    low, high = factor_range(kind, "factor", factor, bounds=(0.0, 1.0))
    s_low, s_high = factor_range(kind, "scale", scale, bounds=(0.0, 1.0))
    fill = _fill_value(kind, fill_value)
    limits = value_range_arg(kind, value_range)

    def transform(rng, x):
        k_box, k_pos, k_coin, k_fill = jax.random.split(rng, 4)
        batch, h, w, _ = x.shape
        sides = jnp.sqrt(jax.random.uniform(k_box, (batch, 2), x.dtype, s_low, s_high))
        size = jnp.asarray([[w, h]], x.dtype)
        lengths = sides * size
        starts = jax.random.uniform(k_pos, (batch, 2), x.dtype) * (size - lengths)
        ends = starts + lengths
        boxes = jnp.stack([starts[:, 0], ends[:, 0], starts[:, 1], ends[:, 1]], 1)
        if fill is None:
            value = jax.random.normal(k_fill, x.shape, x.dtype) * limits[1]
        else:
            value = jnp.broadcast_to(jnp.asarray(fill, x.dtype), x.shape)
        value = jnp.clip(value, limits[0], limits[1])
        erased = erase(x, boxes, value)
        return jnp.where(coin_flips(k_coin, batch, low, high).reshape(-1, 1, 1, 1), erased, x)

    return image_layer(kind, describe(kind, factor, scale), data_format, transform,
                       seed=seed, active=high > 0,
                       channels=(3,) if isinstance(fill, tuple) else None)
