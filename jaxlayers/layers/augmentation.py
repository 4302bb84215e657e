"""What every image preprocessing and augmentation layer shares (private): Keras' `factor`
and `value_range` arguments, the batch-first image layout, and the layer skeleton.

Keras' rule, kept by every augmentation layer: it acts only with ``train=True``, and then
needs an ``rng`` key (a ValueError naming the layer otherwise); in inference it returns its
input (RandomCrop excepted: it center-crops, see there). Random parameters are drawn per
image from the key, so Keras and jaxlayers draw different numbers with the same
distribution. `seed` arguments are accepted for Keras compatibility and unused.

Images are 4-D, batch first: ``(batch, height, width, channels)`` ("channels_last") or
``(batch, channels, height, width)``. Integer images (uint8) are computed in float32, as
Keras' layers do; floating images keep their dtype.
"""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from ..core import Layer, Shape, ShapeError, as_shape
from .args import ArgumentTypeError
from .checks import check_rank, need_rng
from .core import seed_arg
from .spatial import data_format as _data_format

__all__ = ["factor_range", "value_range_arg", "image_layer", "image_size", "coin_flips"]


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def factor_range(kind: str, arg: str, factor, bounds=(-1.0, 1.0)) -> tuple:
    """Keras' `factor` as ``(lower, upper)``: a number ``f`` means ``(max(-f, low), f)``, a
    pair is sorted; both must lie within `bounds` (Keras' ``_set_factor``)."""
    expected = f"a number or a pair of numbers in [{bounds[0]}, {bounds[1]}]"
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(map(_is_number, factor)):
            raise ArgumentTypeError(f"{kind}: {arg} must be {expected}, received {factor!r}")
        if factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(f"{kind}: {arg} must be {expected}, received {factor!r}")
        lower, upper = sorted(float(f) for f in factor)
        return lower, upper
    if not _is_number(factor):
        raise ArgumentTypeError(f"{kind}: {arg} must be {expected}, received {factor!r}")
    if not bounds[0] <= factor <= bounds[1]:
        raise ValueError(f"{kind}: {arg} must be {expected}, received {factor!r}")
    factor = abs(float(factor))
    return max(-factor, bounds[0]), factor


def value_range_arg(kind: str, value_range) -> tuple:
    """Keras' `value_range`: the images' ``(low, high)`` (sorted), two numbers."""
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2 or not all(
            map(_is_number, value_range)):
        raise ArgumentTypeError(f"{kind}: value_range must be a pair (low, high) of numbers, "
                                f"received {value_range!r}")
    low, high = sorted(float(v) for v in value_range)
    return low, high


def coin_flips(rng, batch: int, low: float, high: float):
    """Keras' per-image "apply with probability" rule: each image draws p uniform in
    ``[low, high]`` and is selected (True) with probability p; shape (batch,)."""
    k1, k2 = jax.random.split(rng)
    p = jax.random.uniform(k1, (batch,), minval=low, maxval=high)
    return jax.random.uniform(k2, (batch,)) < p


def image_size(name: str, shape, data_format: str) -> tuple:
    """``(height, width)`` of a 4-D image shape (a ShapeError naming the layer)."""
    check_rank(name, shape, rank=4)
    return (shape[1], shape[2]) if data_format == "channels_last" else (shape[2], shape[3])


def image_layer(kind: str, name: str, data_format, transform, *, active=True, seed=None,
                inference=None, out_size=None, need_size=False, channels=None) -> Layer:
    """A parameter-free image layer.

    ``transform(rng, x)`` runs in training (when `active`), `inference(x)` (default: the
    identity) otherwise; both see channels_last images (the layout is switched around
    them) in a floating dtype. `out_size` ``(height, width)`` replaces the spatial sizes in
    the output shape; `need_size` requires them known at init; `channels` (a tuple) lists the
    channel counts the layer accepts (RGB layers: 3).
    """
    seed_arg(kind, seed)
    fmt = _data_format(kind, data_format)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        size = image_size(name, shape, fmt)
        if need_size and any(d is None for d in size):
            raise ShapeError(f"the height and width must be known, received {shape!r}", name)
        depth = shape[3] if fmt == "channels_last" else shape[1]
        if channels is not None and depth not in channels:
            raise ShapeError(f"expected {' or '.join(map(str, channels))} channels (RGB "
                             f"images), received {shape!r}", name)
        if out_size is None:
            return shape, ()
        if fmt == "channels_last":
            return Shape((shape[0],) + tuple(out_size) + (shape[3],)), ()
        return Shape(shape[:2] + tuple(out_size)), ()

    def apply(params, x, *, rng=None, train=False):
        if x.ndim != 4:
            raise ShapeError(f"expected 4-D images (batch first), received {Shape(x.shape)!r}",
                             name)
        x = x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)
        if fmt == "channels_first":
            x = jnp.transpose(x, (0, 2, 3, 1))
        if train and active:
            need_rng(name, rng)
            y = transform(rng, x)
        else:
            y = x if inference is None else inference(x)
        y = y.astype(x.dtype)
        return jnp.transpose(y, (0, 3, 1, 2)) if fmt == "channels_first" else y

    return Layer(init, apply, name=name)
