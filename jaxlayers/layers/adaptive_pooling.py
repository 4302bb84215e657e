"""Adaptive pooling: AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D.

The output has a fixed spatial size whatever the input's. Along an axis of length ``n``
pooled to ``m``, output ``i`` reduces the window ``[floor(i * n / m), ceil((i + 1) * n / m))``
(PyTorch's and Keras 3's rule; windows overlap when ``m`` does not divide ``n``, and may
repeat an element when ``m > n``). The windows are known from the static input shape, so
each axis is one gather of ``(m, w)`` indices (``w`` the widest window) followed by a
masked reduction: no loop, the same program under jit, vmap and grad.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..core import Layer, ShapeError, describe, is_free
from .docstrings import per_rank
from .spatial import Layout, data_format as _data_format, int_tuple

__all__ = ["AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
           "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D"]


def adaptive_windows(n: int, m: int):
    """``(index, valid)``: ``(m, w)`` int32 indices of each output's window along an axis of
    length `n` pooled to `m` (padded with the window's last index), and a boolean mask of
    the real entries."""
    starts = (np.arange(m) * n) // m
    ends = -((-(np.arange(1, m + 1) * n)) // m)           # ceil((i + 1) * n / m)
    width = int((ends - starts).max())
    offsets = np.arange(width)
    valid = starts[:, None] + offsets[None, :] < ends[:, None]
    index = np.minimum(starts[:, None] + offsets[None, :], ends[:, None] - 1)
    return index.astype(np.int32), valid


def _pool_axis(x, axis: int, m: int, reduce: str):
    """`x` with `axis` pooled adaptively to `m` outputs."""
    index, valid = adaptive_windows(x.shape[axis], m)
    windows = jnp.take(x, index.reshape(-1), axis=axis)
    windows = windows.reshape(x.shape[:axis] + index.shape + x.shape[axis + 1:])
    rest = (1,) * (x.ndim - axis - 1)
    keep = valid.reshape((1,) * axis + valid.shape + rest)
    if reduce == "max":
        low = jnp.array(-jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else
                        jnp.iinfo(x.dtype).min, x.dtype)
        return jnp.max(jnp.where(keep, windows, low), axis=axis + 1)
    total = jnp.sum(jnp.where(keep, windows, jnp.zeros((), x.dtype)), axis=axis + 1)
    counts = valid.sum(axis=1).reshape((1,) * axis + (m,) + rest)
    return total / jnp.asarray(counts, x.dtype)


def _adaptive_pooling(kind: str, rank: int, reduce: str, output_size, data_format) -> Layer:
    sizes = int_tuple(kind, output_size, rank, "output_size")
    layout = Layout(rank, _data_format(kind, data_format))
    name = describe(kind, sizes if rank > 1 else sizes[0],
                    **({"data_format": layout.data_format} if layout.first else {}))

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, spatial, channels = layout.split(shape)
        if any(is_free(d) for d in spatial):
            raise ShapeError(f"the spatial axes of the input must be known (the windows are "
                             f"computed from them), received {shape!r}", name)
        return layout.join(batch, sizes, channels), ()

    def apply(params, x, *, rng=None, train=False):
        layout.check_array(name, x)
        for axis, m in zip(layout.spatial_axes, sizes):
            x = _pool_axis(x, axis, m, reduce)
        return x

    return Layer(init, apply, name=name)


def _adaptive_average(kind: str, rank: int, output_size, data_format=None) -> Layer:
    return _adaptive_pooling(kind, rank, "average", output_size, data_format)


def _adaptive_max(kind: str, rank: int, output_size, data_format=None) -> Layer:
    return _adaptive_pooling(kind, rank, "max", output_size, data_format)


_DOC = """Adaptive {what} pooling to a fixed {n}-D output size (Keras' `{kind}`).

    Output ``i`` along an axis of length ``n`` pooled to ``m`` takes the {what} over the
    input window ``[floor(i * n / m), ceil((i + 1) * n / m))``, so any input size gives the
    same output size (the spatial input axes must be known when the layer is built).

    Args:
      output_size: an int or a tuple of {n} ints, the output's spatial size.
      {data_format}

    Input shape: ``(batch, {spatial}, channels)`` (channels_last) or ``(batch, channels,
    {spatial})``.
    Output shape: ``(batch, {out}, channels)`` or ``(batch, channels, {out})``, the
    spatial sizes given by `output_size`.
    """
_OUT = {1: "m", 2: "m1, m2", 3: "m1, m2, m3"}

AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D = (
    per_rank(_adaptive_average, f"AdaptiveAveragePooling{r}D", r, _DOC, what="average",
             out=_OUT[r]) for r in (1, 2, 3))
AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D = (
    per_rank(_adaptive_max, f"AdaptiveMaxPooling{r}D", r, _DOC, what="max", out=_OUT[r])
    for r in (1, 2, 3))
