"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D,
GlobalAveragePooling1D/2D/3D, and Keras' short aliases (MaxPool2D, AvgPool2D, ...).

One N-D implementation per family (`_pooling`, `_global_pooling`), parameterised by the
spatial rank and the reduction. Windows use ``lax.reduce_window`` on the layout's spatial
axes, so channels_first needs no transpose. Keras' semantics: strides default to
`pool_size`; "same" max pooling pads with -inf; "same" average pooling divides each window
by its number of real (unpadded) elements.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import consumes_mask
from ..core import Layer, Shape, ShapeError, describe
from .args import boolean, keras_layer
from .spatial import (Layout, all_window_padding, data_format as _data_format, int_tuple,
                      padding_mode, window_outputs, window_padding)

__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
           "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalAveragePooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D",
           "AvgPool2D", "AvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D"]


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
    """True when the windows tile the input once its remainder is cropped: stride == pool,
    "valid" (a trailing remainder smaller than the pool is in no window)."""
    return mode == "valid" and all(p == s for p, s in zip(pool, strides))


def _crop(x, layout: Layout, pool):
    """`x` without the trailing remainder of each spatial axis (no window covers it)."""
    index = [slice(None)] * x.ndim
    for a, p in zip(layout.spatial_axes, pool):
        index[a] = slice(0, x.shape[a] // p * p)
    return x[tuple(index)]


def _window_geometry(x, layout: Layout, pool):
    """The shape that splits each spatial axis of `x` into (n // p, p), and the axes of
    the window dims in it."""
    shape, axes = [], []
    for a, n in enumerate(x.shape):
        if a in layout.spatial_axes:
            p = pool[layout.spatial_axes.index(a)]
            shape += [n // p, p]
            axes.append(len(shape) - 1)
        else:
            shape.append(n)
    return tuple(shape), tuple(axes)


def _first_max_mask(xr, y, axes):
    """A 0/1 mask (dtype of `xr`) marking, in each window of the reshaped `xr` (the window
    dims are `axes`), the first element in row-major window order equal to the window's
    max `y` (broadcast to `xr`'s rank).

    That is the element XLA's ``reduce_window`` max gradient (select-and-scatter with
    ``>=``) routes the cotangent to, so ties go where they go there. Found as the least
    window position among the hits: one elementwise pass, one min-reduce, one compare,
    all fused by XLA.
    """
    sizes = [xr.shape[a] for a in axes]
    total = math.prod(sizes)
    # The row-major position of each element in its window, broadcast over the window axes.
    pos = np.arange(total, dtype=np.int32).reshape(sizes)
    pos_shape = [1] * xr.ndim
    for a, n in zip(axes, sizes):
        pos_shape[a] = n
    pos = pos.reshape(pos_shape)
    cand = jnp.where(xr == y, pos, np.int32(total))
    first = jnp.min(cand, axis=axes, keepdims=True)
    return (pos == first).astype(xr.dtype)


def _reduce_window_max(x, layout: Layout, pool):
    window = layout.window(pool)
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, window, window, "VALID")


def tiled_max_pool(x, layout: Layout, pool) -> jnp.ndarray:
    """Max pooling whose windows tile `x` (stride == pool, "valid"; a trailing remainder
    of a spatial axis, in no window, is cropped first).

    The value is ``lax.reduce_window`` (XLA:CPU's fastest forward); the derivative is
    written as reshape + mask, since XLA:CPU's ``select-and-scatter`` (reduce_window's
    gradient) is slow: the tangent is the tangent of the first maximum of each window,
    exactly where reduce_window's gradient sends the cotangent (ties included), so
    values and gradients are identical to ``lax.reduce_window``'s. A custom JVP (not
    VJP), so forward mode (``jax.jvp``, ``jacfwd``) works too; reverse mode transposes
    the (linear) tangent map into ``mask * g``.
    """
    # The forward pass runs on `x` as it is ("valid" windows never reach the remainder);
    # only the derivative crops, so inference is exactly reduce_window.
    shape, axes = _window_geometry(_crop(x, layout, pool), layout, pool)

    @jax.custom_jvp
    def pool_fn(x):
        return _reduce_window_max(x, layout, pool)

    @pool_fn.defjvp
    def pool_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        y = _reduce_window_max(x, layout, pool)
        xr, dxr = (_crop(a, layout, pool).reshape(shape) for a in (x, dx))
        mask = _first_max_mask(xr, jnp.expand_dims(y, axes), axes)
        return y, jnp.sum(mask * dxr, axis=axes)

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
    # The reshape + mask derivative for tiling max pools (`tiled_max_pool`): on by default
    # (tiled=None) where it applies; tiled=False forces plain lax.reduce_window (used to
    # test they agree).
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

    {extra}
    Args:
      pool_size: the window, an int or a tuple of {rank} positive ints{default}.
      strides: the step, an int or a tuple of {rank} (None: pool_size).
      padding: "valid" or "same".
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, {sp}, channels)`` (channels_last) or ``(batch, channels, {sp})``.
    Output shape: the same layout, each spatial dim ``floor((n - pool) / s) + 1`` for
    "valid" and ``ceil(n / s)`` for "same".
    """
_MAX_EXTRA = ('"same" pads with -inf. A pool that tiles its input (strides == pool_size,\n'
              '    "valid") is differentiated as reshape + mask (the forward pass stays\n'
              '    lax.reduce_window): the same numbers and gradients, faster on CPU.\n')
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
    boolean(kind, "keepdims", keepdims)
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

    Args:
      data_format: "channels_last" (None) or "channels_first".
      keepdims: whether to keep the spatial axes, with size 1.

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
    layer = _global_pooling("GlobalAveragePooling1D", 1, "average", data_format, keepdims)
    layout = Layout(1, _data_format("GlobalAveragePooling1D", data_format))
    plain = layer.apply

    def apply(params, x, *, rng=None, train=False, mask=None):
        """With a (batch, steps) `mask`, the mean over the real steps only, as Keras
        computes it (all steps masked: 0 / 0 = NaN)."""
        if mask is None:
            return plain(params, x)
        layout.check_array(layer.name, x)
        axis = layout.spatial_axes[0]
        steps = x.shape[axis]
        if tuple(jnp.shape(mask)) != (x.shape[0], steps):
            raise ShapeError(f"mask shape {Shape(jnp.shape(mask))!r} does not match the "
                             f"input's (batch, steps) = {(x.shape[0], steps)}", layer.name)
        keep = jnp.expand_dims(jnp.asarray(mask, bool), 1 if layout.first else 2)
        total = jnp.sum(jnp.where(keep, x, jnp.zeros((), x.dtype)), axis=axis, keepdims=keepdims)
        return total / jnp.sum(keep, axis=axis, keepdims=keepdims, dtype=x.dtype)

    # Keras' GlobalAveragePooling1D takes the mask and drops it (its output has no steps).
    return dataclasses.replace(layer, apply=apply, masking=consumes_mask("drop"))


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
GlobalAveragePooling1D.__doc__ += """
    ``apply(params, x, *, mask=None)``: with a boolean (batch, steps) `mask` (True = a real
    step; a `serial` passes the one Embedding(mask_zero=True) or Masking made) the mean is
    over the real steps only, as Keras computes it; the mask ends here.
    """
del _fn, _rank, _sp, _ones, _default, _max

(MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D, AveragePooling3D,
 GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, GlobalAveragePooling1D,
 GlobalAveragePooling2D, GlobalAveragePooling3D) = map(keras_layer, (
    MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D,
    AveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D,
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D))

# Keras' short aliases.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D)
