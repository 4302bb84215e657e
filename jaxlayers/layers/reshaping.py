"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector; UpSampling1D/2D/3D,
ZeroPadding1D/2D/3D, Cropping1D/2D/3D.

All are parameter-free. The spatial ones have one N-D implementation, parameterised by the
spatial rank (`_upsampling`; `_margins` for both padding and cropping), and act on the
spatial axes of the layout (`data_format`); their public constructors are thin.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import Layer, Shape, ShapeError, as_shape, describe, is_free
from .args import ArgumentTypeError, keras_layer, positive_int
from .checks import check_rank
from .docstrings import doc
from .spatial import Layout, data_format as _data_format, int_tuple, pairs

__all__ = ["Flatten", "Reshape", "Permute", "RepeatVector", "UpSampling1D", "UpSampling2D",
           "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
           "Cropping2D", "Cropping3D"]


# --------------------------------------------------------------------------- Keras' core kind


@keras_layer
def Flatten(data_format: str = "channels_last") -> Layer:
    """Flatten every axis but the batch axis.

    Args:
      data_format: ``"channels_last"`` or ``"channels_first"`` (the channel axis is moved
        last first, as Keras does); None means ``"channels_last"``.

    Input shape: ``(batch, d1, ..., dn)``. Output shape: ``(batch, d1 * ... * dn)``
    (``(batch, 1)`` for a rank-1 input).
    """
    data_format = "channels_last" if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"Flatten: data_format must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    name = "Flatten()" if data_format == "channels_last" else describe(
        "Flatten", data_format=data_format)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        rest = shape[1:]
        if any(is_free(d) for d in rest):
            raise ShapeError(
                f"cannot flatten an input with a free non-batch dimension, received {shape!r}; "
                f"give every axis but the batch a fixed size (e.g. a fixed sequence length), or "
                f"use a global pooling layer instead", name)
        return Shape((shape[0], math.prod(rest))), ()

    def apply(params, x, *, rng=None, train=False):
        if x.ndim < 1:
            raise ShapeError("expected an input with a batch axis, received a scalar", name)
        if data_format == "channels_first" and x.ndim > 2:
            x = jnp.moveaxis(x, 1, -1)
        return x.reshape((x.shape[0], -1)) if x.ndim != 1 else x.reshape((-1, 1))

    return Layer(init, apply, name=name)


def _resolve_target(name, target, size, shape):
    """`target` with its -1 filled in so it holds `size` elements, or a ShapeError."""
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or size % known:
            raise ShapeError(f"cannot reshape an input of shape {shape!r} ({size} elements per "
                             f"example) to {target!r}: {known} does not divide {size}", name)
        return tuple(size // known if d == -1 else d for d in target)
    if known != size:
        raise ShapeError(f"cannot reshape an input of shape {shape!r} ({size} elements per "
                         f"example) to {target!r} ({known} elements)", name)
    return target


@keras_layer
def Reshape(target_shape) -> Layer:
    """Reshape every example to `target_shape`.

    Args:
      target_shape: the shape of one example, without the batch axis (ints, one -1 allowed).

    Input shape: ``(batch, ...)``. Output shape: ``(batch, *target_shape)``.
    """
    if not isinstance(target_shape, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in target_shape):
        raise ArgumentTypeError(f"Reshape: target_shape must be a tuple of ints, received "
                                f"{target_shape!r}")
    target = tuple(int(d) for d in target_shape)
    if target.count(-1) > 1 or any(d < -1 or d == 0 for d in target):
        raise ValueError(f"Reshape: target_shape may hold positive sizes and one -1, got "
                         f"{target_shape!r}")
    name = describe("Reshape", target)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        if any(is_free(d) for d in shape[1:]):
            if -1 in target:
                return Shape((shape[0],) + tuple(None if d == -1 else d for d in target)), ()
            return Shape((shape[0],) + target), ()
        out = _resolve_target(name, target, math.prod(shape[1:]), shape)
        return Shape((shape[0],) + out), ()

    def apply(params, x, *, rng=None, train=False):
        out = _resolve_target(name, target, math.prod(x.shape[1:]), Shape(x.shape))
        return x.reshape((x.shape[0],) + out)

    return Layer(init, apply, name=name)


@keras_layer
def Permute(dims) -> Layer:
    """Permute the non-batch axes.

    Args:
      dims: a permutation of 1..n (1-indexed, the batch axis being 0, as Keras counts).

    Input shape: ``(batch, d1, ..., dn)``. Output shape: the dims in the order `dims`.
    """
    if not isinstance(dims, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise ArgumentTypeError(f"Permute: dims must be a tuple of ints, received {dims!r}")
    dims = tuple(int(d) for d in dims)
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise ValueError(f"Permute: dims must be a permutation of 1..{len(dims)}, got {dims!r}")
    name = describe("Permute", dims)
    perm = (0,) + dims

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=len(dims) + 1)
        return Shape(shape[i] for i in perm), ()

    def apply(params, x, *, rng=None, train=False):
        if x.ndim != len(perm):
            raise ShapeError(f"expected a rank-{len(perm)} input, received {Shape(x.shape)!r}",
                             name)
        return jnp.transpose(x, perm)

    return Layer(init, apply, name=name)


@keras_layer
def RepeatVector(n: int) -> Layer:
    """Repeat a vector `n` times along a new time axis.

    Args:
      n: the number of repetitions, a positive int.

    Input shape: ``(batch, features)``. Output shape: ``(batch, n, features)``.
    """
    n = positive_int("RepeatVector", "n", n)
    name = describe("RepeatVector", n)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=2)
        return Shape((shape[0], n, shape[1])), ()

    def apply(params, x, *, rng=None, train=False):
        if x.ndim != 2:
            raise ShapeError(f"expected a rank-2 input (batch, features), received "
                             f"{Shape(x.shape)!r}", name)
        return jnp.broadcast_to(x[:, None, :], (x.shape[0], n, x.shape[1]))

    return Layer(init, apply, name=name)


# --------------------------------------------------------------------------- spatial


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


def _margins(kind, rank, arg, amounts, data_format=None) -> Layer:
    """ZeroPadding (`arg` "padding") or Cropping ("cropping") of the spatial dims by
    ``(before, after)`` amounts: one ``lax.pad``, whose negative widths crop."""
    amounts = pairs(kind, amounts, rank, arg)
    sign = 1 if arg == "padding" else -1
    layout = Layout(rank, _data_format(kind, data_format))
    opts = {"data_format": layout.data_format} if layout.first else {}
    shown = amounts if rank > 1 else amounts[0]
    name = describe(kind, shown, **opts)
    widths = layout.window([(sign * lo, sign * hi, 0) for lo, hi in amounts], (0, 0, 0))

    def sizes(shape, spatial):
        out = tuple(None if n is None else n + sign * (lo + hi)
                    for n, (lo, hi) in zip(spatial, amounts))
        if sign < 0 and any(o is not None and o < 1 for o in out):
            raise ShapeError(f"{arg}={shown!r} leaves nothing of input shape {Shape(shape)!r}",
                             name)
        return out

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, spatial, channels = layout.split(shape)
        return layout.join(batch, sizes(shape, spatial), channels), ()

    def apply(params, x, *, rng=None, train=False):
        sizes(x.shape, layout.check_array(name, x))
        return lax.pad(x, jnp.zeros((), x.dtype), widths)

    return Layer(init, apply, name=name)


_MARGINS_DOC = """{verb} {dims}{zeros} (Keras' `{kind}`).

    Args:
      {arg}: {amounts}
      {data_format}

    Input shape: ``(batch, {spatial}, channels)`` (channels_last) or
    ``(batch, channels, {spatial})``. Output shape: each spatial dim {change} by its {arg}.
    """
_DIMS = {1: "the time axis", 2: "rows and columns", 3: "the three spatial dims"}
_AMOUNTS = {1: "an int (both ends) or a pair ``(before, after)``.",
            2: "an int (every side), ``(rows, cols)`` (symmetric per dim) or\n"
               "  ``((top, bottom), (left, right))``.",
            3: "an int, a tuple of 3 ints (symmetric per dim) or 3 ``(before, after)`` pairs."}


def _margins_doc(rank, arg):
    """`doc` for the rank-`rank` ZeroPadding (`arg` "padding") or Cropping layer."""
    words = (dict(verb="Pad", zeros=" with zeros", change="grown") if arg == "padding" else
             dict(verb="Crop", zeros="", change="shrunk"))
    return doc(_MARGINS_DOC, rank=rank, arg=arg, dims=_DIMS[rank], amounts=_AMOUNTS[rank],
               **words)


@keras_layer
@_margins_doc(1, "padding")
def ZeroPadding1D(padding=1, data_format=None) -> Layer:
    return _margins("ZeroPadding1D", 1, "padding", padding, data_format)


@keras_layer
@_margins_doc(2, "padding")
def ZeroPadding2D(padding=(1, 1), data_format=None) -> Layer:
    return _margins("ZeroPadding2D", 2, "padding", padding, data_format)


@keras_layer
@_margins_doc(3, "padding")
def ZeroPadding3D(padding=((1, 1), (1, 1), (1, 1)), data_format=None) -> Layer:
    return _margins("ZeroPadding3D", 3, "padding", padding, data_format)


@keras_layer
def Cropping1D(cropping=(1, 1)) -> Layer:
    """Crop the time axis (Keras' `Cropping1D`).

    Args:
      cropping: an int (both ends) or a pair ``(start, end)``.

    Input shape: ``(batch, steps, features)``. Output shape: steps - start - end.
    """
    return _margins("Cropping1D", 1, "cropping", cropping)


@keras_layer
@_margins_doc(2, "cropping")
def Cropping2D(cropping=((0, 0), (0, 0)), data_format=None) -> Layer:
    return _margins("Cropping2D", 2, "cropping", cropping, data_format)


@keras_layer
@_margins_doc(3, "cropping")
def Cropping3D(cropping=((1, 1), (1, 1), (1, 1)), data_format=None) -> Layer:
    return _margins("Cropping3D", 3, "cropping", cropping, data_format)
