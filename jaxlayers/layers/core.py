"""Core layers: InputLayer, Dense, Activation, Flatten, Reshape, Permute, RepeatVector,
Identity, Lambda, Dropout. Keras' names, arguments and defaults."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .. import activations as _activations
from .. import initializers as _initializers
from .weights import weight_hooks
from ..core import PASS
from ..core import Layer, Shape, ShapeError, as_shape, describe, infer_shape, is_free
from .checks import bias_add, cast_like, check_input, check_rank, need_rng, noise_shape_for
from ..regularizers import with_activity_regularizer


def _activation(name, activation):
    try:
        return _activations.get(activation)
    except ValueError as e:
        raise ShapeError(str(e), name) from None


def _initializer(name, init):
    try:
        return _initializers.get(init)
    except ValueError as e:
        raise ShapeError(str(e), name) from None


def InputLayer(shape=None, batch_size=None, *, input_shape=None) -> Layer:
    """Declare the input shape (without the batch dimension), as Keras' InputLayer.

    `init(key, None)` uses the declared shape; any other `input_shape` given to init
    must equal ``(batch_size, *shape)``. `apply` checks the input and returns it.

    Input shape: ``(batch_size, *shape)``. Output shape: the same.
    """
    shape = shape if shape is not None else input_shape
    if shape is None:
        raise ValueError("InputLayer: give the input shape without the batch dimension, "
                         "e.g. InputLayer((28, 28, 1))")
    if isinstance(shape, int):
        shape = (shape,)
    declared = as_shape((batch_size,) + tuple(shape))
    name = describe("InputLayer", tuple(shape))

    def init(key, input_shape=None):
        if input_shape is None:
            return declared, ()
        input_shape = as_shape(input_shape)
        if not isinstance(input_shape, Shape) or len(input_shape) != len(declared) or any(
                not (is_free(d) or is_free(g) or d == g) for d, g in zip(declared, input_shape)):
            raise ShapeError(f"expected input shape {declared!r}, received {input_shape!r}", name)
        return declared, ()

    def apply(params, x, *, rng=None, train=False):
        check_input(name, x, declared)
        return x

    return Layer(init, apply, name=name)


def Dense(units: int, activation=None, use_bias: bool = True,
          kernel_initializer="glorot_uniform", bias_initializer="zeros",
          kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
          kernel_constraint=None, bias_constraint=None) -> Layer:
    """A densely connected layer: ``activation(x @ kernel + bias)`` on the last axis.

    Params: ``kernel`` (in, units), ``bias`` (units,) when `use_bias`. Regularizers
    feed ``layer.penalty(params)``, constraints ``layer.constrain(params)``; an
    activity regularizer makes the layer stateful (see `regularizers`).

    Input shape: ``(batch, ..., in)`` of rank >= 2. Output shape: ``(batch, ..., units)``.
    """
    if not isinstance(units, int) or units < 1:
        raise ValueError(f"Dense: units must be a positive int, got {units!r}")
    name = describe("Dense", units, **({"activation": activation} if activation else {}))
    act = _activation(name, activation)
    kinit = _initializer(name, kernel_initializer)
    binit = _initializer(name, bias_initializer)
    penalty, constrain = weight_hooks(name, kernel=(kernel_regularizer, kernel_constraint),
                                      bias=(bias_regularizer, bias_constraint))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        n_in = shape[-1]
        if is_free(n_in):
            raise ShapeError(f"the last axis of the input must be known, received {shape!r}", name)
        k_kernel, k_bias = jax.random.split(key)
        params = {"kernel": kinit(k_kernel, (n_in, units), jnp.float32)}
        if use_bias:
            params["bias"] = binit(k_bias, (units,), jnp.float32)
        return Shape(shape[:-1] + (units,)), params

    def apply(params, x, *, rng=None, train=False):
        n_in = params["kernel"].shape[0]
        if x.ndim < 2 or x.shape[-1] != n_in:
            raise ShapeError(f"expected an input of shape (batch, ..., {n_in}), received "
                             f"{Shape(x.shape)!r}", name)
        kernel, bias = cast_like(x, params["kernel"], params.get("bias"))
        y = x @ kernel
        if bias is not None:
            y = bias_add(y, bias)
        return act(y)

    layer = Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                  masking=PASS)
    return with_activity_regularizer(layer, activity_regularizer)


def Activation(activation) -> Layer:
    """Apply an activation, given by name (``"relu"``) or as a function; shape unchanged."""
    fn = _activation("Activation", activation)
    name = describe("Activation", activation if isinstance(activation, str) else fn)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=0)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        return fn(x)

    return Layer(init, apply, name=name, masking=PASS)


def Identity() -> Layer:
    """Return the input unchanged."""
    def init(key, input_shape):
        return as_shape(input_shape), ()

    def apply(params, x, *, rng=None, train=False):
        return x

    return Layer(init, apply, name="Identity()", masking=PASS)


def Flatten(data_format: str = "channels_last") -> Layer:
    """Flatten every axis but the batch axis.

    With ``data_format="channels_first"`` the channel axis is moved last first, as Keras does.

    Input shape: ``(batch, d1, ..., dn)``. Output shape: ``(batch, d1 * ... * dn)``
    (``(batch, 1)`` for a rank-1 input).
    """
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
            raise ShapeError(f"expected an input with a batch axis, received a scalar", name)
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


def Reshape(target_shape) -> Layer:
    """Reshape every example to `target_shape` (without the batch axis; one -1 allowed).

    Input shape: ``(batch, ...)``. Output shape: ``(batch, *target_shape)``.
    """
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


def Permute(dims) -> Layer:
    """Permute the non-batch axes: `dims` is a permutation of 1..n (1-indexed, as Keras).

    Input shape: ``(batch, d1, ..., dn)``. Output shape: the dims in the order `dims`.
    """
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


def RepeatVector(n: int) -> Layer:
    """Repeat a vector `n` times along a new time axis.

    Input shape: ``(batch, features)``. Output shape: ``(batch, n, features)``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"RepeatVector: n must be a positive int, got {n!r}")
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


def Lambda(function, output_shape=None, arguments=None) -> Layer:
    """Wrap ``function(x, **arguments)`` as a parameter-free layer.

    `output_shape` (without the batch axis, as in Keras) or a callable
    ``input_shape -> output_shape``; when omitted it is inferred with `jax.eval_shape`.
    """
    if not callable(function):
        raise ValueError(f"Lambda: function must be callable, got {function!r}")
    arguments = dict(arguments or {})
    name = describe("Lambda", function)

    def fn(x):
        return function(x, **arguments)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        if output_shape is None:
            try:
                return infer_shape(fn, shape), ()
            except ShapeError:
                raise
            except Exception as e:
                raise ShapeError(f"could not infer the output shape for input {shape!r} "
                                 f"({type(e).__name__}: {e}); pass output_shape=", name) from None
        if callable(output_shape):
            return as_shape(output_shape(shape)), ()
        batch = shape[0] if isinstance(shape, Shape) else jax.tree_util.tree_leaves(
            shape, is_leaf=lambda s: isinstance(s, Shape))[0][0]
        return as_shape((batch,) + tuple(output_shape)), ()

    def apply(params, x, *, rng=None, train=False):
        return fn(x)

    return Layer(init, apply, name=name)   # drops masks, as Keras' Lambda


def Dropout(rate: float, noise_shape=None, seed=None) -> Layer:
    """Set a fraction `rate` of the inputs to 0 in training, scaling the rest by 1/(1-rate).

    Acts only with ``train=True`` (then it needs ``rng``); otherwise returns the input.
    `noise_shape` (with the batch axis; None entries take the input's size) shares one
    mask value along the axes where it is 1. `seed` is accepted for Keras compatibility
    and ignored: randomness comes from the `rng` key.

    Input shape: any. Output shape: the same.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"Dropout: rate must be in [0, 1], got {rate!r}")
    name = describe("Dropout", rate)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        if noise_shape is not None:
            check_rank(name, shape, rank=len(noise_shape))
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        if not train or rate == 0:
            return x
        need_rng(name, rng)
        if rate == 1:
            return jnp.zeros_like(x)
        keep = jax.random.bernoulli(rng, 1.0 - rate, noise_shape_for(name, noise_shape, x))
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype)).astype(x.dtype)

    return Layer(init, apply, name=name, masking=PASS)
