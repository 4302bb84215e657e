"""Spatial reshaping layers: UpSampling1D/2D/3D, ZeroPadding1D/2D/3D, Cropping1D/2D/3D.

One N-D implementation per family (`_upsampling`, `_zero_padding`, `_cropping`),
parameterised by the spatial rank; the public constructors are thin. All are
parameter-free and act on the spatial axes of the layout (`data_format`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, Shape, ShapeError, describe
from .args import keras_layer
from .spatial import Layout, data_format as _data_format, int_tuple, pairs

__all__ = ["UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
           "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D"]

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


def _bilinear_matrix(n: int, factor: int) -> np.ndarray:
    """The (n * factor, n) matrix of 1-D linear interpolation weights with half-pixel
    centres, clamped at the edges: output i samples input position
    ``clip((i + 0.5) / factor - 0.5, 0, n - 1)``."""
    pos = np.clip((np.arange(n * factor) + 0.5) / factor - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo).astype(np.float32)
    m = np.zeros((n * factor, n), np.float32)
    m[np.arange(n * factor), lo] += 1 - frac
    m[np.arange(n * factor), hi] += frac
    return m


def _bilinear(x, layout: Layout, size):
    """Bilinear upsampling by integer factors: one interpolation matrix per spatial axis."""
    for a, f in zip(layout.spatial_axes, size):
        m = jnp.asarray(_bilinear_matrix(x.shape[a], f), x.dtype)
        x = jnp.moveaxis(jnp.tensordot(m, x, axes=((1,), (a,))), 0, a)
    return x


def _upsampling(kind, rank, size, data_format=None, interpolation="nearest") -> Layer:
    size = int_tuple(kind, size, rank, "size")
    layout = Layout(rank, _data_format(kind, data_format))
    allowed = INTERPOLATIONS if rank == 2 else ("nearest",)
    if interpolation not in allowed:
        raise ValueError(f"{kind}: interpolation must be one of {', '.join(map(repr, allowed))}, "
                         f"got {interpolation!r}")
    opts = {}
    if layout.first:
        opts["data_format"] = layout.data_format
    if interpolation != "nearest":
        opts["interpolation"] = interpolation
    name = describe(kind, size if rank > 1 else size[0], **opts)

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, spatial, channels = layout.split(shape)
        out = tuple(None if n is None else n * f for n, f in zip(spatial, size))
        return layout.join(batch, out, channels), ()

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x)
        if interpolation == "nearest":
            for a, f in zip(layout.spatial_axes, size):
                x = jnp.repeat(x, f, axis=a)
            return x
        if interpolation == "bilinear":
            return _bilinear(x, layout, size)
        out = layout.join(x.shape[0], [n * f for n, f in zip(spatial, size)],
                          layout.split(x.shape)[2])
        return jax.image.resize(x, tuple(out), method=interpolation, antialias=False)

    return Layer(init, apply, name=name)


@keras_layer
def UpSampling1D(size=2) -> Layer:
    """Repeat each time step `size` times (Keras' `UpSampling1D`).

    Args:
      size: the repetition factor, a positive int.

    Input shape: ``(batch, steps, features)``. Output shape: ``(batch, steps * size, features)``.
    """
    return _upsampling("UpSampling1D", 1, size)


@keras_layer
def UpSampling2D(size=(2, 2), data_format=None, interpolation="nearest") -> Layer:
    """Upsample rows and columns by integer factors `size` (Keras' `UpSampling2D`).

    Args:
      size: the factors for rows and columns, an int or a pair of positive ints.
      data_format: "channels_last" (None) or "channels_first".
      interpolation: "nearest" (repeat rows and columns), "bilinear" (half-pixel centres,
            clamped at the edges, as Keras), or "bicubic" / "lanczos3" / "lanczos5" (through
        `jax.image.resize`, as Keras' JAX backend does).

    Input shape: ``(batch, rows, cols, channels)`` (channels_last) or
    ``(batch, channels, rows, cols)``. Output shape: rows * size[0], cols * size[1].
    """
    return _upsampling("UpSampling2D", 2, size, data_format, interpolation)


@keras_layer
def UpSampling3D(size=(2, 2, 2), data_format=None) -> Layer:
    """Repeat each of the three spatial dims by `size` (nearest; Keras' `UpSampling3D`).

    Args:
      size: the factors for the three dims, an int or a tuple of 3 positive ints.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, d1, d2, d3, channels)`` (channels_last) or
    ``(batch, channels, d1, d2, d3)``. Output shape: each di * size[i].
    """
    return _upsampling("UpSampling3D", 3, size, data_format)


# --------------------------------------------------------------------------- padding, cropping


def _zero_padding(kind, rank, padding, data_format=None) -> Layer:
    amounts = pairs(kind, padding, rank, "padding")
    layout = Layout(rank, _data_format(kind, data_format))
    opts = {"data_format": layout.data_format} if layout.first else {}
    name = describe(kind, amounts if rank > 1 else amounts[0], **opts)

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, spatial, channels = layout.split(shape)
        out = tuple(None if n is None else n + lo + hi for n, (lo, hi) in zip(spatial, amounts))
        return layout.join(batch, out, channels), ()

    def apply(params, x, *, rng=None, train=False):
        layout.check_array(name, x)
        return jnp.pad(x, layout.window(amounts, (0, 0)))

    return Layer(init, apply, name=name)


@keras_layer
def ZeroPadding1D(padding=1, data_format=None) -> Layer:
    """Pad the time axis with zeros (Keras' `ZeroPadding1D`).

    Args:
      padding: an int (both sides) or a pair ``(left, right)``.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, steps, features)`` (channels_last) or ``(batch, features, steps)``.
    Output shape: steps + left + right.
    """
    return _zero_padding("ZeroPadding1D", 1, padding, data_format)


@keras_layer
def ZeroPadding2D(padding=(1, 1), data_format=None) -> Layer:
    """Pad rows and columns with zeros (Keras' `ZeroPadding2D`).

    Args:
      padding: an int (every side), ``(rows, cols)`` (symmetric per dim) or
        ``((top, bottom), (left, right))``.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, rows, cols, channels)`` (channels_last) or
    ``(batch, channels, rows, cols)``. Output shape: rows + top + bottom, cols + left + right.
    """
    return _zero_padding("ZeroPadding2D", 2, padding, data_format)


@keras_layer
def ZeroPadding3D(padding=((1, 1), (1, 1), (1, 1)), data_format=None) -> Layer:
    """Pad the three spatial dims with zeros (Keras' `ZeroPadding3D`).

    Args:
      padding: an int, a tuple of 3 ints (symmetric per dim) or 3 ``(before, after)`` pairs.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, d1, d2, d3, channels)`` (channels_last) or
    ``(batch, channels, d1, d2, d3)``. Output shape: each dim grown by its padding.
    """
    return _zero_padding("ZeroPadding3D", 3, padding, data_format)


def _cropping(kind, rank, cropping, data_format=None) -> Layer:
    amounts = pairs(kind, cropping, rank, "cropping")
    layout = Layout(rank, _data_format(kind, data_format))
    opts = {"data_format": layout.data_format} if layout.first else {}
    name = describe(kind, amounts if rank > 1 else amounts[0], **opts)

    def sizes(shape, spatial):
        out = tuple(None if n is None else n - lo - hi for n, (lo, hi) in zip(spatial, amounts))
        if any(o is not None and o < 1 for o in out):
            raise ShapeError(f"cropping={amounts if rank > 1 else amounts[0]!r} leaves nothing of "
                             f"input shape {Shape(shape)!r}", name)
        return out

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, spatial, channels = layout.split(shape)
        return layout.join(batch, sizes(shape, spatial), channels), ()

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x)
        out = sizes(x.shape, spatial)
        index = [slice(None)] * x.ndim
        for a, (lo, _), n in zip(layout.spatial_axes, amounts, out):
            index[a] = slice(lo, lo + n)
        return x[tuple(index)]

    return Layer(init, apply, name=name)


@keras_layer
def Cropping1D(cropping=(1, 1)) -> Layer:
    """Crop the time axis (Keras' `Cropping1D`).

    Args:
      cropping: an int (both ends) or a pair ``(start, end)``.

    Input shape: ``(batch, steps, features)``. Output shape: steps - start - end.
    """
    return _cropping("Cropping1D", 1, cropping)


@keras_layer
def Cropping2D(cropping=((0, 0), (0, 0)), data_format=None) -> Layer:
    """Crop rows and columns (Keras' `Cropping2D`).

    Args:
      cropping: an int, ``(rows, cols)`` (symmetric per dim) or
        ``((top, bottom), (left, right))``.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, rows, cols, channels)`` (channels_last) or
    ``(batch, channels, rows, cols)``. Output shape: each dim shrunk by its cropping.
    """
    return _cropping("Cropping2D", 2, cropping, data_format)


@keras_layer
def Cropping3D(cropping=((1, 1), (1, 1), (1, 1)), data_format=None) -> Layer:
    """Crop the three spatial dims (Keras' `Cropping3D`).

    Args:
      cropping: an int, a tuple of 3 ints (symmetric per dim) or 3 ``(before, after)`` pairs.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, d1, d2, d3, channels)`` (channels_last) or
    ``(batch, channels, d1, d2, d3)``. Output shape: each dim shrunk by its cropping.
    """
    return _cropping("Cropping3D", 3, cropping, data_format)
