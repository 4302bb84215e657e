"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D,
GlobalAveragePooling1D/2D/3D, and Keras' short aliases (MaxPool2D, AvgPool2D, ...).

One N-D implementation per family (`_pooling`, `_global_pooling`), parameterised by the
spatial rank and the reduction. Windows use ``lax.reduce_window`` on the layout's spatial
axes, so channels_first needs no transpose. Keras' semantics: strides default to
`pool_size`; "same" max pooling pads with -inf; "same" average pooling divides each window
by its number of real (unpadded) elements.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import Layer, Shape, describe
from .spatial import (Layout, all_window_padding, data_format as _data_format, int_tuple,
                      padding_mode, window_outputs, window_padding)


def _real_counts(spatial, pool, strides, mode):
    """How many real (unpadded) elements each output window covers, as a numpy array
    shaped like the spatial output (the product of one count vector per dim)."""
    counts = np.ones((), np.float32)
    for n, k, s in zip(spatial, pool, strides):
        lo, hi = window_padding(n, k, s, 1, mode)
        starts = np.arange((n + lo + hi - k) // s + 1) * s - lo
        c = np.minimum(starts + k, n) - np.maximum(starts, 0)
        counts = np.multiply.outer(counts, c.astype(np.float32))
    return counts


def _tiles(spatial, pool, strides, mode) -> bool:
    """True when the windows tile the input exactly: stride == pool, "valid", divisible."""
    return mode == "valid" and all(p == s and n % p == 0 for n, p, s in zip(spatial, pool, strides))


def _first_max_mask(xr, y, axes):
    """A 0/1 mask of `xr` marking, in each window (the `axes`, in increasing order), the
    first element in row-major window order equal to the window's max `y` (broadcast).

    That is the element XLA's ``reduce_window`` max gradient (select-and-scatter with
    ``>=``) routes the cotangent to; no transpose is needed to find it.
    """
    hit = (xr == y).astype(jnp.int32)
    # Inclusive count of hits up to each position in row-major window order: the
    # running count along the fastest axis, plus the hits of earlier rows along each
    # slower axis (an exclusive cumsum of the row totals).
    count = jnp.cumsum(hit, axis=axes[-1])
    total = jnp.sum(hit, axis=axes[-1], keepdims=True)
    for a in reversed(axes[:-1]):
        count = count + jnp.cumsum(total, axis=a) - total
        total = jnp.sum(total, axis=a, keepdims=True)
    return ((hit == 1) & (count == 1)).astype(xr.dtype)


def tiled_max_pool(x, layout: Layout, pool) -> jnp.ndarray:
    """Max pooling whose windows tile `x` (stride == pool, "valid", divisible), as
    reshape + max; the gradient goes to the first maximum of each window, as
    ``lax.reduce_window``'s does, so numbers and gradients are identical. A custom JVP
    (not VJP), so forward mode works too."""
    shape, axes = [], []
    for a, n in enumerate(x.shape):
        if a in layout.spatial_axes:
            p = pool[layout.spatial_axes.index(a)]
            shape += [n // p, p]
            axes.append(len(shape) - 1)
        else:
            shape.append(n)
    axes = tuple(axes)

    @jax.custom_jvp
    def pool_fn(x):
        return jnp.max(x.reshape(shape), axis=axes)

    @pool_fn.defjvp
    def pool_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        xr = x.reshape(shape)
        y = jnp.max(xr, axis=axes)
        mask = _first_max_mask(xr, jnp.expand_dims(y, axes), axes)
        # Linear in dx, so reverse mode transposes it to ``mask * g``.
        return y, jnp.sum(mask * dx.reshape(shape), axis=axes)

    return pool_fn(x)


def _pooling(kind, rank, reduce, pool_size, strides=None, padding="valid", data_format=None,
             tiled=None) -> Layer:
    pool = int_tuple(kind, pool_size, rank, "pool_size")
    strides = pool if strides is None else int_tuple(kind, strides, rank, "strides")
    mode = padding_mode(kind, padding)
    layout = Layout(rank, _data_format(kind, data_format))
    ones = (1,) * rank
    opts = {}
    if strides != pool:
        opts["strides"] = strides
    if mode != "valid":
        opts["padding"] = mode
    if layout.first:
        opts["data_format"] = layout.data_format
    name = describe(kind, pool, **opts)
    # The reshape + max lowering for tiling max pools: on by default (tiled=None) where
    # it applies; tiled=False forces lax.reduce_window (used to test they agree).
    use_tiles = reduce == "max" and tiled is not False

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, spatial, channels = layout.split(shape)
        out = window_outputs(name, shape, spatial, pool, strides, ones, mode, arg="pool_size")
        return layout.join(batch, out, channels), ()

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x)
        window_outputs(name, x.shape, spatial, pool, strides, ones, mode, arg="pool_size")
        window, steps = layout.window(pool), layout.window(strides)
        # Init values are numpy constants: lax recognises max / add monoids (and so
        # differentiates reduce_window) only for concrete init values, also under jit.
        pads = layout.window(all_window_padding(spatial, pool, strides, ones, mode), (0, 0))
        if reduce == "max":
            if use_tiles and _tiles(spatial, pool, strides, mode):
                return tiled_max_pool(x, layout, pool)
            return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, window, steps,
                                     pads)
        total = lax.reduce_window(x, np.array(0, x.dtype), lax.add, window, steps, pads)
        if mode == "valid":
            return total / jnp.array(math.prod(pool), x.dtype)
        counts = _real_counts(spatial, pool, strides, mode)
        counts = counts.reshape(layout.window(counts.shape))
        return total / jnp.asarray(counts, x.dtype)

    return Layer(init, apply, name=name)


_POOL_DOC = """{rank}-D {what} pooling (Keras' `{kind}`) over windows of `pool_size`.

    Args: pool_size (int or tuple{default}), strides (default: pool_size),
    padding ("valid" or "same"), data_format (None = "channels_last").
    {extra}
    Input shape: ``(batch, {sp}, channels)`` (channels_last) or ``(batch, channels, {sp})``.
    Output shape: the same layout, each spatial dim ``floor((n - pool) / s) + 1`` for
    "valid" and ``ceil(n / s)`` for "same".
    """
_MAX_EXTRA = ('"same" pads with -inf. A pool that tiles its input (strides == pool_size,\n'
              '    "valid", every dim divisible) is computed as reshape + max, with the same\n'
              '    numbers and gradients as lax.reduce_window.\n')
_AVG_EXTRA = '"same" divides each window by its number of real (unpadded) elements.\n'


def MaxPooling1D(pool_size=2, strides=None, padding="valid", data_format=None) -> Layer:
    return _pooling("MaxPooling1D", 1, "max", pool_size, strides, padding, data_format)


def MaxPooling2D(pool_size=(2, 2), strides=None, padding="valid", data_format=None) -> Layer:
    return _pooling("MaxPooling2D", 2, "max", pool_size, strides, padding, data_format)


def MaxPooling3D(pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None) -> Layer:
    return _pooling("MaxPooling3D", 3, "max", pool_size, strides, padding, data_format)


def AveragePooling1D(pool_size, strides=None, padding="valid", data_format=None) -> Layer:
    return _pooling("AveragePooling1D", 1, "average", pool_size, strides, padding, data_format)


def AveragePooling2D(pool_size, strides=None, padding="valid", data_format=None) -> Layer:
    return _pooling("AveragePooling2D", 2, "average", pool_size, strides, padding, data_format)


def AveragePooling3D(pool_size, strides=None, padding="valid",
                     data_format=None) -> Layer:
    return _pooling("AveragePooling3D", 3, "average", pool_size, strides, padding, data_format)


for _fn, _rank, _sp, _default in ((MaxPooling1D, 1, "steps", "2"),
                                  (MaxPooling2D, 2, "rows, cols", "(2, 2)"),
                                  (MaxPooling3D, 3, "d1, d2, d3", "(2, 2, 2)"),
                                  (AveragePooling1D, 1, "steps", None),
                                  (AveragePooling2D, 2, "rows, cols", None),
                                  (AveragePooling3D, 3, "d1, d2, d3", None)):
    _max = _fn.__name__.startswith("Max")
    _fn.__doc__ = _POOL_DOC.format(rank=_rank, what="max" if _max else "average",
                                   kind=_fn.__name__,
                                   default=f", default {_default}" if _default else ", required as in Keras", sp=_sp,
                                   extra=_MAX_EXTRA if _max else _AVG_EXTRA)


# --------------------------------------------------------------------------- global


def _global_pooling(kind, rank, reduce, data_format=None, keepdims=False) -> Layer:
    layout = Layout(rank, _data_format(kind, data_format))
    if not isinstance(keepdims, bool):
        raise ValueError(f"{kind}: keepdims must be a bool, got {keepdims!r}")
    opts = {}
    if layout.first:
        opts["data_format"] = layout.data_format
    if keepdims:
        opts["keepdims"] = True
    name = describe(kind, **opts)
    fn = jnp.max if reduce == "max" else jnp.mean

    def init(key, input_shape):
        shape = layout.check(name, input_shape, need_channels=False)
        batch, _, channels = layout.split(shape)
        if keepdims:
            return layout.join(batch, (1,) * rank, channels), ()
        return Shape((batch, channels)), ()

    def apply(params, x, *, rng=None, train=False):
        layout.check_array(name, x)
        return fn(x, axis=layout.spatial_axes, keepdims=keepdims)

    return Layer(init, apply, name=name)


_GLOBAL_DOC = """Global {what} pooling over the {rank}-D spatial axes (Keras' `{kind}`).

    Args: data_format (None = "channels_last"), keepdims (keep the spatial axes with size 1).

    Input shape: ``(batch, {sp}, channels)`` (channels_last) or ``(batch, channels, {sp})``.
    Output shape: ``(batch, channels)``; with keepdims ``(batch, {ones}, channels)`` or
    ``(batch, channels, {ones})``.
    """


def GlobalMaxPooling1D(data_format=None, keepdims=False) -> Layer:
    return _global_pooling("GlobalMaxPooling1D", 1, "max", data_format, keepdims)


def GlobalMaxPooling2D(data_format=None, keepdims=False) -> Layer:
    return _global_pooling("GlobalMaxPooling2D", 2, "max", data_format, keepdims)


def GlobalMaxPooling3D(data_format=None, keepdims=False) -> Layer:
    return _global_pooling("GlobalMaxPooling3D", 3, "max", data_format, keepdims)


def GlobalAveragePooling1D(data_format=None, keepdims=False) -> Layer:
    return _global_pooling("GlobalAveragePooling1D", 1, "average", data_format, keepdims)


def GlobalAveragePooling2D(data_format=None, keepdims=False) -> Layer:
    return _global_pooling("GlobalAveragePooling2D", 2, "average", data_format, keepdims)


def GlobalAveragePooling3D(data_format=None, keepdims=False) -> Layer:
    return _global_pooling("GlobalAveragePooling3D", 3, "average", data_format, keepdims)


for _fn, _rank, _sp, _ones in ((GlobalMaxPooling1D, 1, "steps", "1"),
                               (GlobalMaxPooling2D, 2, "rows, cols", "1, 1"),
                               (GlobalMaxPooling3D, 3, "d1, d2, d3", "1, 1, 1"),
                               (GlobalAveragePooling1D, 1, "steps", "1"),
                               (GlobalAveragePooling2D, 2, "rows, cols", "1, 1"),
                               (GlobalAveragePooling3D, 3, "d1, d2, d3", "1, 1, 1")):
    _fn.__doc__ = _GLOBAL_DOC.format(
        what="max" if "Max" in _fn.__name__ else "average", rank=_rank, kind=_fn.__name__,
        sp=_sp, ones=_ones)
del _fn, _rank, _sp, _ones, _default, _max

# Keras' short aliases.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D)
