"""Advanced activation layers: ReLU, LeakyReLU, ELU, PReLU (with a trainable ``alpha``),
Softmax. Keras' names, arguments and defaults; the arithmetic is `jaxlayers.activations`'."""
from __future__ import annotations

import jax.numpy as jnp

from .. import activations as _act
from .. import initializers as _initializers
from ..core import PASS, consumes_mask
from ..core import Layer, Shape, ShapeError, as_shape, describe, is_free
from .checks import check_rank
from .weights import weight_hooks
from .args import int_or_ints, keras_layer, number

__all__ = ["ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU"]


def _elementwise(name, fn):
    def init(key, input_shape):
        return as_shape(input_shape), ()

    def apply(params, x, *, rng=None, train=False):
        return fn(x)

    return Layer(init, apply, name=name, masking=PASS)


@keras_layer
def ReLU(max_value=None, negative_slope: float = 0.0, threshold: float = 0.0) -> Layer:
    """Keras' generalised ReLU: ``x`` where ``x > threshold``, clipped at `max_value`, and
    ``negative_slope * (x - threshold)`` below the threshold.

    Args:
      max_value: the largest output, a non-negative number, or None (no clip).
      negative_slope: the slope below the threshold, a non-negative number.
      threshold: the value below which the slope applies, a non-negative number.

    Input shape: any. Output shape: the same.
    """
    if max_value is not None:
        number("ReLU", "max_value", max_value, minimum=0)
    number("ReLU", "negative_slope", negative_slope, minimum=0)
    number("ReLU", "threshold", threshold, minimum=0)
    name = describe("ReLU", **({"max_value": max_value} if max_value is not None else {}),
                    **({"negative_slope": negative_slope} if negative_slope else {}),
                    **({"threshold": threshold} if threshold else {}))
    return _elementwise(name, lambda x: _act.relu(x, negative_slope=negative_slope,
                                                  max_value=max_value, threshold=threshold))


@keras_layer
def LeakyReLU(negative_slope: float = 0.3) -> Layer:
    """``x`` where ``x >= 0``, ``negative_slope * x`` elsewhere.

    Args:
      negative_slope: the slope for negative inputs, a non-negative number (the layer's
        default is 0.3, the `leaky_relu` function's 0.2, as in Keras).

    Input shape: any. Output shape: the same.
    """
    number("LeakyReLU", "negative_slope", negative_slope, minimum=0)
    name = describe("LeakyReLU", **({"negative_slope": negative_slope}
                                    if negative_slope != 0.3 else {}))
    return _elementwise(name, lambda x: _act.leaky_relu(x, negative_slope=negative_slope))


@keras_layer
def ELU(alpha: float = 1.0) -> Layer:
    """``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere.

    Args:
      alpha: the scale of the negative part, a number.

    Input shape: any. Output shape: the same.
    """
    number("ELU", "alpha", alpha)
    name = describe("ELU", **({"alpha": alpha} if alpha != 1.0 else {}))
    return _elementwise(name, lambda x: _act.elu(x, alpha=alpha))


@keras_layer
def Softmax(axis=-1) -> Layer:
    """Softmax along `axis`.

    Args:
      axis: an int, or a tuple / list of ints (normalizing over all of them).

    Input shape: any with the axis present. Output shape: the same.
    """
    axes = int_or_ints("Softmax", "axis", axis)
    if isinstance(axis, list):
        axis = tuple(axis)
    name = describe("Softmax", **({"axis": axis} if axis != -1 else {}))

    def check(rank, shape):
        if any(not -rank <= a < rank for a in axes):
            raise ShapeError(f"axis {axis} is out of range for an input of shape {shape!r}", name)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        check(len(shape), shape)
        return shape, ()

    def apply(params, x, *, rng=None, train=False, mask=None):
        """With `mask` (broadcastable to `x`, True = keep), masked entries score as a
        large negative number before the softmax, as Keras' Softmax."""
        check(x.ndim, Shape(x.shape))
        if mask is not None:
            x = jnp.where(_softmax_mask(name, mask, x), x, _large_negative(x.dtype))
        return _act.softmax(x, axis=axis)

    return Layer(init, apply, name=name, masking=consumes_mask("pass"))


def _large_negative(dtype):
    """Keras' stand-in for -inf in masked softmax scores: -3e4 in float16, else -1e9."""
    return jnp.asarray(-3e4 if jnp.dtype(dtype) == jnp.float16 else -1e9, dtype)


def _softmax_mask(name, mask, x):
    """`mask` as a boolean array broadcastable to `x` (Keras' rule: aligned from the right,
    each dim 1 or equal); a ShapeError naming the layer otherwise."""
    mask = jnp.asarray(mask)
    fits = mask.ndim <= x.ndim and all(
        m in (1, d) for m, d in zip(mask.shape[::-1], x.shape[::-1]))
    if not fits:
        raise ShapeError(f"the mask of shape {Shape(mask.shape)!r} must broadcast to the "
                         f"input of shape {Shape(x.shape)!r} (aligned from the right)", name)
    mask = mask if mask.dtype == jnp.bool_ else mask > 0.5
    return jnp.broadcast_to(mask.reshape((1,) * (x.ndim - mask.ndim) + mask.shape), x.shape)


@keras_layer
def PReLU(alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
          shared_axes=None) -> Layer:
    """Parametric ReLU: ``max(x, 0) - alpha * max(-x, 0)`` with a learned ``alpha``.

    Params: ``alpha`` shaped ``input_shape[1:]`` with each axis in `shared_axes` set to 1.

    Args:
      alpha_initializer: the initializer of ``alpha`` (a name or a callable).
      alpha_regularizer: a weight regularizer (feeds ``layer.penalty(params)``).
      alpha_constraint: a constraint applied by ``layer.constrain(params)``.
      shared_axes: None, an int or a list of axes (1-based, the batch axis being 0, as
        Keras counts) along which one slope is shared (``[1, 2]`` gives one slope per
        channel of an image). Every non-shared axis must have a known size at init.

    Input shape: any rank >= 2. Output shape: the same.
    """
    shared = () if shared_axes is None else int_or_ints("PReLU", "shared_axes", shared_axes)
    name = describe("PReLU", **({"shared_axes": list(shared)} if shared else {}))
    try:
        ainit = _initializers.get(alpha_initializer)
    except ValueError as e:
        raise ValueError(f"PReLU: {e}") from None
    penalty, constrain = weight_hooks(name, alpha=(alpha_regularizer, alpha_constraint))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        rank = len(shape)
        pos = set()
        for a in shared:
            if not (1 <= a < rank or -rank < a <= -1):
                raise ShapeError(f"shared_axes {list(shared)} must name non-batch axes of an "
                                 f"input of shape {shape!r} (1 to {rank - 1})", name)
            pos.add(a % rank)
        pshape = tuple(1 if i in pos else d for i, d in enumerate(shape) if i > 0)
        if any(is_free(d) for d in pshape):
            raise ShapeError(f"alpha needs a known size on every axis that is not shared; "
                             f"received input shape {shape!r} with shared_axes "
                             f"{list(shared)}", name)
        return shape, {"alpha": ainit(key, pshape, jnp.float32)}

    def apply(params, x, *, rng=None, train=False):
        alpha = params["alpha"]
        if x.ndim != alpha.ndim + 1 or any(
                p != 1 and p != d for p, d in zip(alpha.shape, x.shape[1:])):
            raise ShapeError(f"expected an input of shape (batch, ...) matching alpha "
                             f"{Shape(alpha.shape)!r} on its non-shared axes, received "
                             f"{Shape(x.shape)!r}", name)
        if jnp.issubdtype(x.dtype, jnp.floating):
            alpha = alpha.astype(x.dtype)
        alpha = alpha[None]
        zero = jnp.zeros((), x.dtype)
        return jnp.maximum(x, zero) - alpha * jnp.maximum(-x, zero)

    return Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                 masking=PASS)
