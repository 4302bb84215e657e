"""Preprocessing layers that are array math: Rescaling, Normalization, and `adapt`, which
computes a layer's statistics from data (the encodings, CategoryEncoding, Discretization and
IntegerLookup, live in `layers.encoding`).

None of them has trainable weights: their constants (a mean, bin boundaries, a vocabulary)
are closed over, so ``params`` is ``()``. Keras' ``layer.adapt(data)`` mutates the layer;
here ``jl.adapt(layer, data)`` returns a new layer with the computed constants (the old one
is unchanged). Adapting runs in numpy, outside jit, over an array or any iterable of batches.

String layers (StringLookup, TextVectorization, Hashing of strings, HashedCrossing) work on
Python strings, which JAX arrays cannot hold: they belong in the input pipeline, before
the arrays reach a jitted model (docs/preprocessing.md shows where).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ..core import PASS
from ..core import Layer, Shape, ShapeError, as_shape, describe, is_free
from .args import ArgumentTypeError, boolean, keras_layer, non_negative_int
from .checks import check_rank

__all__ = ["Rescaling", "Normalization", "adapt"]

EPSILON = 1e-7          # keras.backend.epsilon(), Normalization's floor on the std


def _float(x):
    """`x` as a floating array (integer images and tokens become float32)."""
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _constant(kind, arg, value):
    """A number or array-like argument as a float64 numpy array (checked finite)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{kind}: {arg} must be a number or an array of numbers, "
                                f"received {value!r}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{kind}: {arg} must be finite, received {value!r}")
    return array


def _with_adapt(layer: Layer, hook) -> Layer:
    """`layer` whose init carries `hook(batches) -> Layer`, the rule `adapt` follows."""
    init = layer.init

    def adaptable_init(key, input_shape):
        return init(key, input_shape)

    adaptable_init.adapt = hook
    return dataclasses.replace(layer, init=adaptable_init)


def _batches(data, steps):
    """The batches of `data` (an array, or an iterable of arrays) as numpy arrays."""
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        yield np.asarray(data)
        return
    for i, batch in enumerate(data):
        if steps is not None and i >= steps:
            return
        yield np.asarray(batch[0] if isinstance(batch, tuple) else batch)


def adapt(layer: Layer, data, steps=None):
    """A copy of `layer` with the statistics it learns from `data` (Keras' ``layer.adapt``).

    Args:
      layer: a Normalization (mean and variance per kept axis) or a Discretization made
        with ``num_bins`` (quantile bin boundaries).
      data: an array, or an iterable of batches (arrays, or ``(x, y)`` tuples whose x is used).
      steps: the number of batches read from an iterable, or None for all of them.

    Returns the new layer (the same `name=` label); `layer` itself is unchanged.
    """
    hook = getattr(layer.init, "adapt", None)
    if hook is None:
        raise TypeError(f"adapt: {layer.name} has nothing to adapt (adaptable: "
                        f"Normalization, Discretization(num_bins=...))")
    if steps is not None:
        steps = non_negative_int("adapt", "steps", steps)
    return dataclasses.replace(hook(_batches(data, steps)), label=layer.label)


# --------------------------------------------------------------------------- Rescaling


@keras_layer
def Rescaling(scale, offset=0.0) -> Layer:
    """Rescale the input: ``x * scale + offset`` (e.g. ``scale=1/255`` maps [0, 255] to [0, 1]).

    Args:
      scale: a number, or an array broadcastable to the input's trailing axes (per channel).
      offset: a number or an array like `scale`.

    Input shape: any. Output shape: the same, floating (integer inputs become float32).
    """
    scale_ = _constant("Rescaling", "scale", scale)
    offset_ = _constant("Rescaling", "offset", offset)
    name = describe("Rescaling", scale if np.ndim(scale) == 0 else "array",
                    **({"offset": offset} if np.ndim(offset) or offset != 0 else {}))

    def fit(shape, value, arg):
        if value.ndim > len(shape) or any(
                v != 1 and not is_free(d) and v != d
                for v, d in zip(value.shape[::-1], shape[::-1])):
            raise ShapeError(f"{arg} of shape {value.shape} does not broadcast to the input "
                             f"shape {shape!r}", name)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        fit(shape, scale_, "scale")
        fit(shape, offset_, "offset")
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        x = _float(x)
        lead = (1,) * (x.ndim - scale_.ndim)
        scaled = x * jnp.asarray(scale_, x.dtype).reshape(lead + scale_.shape)
        lead = (1,) * (x.ndim - offset_.ndim)
        return scaled + jnp.asarray(offset_, x.dtype).reshape(lead + offset_.shape)

    return Layer(init, apply, name=name, masking=PASS)


# --------------------------------------------------------------------------- Normalization


def _axes(kind, axis):
    if axis is None:
        return ()
    axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if not isinstance(axes, (list, tuple)) or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise ArgumentTypeError(f"{kind}: axis must be an int, a tuple of ints or None, "
                                f"received {axis!r}")
    return tuple(axes)


@keras_layer
def Normalization(axis=-1, mean=None, variance=None, invert=False) -> Layer:
    """Standardize the input: ``(x - mean) / max(sqrt(variance), 1e-7)`` per kept axis.

    Give `mean` and `variance`, or compute them from data with ``jl.adapt(layer, data)``
    (a new layer; Keras' ``layer.adapt``). An un-adapted layer without them refuses to build
    (Keras would silently use mean 0 and variance 1).

    Args:
      axis: the axis or axes that keep their own statistics (-1: one per feature/channel);
        None keeps none (one scalar mean and variance). The batch axis may not be kept.
      mean: the mean, a number or an array over the kept axes (broadcast as Keras does:
        aligned from the right), or None (then adapt).
      variance: the variance, like `mean`.
      invert: if True, undo the normalization: ``mean + x * max(sqrt(variance), 1e-7)``.

    Input shape: any, with the kept axes known. Output shape: the same, floating.
    """
    axes = _axes("Normalization", axis)
    boolean("Normalization", "invert", invert)
    if (mean is None) != (variance is None):
        raise ValueError("Normalization: give both mean and variance, or neither (then "
                         "jl.adapt the layer)")
    mean_ = None if mean is None else _constant("Normalization", "mean", mean)
    var_ = None if variance is None else _constant("Normalization", "variance", variance)
    if var_ is not None and np.any(var_ < 0):
        raise ValueError(f"Normalization: variance must be >= 0, received {variance!r}")
    name = describe("Normalization", **({"axis": axis} if axis != -1 else {}),
                    **({"invert": True} if invert else {}))

    def kept(shape):
        rank = len(shape)
        if any(a < -rank or a >= rank for a in axes):
            raise ShapeError(f"axis {axis!r} is out of range for input shape {shape!r}", name)
        keep = tuple(sorted(a % rank for a in axes))
        if 0 in keep or any(is_free(shape[a]) for a in keep):
            raise ShapeError(f"the kept axes {keep} must be known and exclude the batch axis, "
                             f"input shape {shape!r}", name)
        return keep

    def broadcast(value, shape, keep):
        """`value` (aligned to the kept axes from the right) as an array of x's rank."""
        target = [shape[a] if a in keep else 1 for a in range(len(shape))]
        expanded = [1] * len(shape)
        if value.ndim > len(keep):
            raise ShapeError(f"mean/variance of shape {value.shape} have more axes than the "
                             f"kept axes {keep}", name)
        for i in range(1, value.ndim + 1):
            expanded[keep[-i]] = value.shape[-i]
        try:
            return np.broadcast_to(value.reshape(expanded), target)
        except ValueError:
            raise ShapeError(f"mean/variance of shape {value.shape} do not broadcast to the "
                             f"kept axes of input shape {shape!r}", name) from None

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        kept(shape)
        if mean_ is None:
            raise ShapeError("no mean and variance: give them, or compute them from data "
                             "with layer = jl.adapt(layer, data)", name)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        keep = kept(Shape(x.shape))
        x = _float(x)
        m = jnp.asarray(broadcast(mean_, x.shape, keep), x.dtype)
        std = jnp.maximum(jnp.sqrt(jnp.asarray(broadcast(var_, x.shape, keep), x.dtype)),
                          jnp.asarray(EPSILON, x.dtype))
        return m + x * std if invert else (x - m) / std

    def adapt_hook(batches):
        count, total, squares, keep = 0, 0.0, 0.0, None
        for batch in batches:
            batch = np.asarray(batch, np.float64)
            keep = kept(Shape(batch.shape))
            reduce = tuple(a for a in range(batch.ndim) if a not in keep)
            count += int(np.prod([batch.shape[a] for a in reduce]))
            total = total + batch.sum(axis=reduce)
            squares = squares + (batch ** 2).sum(axis=reduce)
        if not count:
            raise ValueError(f"{name}: adapt received no data")
        m = total / count
        return Normalization(axis=axis, mean=m, variance=np.maximum(squares / count - m ** 2, 0),
                             invert=invert)

    layer = Layer(init, apply, name=name, masking=PASS)
    return _with_adapt(layer, adapt_hook) if mean_ is None else layer
