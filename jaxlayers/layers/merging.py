"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Each takes a list (or tuple) of arrays and returns one array. `init` takes the tuple of
input shapes, so a merge layer is a fan-in after `branch` / `parallel` in `serial`, and
takes a list of tensors in the functional API: ``jl.Add()([x, y])``.

The elementwise merges follow Keras' broadcasting rule: the non-batch dims are aligned
from the right and a dim of 1 stretches; an input of lower rank first gets new axes
after the batch axis (``(batch, 3)`` with ``(batch, 4, 3)`` gives ``(batch, 4, 3)``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import makes_mask
from ..core import Layer, Shape, ShapeError, as_shape, describe, is_free
from .args import ArgumentTypeError, boolean, keras_layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"]


def _shapes_text(shapes) -> str:
    return ", ".join(repr(Shape(s)) for s in shapes)


def _fan_in_shapes(name, input_shape, n=None):
    """The tuple of input shapes of a merge layer, or a ShapeError."""
    shapes = as_shape(input_shape)
    if (not isinstance(shapes, tuple) or isinstance(shapes, Shape) or not shapes
            or not all(isinstance(s, Shape) for s in shapes)):
        raise ShapeError(f"expected a list of input shapes (a merge layer takes a list of "
                         f"inputs), received {input_shape!r}", name)
    if n is not None and len(shapes) != n:
        raise ShapeError(f"expected exactly {n} inputs, received {len(shapes)}: "
                         f"{_shapes_text(shapes)}", name)
    if any(len(s) < 1 for s in shapes):
        raise ShapeError(f"every input needs a batch axis, received {_shapes_text(shapes)}", name)
    return shapes


def _fan_in_arrays(name, xs, n=None):
    if not isinstance(xs, (tuple, list)) or not xs:
        raise ShapeError(f"expected a list of input arrays (a merge layer takes a list of "
                         f"inputs), received {type(xs).__name__}", name)
    if n is not None and len(xs) != n:
        raise ShapeError(f"expected exactly {n} inputs, received {len(xs)}", name)
    return list(xs)


def _batch(name, shapes):
    known = {s[0] for s in shapes if not is_free(s[0])}
    if len(known) > 1:
        raise ShapeError(f"cannot merge inputs with different batch sizes, received "
                         f"{_shapes_text(shapes)}", name)
    return known.pop() if known else None


def _broadcast(name, shapes):
    """Keras' elementwise output shape of `shapes` (batch first), or a ShapeError."""
    batch = _batch(name, shapes)
    out = tuple(shapes[0][1:])
    for s in shapes[1:]:
        a, b = out, tuple(s[1:])
        if len(a) < len(b):
            a, b = b, a
        dims = list(a[:len(a) - len(b)])
        for i, j in zip(a[len(a) - len(b):], b):
            if is_free(i) or is_free(j):
                dims.append(None)
            elif i == 1 or j == 1 or i == j:
                dims.append(j if i == 1 else i)
            else:
                raise ShapeError(f"inputs have incompatible shapes: received "
                                 f"{_shapes_text(shapes)} (non-batch dims must be equal or 1, "
                                 f"aligned from the right)", name)
        out = tuple(dims)
    return Shape((batch,) + out)


def _mask_list(xs, masks):
    """The per-input masks of a merge: None, or a list with None for unmasked inputs (one
    array, as `serial` would pass, is every input's mask)."""
    if masks is None:
        return None
    if hasattr(masks, "shape"):
        return [masks] * len(xs)
    masks = list(masks)
    return None if all(m is None for m in masks) else masks


def _or_masks(xs, masks):
    """Keras' `Merge.compute_mask`: the OR of the inputs' time-step masks, or None when
    an input has none."""
    masks = _mask_list(xs, masks)
    if masks is None or any(m is None for m in masks):
        return None
    out = masks[0]
    for m in masks[1:]:
        out = jnp.logical_or(out, m)
    return out


def _masked_fold(op, xs, masks):
    """Keras' `_apply_merge_op_and_or_mask` (Maximum, Minimum): at a step masked in one
    input, the others' values decide."""
    def full(x, m):
        if m is None or m.ndim != x.ndim - 1:
            return None
        return jnp.broadcast_to(m.astype(bool)[..., None], x.shape)

    y, y_mask = xs[0], full(xs[0], masks[0])
    for x, m in zip(xs[1:], masks[1:]):
        m = full(x, m)
        if m is not None:
            x = jnp.where(m, x, y)
        if y_mask is not None:
            y = jnp.where(y_mask, y, x)
        y_mask = jnp.logical_or(y_mask, m) if m is not None and y_mask is not None else None
        y = op(y, x)
    return y


def _multiply_masked(op, xs, masks):
    """Keras' Multiply under masks: masked steps count as 1, and are zeros in the output
    when every input has a mask."""
    every = all(m is not None for m in masks)
    y = y_mask = None
    for x, m in zip(xs, masks):
        if m is not None and m.ndim == x.ndim - 1:
            m = jnp.broadcast_to(m.astype(bool)[..., None], x.shape)
            x = jnp.where(m, x, jnp.ones((), x.dtype))
            y_mask = m if y_mask is None else jnp.logical_or(y_mask, m)
        y = x if y is None else op(y, x)
    return jnp.where(y_mask, y, jnp.zeros((), y.dtype)) if every and y_mask is not None else y


def _elementwise(kind, op, n=None, post=None, masked_fold=None):
    """A merge layer folding `op` over its inputs (after Keras' rank alignment).

    Its output mask is the OR of the inputs' masks (Keras' Merge.compute_mask); with
    `masked_fold` its apply takes the inputs' masks (``mask=``, a list with None for
    unmasked inputs) and folds with ``masked_fold(op, xs, masks)`` (Keras' Maximum, Minimum,
    Multiply).
    """
    name = f"{kind}()"

    def init(key, input_shape):
        shapes = _fan_in_shapes(name, input_shape, n)
        return _broadcast(name, shapes), ()

    def apply(params, xs, *, rng=None, train=False, mask=None):
        xs = _fan_in_arrays(name, xs, n)
        _broadcast(name, [Shape(x.shape) for x in xs])
        rank = max(x.ndim for x in xs)
        masks = _mask_list(xs, mask) if masked_fold else None
        if masks is not None and all(x.ndim == rank for x in xs):
            return masked_fold(op, xs, masks)
        xs = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
        y = xs[0]
        for x in xs[1:]:
            y = op(y, x)
        return post(y, len(xs)) if post else y

    return Layer(init, apply, name=name,
                 masking=makes_mask(_or_masks, takes=masked_fold is not None))


def _merge(kind, summary, op, inputs="shapes that broadcast together", **options):
    """The public constructor `kind` (no arguments) of an elementwise merge folding `op`; the
    `options` go to `_elementwise`."""
    def constructor() -> Layer:
        return _elementwise(kind, op, **options)

    constructor.__name__ = constructor.__qualname__ = kind
    constructor.__doc__ = f"""{summary} (Keras broadcasting).

    Input shape: a list of {inputs}. Output shape: the broadcast shape.
    """
    return keras_layer(constructor)


Add = _merge("Add", "Sum a list of inputs elementwise", jnp.add)
Subtract = _merge("Subtract", "``inputs[0] - inputs[1]`` for exactly two inputs", jnp.subtract,
                  "two shapes that broadcast", n=2)
Multiply = _merge("Multiply", "Multiply a list of inputs elementwise", jnp.multiply,
                  masked_fold=_multiply_masked)
Average = _merge("Average", "The elementwise mean of a list of inputs", jnp.add,
                 post=lambda y, n: y / n)
Maximum = _merge("Maximum", "The elementwise maximum of a list of inputs", jnp.maximum,
                 masked_fold=_masked_fold)
Minimum = _merge("Minimum", "The elementwise minimum of a list of inputs", jnp.minimum,
                 masked_fold=_masked_fold)


def _concat_shape(name, shapes, axis):
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes) or not -rank <= axis < rank:
        raise ShapeError(f"inputs must share one rank that has axis {axis}, received "
                         f"{_shapes_text(shapes)}", name)
    ax = axis % rank
    out = []
    for d in range(rank):
        dims = [s[d] for s in shapes]
        if d == ax:
            out.append(None if any(is_free(x) for x in dims) else sum(dims))
            continue
        known = {x for x in dims if not is_free(x)}
        if len(known) > 1:
            raise ShapeError(f"inputs must have the same size on every axis but the "
                             f"concatenation axis {axis}, received {_shapes_text(shapes)}", name)
        out.append(known.pop() if known else None)
    return Shape(out)


@keras_layer
def Concatenate(axis: int = -1) -> Layer:
    """Concatenate a list of inputs along `axis` (every other axis must agree).

    Args:
      axis: the concatenation axis, an int (negative counts from the end).

    Input shape: a list of same-rank shapes. Output shape: the same, with the sizes
    along `axis` added up.
    """
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ArgumentTypeError(f"Concatenate: axis must be an int, received {axis!r}")
    name = describe("Concatenate", **({"axis": axis} if axis != -1 else {}))

    def init(key, input_shape):
        shapes = _fan_in_shapes(name, input_shape)
        return _concat_shape(name, shapes, axis), ()

    def apply(params, xs, *, rng=None, train=False):
        xs = _fan_in_arrays(name, xs)
        _concat_shape(name, [Shape(x.shape) for x in xs], axis)
        return jnp.concatenate(xs, axis=axis)

    def mask_fn(xs, masks):
        # Keras' Concatenate.compute_mask: each input's mask spread over its features (all
        # True when unmasked), concatenated along `axis`, then any over the last axis.
        masks = _mask_list(xs, masks)
        if masks is None:
            return None
        full = []
        for x, m in zip(xs, masks):
            if m is None:
                full.append(jnp.ones(x.shape, bool))
                continue
            m = m.astype(bool)
            full.append(jnp.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)),
                                         x.shape))
        return jnp.any(jnp.concatenate(full, axis=axis), axis=-1)

    return Layer(init, apply, name=name, masking=makes_mask(mask_fn))


def _dot_axes(name, axes, shapes):
    r1, r2 = len(shapes[0]), len(shapes[1])
    if r1 < 2 or r2 < 2:
        raise ShapeError(f"inputs must have rank >= 2 (batch first), received "
                         f"{_shapes_text(shapes)}", name)
    pair = (axes, axes) if isinstance(axes, int) else tuple(axes)
    resolved = []
    for a, r in zip(pair, (r1, r2)):
        if not -r <= a < r:
            raise ShapeError(f"axis {a} is out of range for an input of rank {r}; received "
                             f"{_shapes_text(shapes)}", name)
        resolved.append(a % r)
    if 0 in resolved:
        raise ShapeError(f"cannot take the dot product over the batch axis (axes={axes!r}); "
                         f"received {_shapes_text(shapes)}", name)
    a0, a1 = resolved
    d1, d2 = shapes[0][a0], shapes[1][a1]
    if not is_free(d1) and not is_free(d2) and d1 != d2:
        raise ShapeError(f"the dot axes differ in size: axis {a0} of the first input is {d1}, "
                         f"axis {a1} of the second is {d2}; received {_shapes_text(shapes)}",
                         name)
    return a0, a1


@keras_layer
def Dot(axes, normalize: bool = False) -> Layer:
    """The per-example dot product of two inputs along `axes`.

    Args:
      axes: an int (the same axis of both inputs; negative counts from the end) or a
        pair ``(axis_of_first, axis_of_second)``. The batch axis 0 cannot be used.
      normalize: L2-normalize both inputs along their dot axis first (the output is
        then the cosine similarity), as Keras: ``x * min(rsqrt(sum(x**2)), 1e7)``.

    Input shape: a list of two shapes of rank >= 2. Output shape: the first input's dims
    without its dot axis, then the second's without its batch and dot axes
    (``(batch, 1)`` when that leaves only the batch axis), as Keras' ``batch_dot``.
    """
    if isinstance(axes, bool) or not (
            isinstance(axes, int) or (isinstance(axes, (list, tuple)) and len(axes) == 2 and all(
                isinstance(a, int) and not isinstance(a, bool) for a in axes))):
        raise ArgumentTypeError(f"Dot: axes must be an int or a pair of ints, received {axes!r}")
    normalize = boolean("Dot", "normalize", normalize)
    axes = axes if isinstance(axes, int) else tuple(axes)
    name = describe("Dot", axes, **({"normalize": True} if normalize else {}))

    def init(key, input_shape):
        shapes = _fan_in_shapes(name, input_shape, 2)
        batch = _batch(name, shapes)
        a0, a1 = _dot_axes(name, axes, shapes)
        s1, s2 = shapes
        out = [d for i, d in enumerate(s1[1:], 1) if i != a0]
        out += [d for i, d in enumerate(s2[1:], 1) if i != a1]
        return Shape((batch,) + tuple(out or [1])), ()

    def l2_normalize(x, axis):
        inv = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
        return x * jnp.minimum(inv, jnp.asarray(1e7, x.dtype))

    def apply(params, xs, *, rng=None, train=False):
        x, y = _fan_in_arrays(name, xs, 2)
        shapes = [Shape(x.shape), Shape(y.shape)]
        _batch(name, shapes)
        a0, a1 = _dot_axes(name, axes, shapes)
        if normalize:
            x, y = l2_normalize(x, a0), l2_normalize(y, a1)
        out = jax.lax.dot_general(x, y, (((a0,), (a1,)), ((0,), (0,))))
        return out.reshape(out.shape + (1,)) if out.ndim == 1 else out

    return Layer(init, apply, name=name)
