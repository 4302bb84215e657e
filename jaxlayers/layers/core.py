"""Core layers: InputLayer, Dense, Activation, Identity, Lambda, Dropout. Keras' names,
arguments and defaults. The reshaping layers of Keras' core kind (Flatten, Reshape, Permute,
RepeatVector) live in `layers.reshaping`, re-exported here for old imports."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import activations as _activations
from .. import initializers as _initializers
from .weights import weight_hooks
from ..core import PASS, makes_mask
from ..core import Layer, Shape, ShapeError, as_shape, describe, infer_shape, is_free
from .checks import bias_add, cast_like, check_input, check_rank, need_rng, noise_shape_for
from ..regularizers import with_activity_regularizer
from .args import (ArgumentTypeError, boolean, fraction, keras_layer, non_negative_int,
                   positive_int, refuse_lora, refuse_unless_default)
from .reshaping import Flatten, Permute, RepeatVector, Reshape  # noqa: F401 (moved; old imports)

__all__ = ["InputLayer", "Dense", "Activation", "Identity", "Lambda", "Dropout"]


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


@keras_layer
def InputLayer(shape=None, batch_size=None, dtype=None, sparse=None, ragged=None,
               batch_shape=None, input_tensor=None, optional=False, *,
               input_shape=None) -> Layer:
    """Declare the input shape (without the batch dimension), as Keras' InputLayer.

    `init(key, None)` uses the declared shape; any other `input_shape` given to init
    must equal ``(batch_size, *shape)``. `apply` checks the input and returns it (cast to
    `dtype` when one is given, as a Keras model converts its inputs).

    Args:
      shape: the shape of one example, without the batch axis (an int or a tuple; None
        for a free dim).
      batch_size: a fixed batch size, or None (free).
      dtype: the dtype inputs are converted to, or None (left as given).
      sparse: False or None only (JAX arrays are dense).
      ragged: False or None only (JAX arrays are rectangular).
      batch_shape: the full shape with the batch axis, instead of `shape` and `batch_size`.
      input_tensor: None only (use `jl.Input` for a symbolic input).
      optional: False only (every input of a pure function is given).
      input_shape: an alias of `shape` (Keras 2's keyword).

    Input shape: ``(batch_size, *shape)``. Output shape: the same.
    """
    for arg, value, reason in (("sparse", sparse, "JAX arrays are dense"),
                               ("ragged", ragged, "JAX arrays are rectangular"),
                               ("optional", optional, "every input of a pure function is given")):
        if value is not None:
            boolean("InputLayer", arg, value)
            refuse_unless_default("InputLayer", arg, value, False, reason)
    refuse_unless_default("InputLayer", "input_tensor", input_tensor, None,
            "use jl.Input for a symbolic input tensor")
    shape = shape if shape is not None else input_shape
    if batch_shape is not None:
        if shape is not None or batch_size is not None:
            raise ValueError("InputLayer: give either batch_shape or shape (and batch_size), "
                             f"received batch_shape={batch_shape!r} and shape={shape!r}")
        batch_size, shape = tuple(batch_shape)[0], tuple(batch_shape)[1:]
    if shape is None:
        raise ValueError("InputLayer: give the input shape without the batch dimension, "
                         "e.g. InputLayer((28, 28, 1))")
    if isinstance(shape, int):
        shape = (shape,)
    if batch_size is not None:
        batch_size = positive_int("InputLayer", "batch_size", batch_size)
    try:
        declared = as_shape((batch_size,) + tuple(shape))
        in_dtype = None if dtype is None else jnp.dtype(dtype)
    except (ShapeError, TypeError) as e:
        raise ArgumentTypeError(f"InputLayer: expected a shape of ints and None and a dtype, "
                                f"received shape={shape!r}, dtype={dtype!r} ({e})") from None
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
        return x if in_dtype is None else x.astype(in_dtype)

    return Layer(init, apply, name=name)


@keras_layer
def Dense(units: int, activation=None, use_bias: bool = True,
          kernel_initializer="glorot_uniform", bias_initializer="zeros",
          kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
          kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
          quantization_config=None) -> Layer:
    """A densely connected layer: ``activation(x @ kernel + bias)`` on the last axis.

    Params: ``kernel`` (in, units), ``bias`` (units,) when `use_bias`.

    Args:
      units: the output size, a positive int.
      activation: a name (``"relu"``), a function, a parameter-free layer
        (``jl.LeakyReLU(0.1)``) or None (linear).
      use_bias: whether to add a ``bias``.
      kernel_initializer, bias_initializer: initializers (names or callables).
      kernel_regularizer, bias_regularizer: weight regularizers; they feed
        ``layer.penalty(params)``.
      activity_regularizer: a regularizer of the output; makes the layer stateful.
      kernel_constraint, bias_constraint: constraints applied by ``layer.constrain(params)``.
      lora_rank, lora_alpha: None only (LoRA is not implemented; fine-tune with
        `jl.freeze` instead).
      quantization_config: None only (weights are not quantized).

    Input shape: ``(batch, ..., in)`` of rank >= 2. Output shape: ``(batch, ..., units)``.
    """
    units = positive_int("Dense", "units", units)
    use_bias = boolean("Dense", "use_bias", use_bias)
    refuse_lora("Dense", lora_rank, lora_alpha, quantization_config)
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


@keras_layer
def Activation(activation) -> Layer:
    """Apply an activation function elementwise.

    Args:
      activation: a name (``"relu"``), a function, or a parameter-free layer.

    Input shape: any. Output shape: the same.
    """
    fn = _activation("Activation", activation)
    name = describe("Activation", activation if isinstance(activation, str) else fn)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=0)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        return fn(x)

    return Layer(init, apply, name=name, masking=PASS)


@keras_layer
def Identity() -> Layer:
    """Return the input unchanged.

    Input shape: any. Output shape: the same.
    """
    def init(key, input_shape):
        return as_shape(input_shape), ()

    def apply(params, x, *, rng=None, train=False):
        return x

    return Layer(init, apply, name="Identity()", masking=PASS)


@keras_layer
def Lambda(function, output_shape=None, mask=None, arguments=None) -> Layer:
    """Wrap ``function(x, **arguments)`` as a parameter-free layer.

    Args:
      function: the function of the input (an array, or a list of arrays).
      output_shape: the output shape without the batch axis (as in Keras), or a callable
        ``input_shape -> output_shape``; when omitted it is inferred with `jax.eval_shape`.
      mask: the time-step mask after the layer, as Keras' Lambda computes it: a callable
        ``mask(x, previous_mask) -> mask`` or a fixed boolean array; None keeps the
        default behaviour.
      arguments: a dict of keyword arguments for `function`.

    Input shape: what `function` takes. Output shape: what it returns (or `output_shape`).
    """
    if not callable(function):
        raise ArgumentTypeError(f"Lambda: function must be callable, received {function!r}")
    if arguments is not None and not isinstance(arguments, dict):
        raise ArgumentTypeError(f"Lambda: arguments must be a dict of keyword arguments, "
                                f"received {arguments!r}")
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

    if mask is None:
        return Layer(init, apply, name=name)   # drops masks, as Keras' Lambda
    if callable(mask):
        return Layer(init, apply, name=name, masking=makes_mask(lambda x, previous: mask(x, previous)))
    fixed = jnp.asarray(mask, bool)
    return Layer(init, apply, name=name, masking=makes_mask(lambda x, previous: fixed))


def noise_shape_arg(kind: str, noise_shape):
    """Keras' `noise_shape` (None, or a tuple of positive ints and None) as a tuple."""
    if noise_shape is None:
        return None
    if not isinstance(noise_shape, (list, tuple)) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in noise_shape):
        raise ArgumentTypeError(f"{kind}: noise_shape must be None or a tuple of positive "
                                f"ints and None (batch axis included), received "
                                f"{noise_shape!r}")
    return tuple(noise_shape)


def noise_shape_init(name: str, noise_shape):
    """The `init` of a parameter-free random layer: the output shape is the input's, whose
    rank must be that of `noise_shape` when one is given."""
    def init(key, input_shape):
        shape = as_shape(input_shape)
        if noise_shape is not None:
            check_rank(name, shape, rank=len(noise_shape))
        return shape, ()
    return init


def seed_arg(kind: str, seed):
    """Keras' `seed` (None or a non-negative int); accepted and unused: keys come from `rng`."""
    return None if seed is None else non_negative_int(kind, "seed", seed)


@keras_layer
def Dropout(rate: float, noise_shape=None, seed=None) -> Layer:
    """Set a fraction `rate` of the inputs to 0 in training, scaling the rest by 1/(1-rate).

    Acts only with ``train=True`` (then it needs ``rng``); otherwise returns the input.

    Args:
      rate: the fraction of inputs dropped, a float in [0, 1].
      noise_shape: the shape of the random mask, batch axis included (None entries take
        the input's size); a 1 shares one mask value along that axis.
      seed: accepted for Keras compatibility (an int) and unused: randomness comes from
        the `rng` key.

    Input shape: any. Output shape: the same.
    """
    fraction("Dropout", "rate", rate)
    noise_shape = noise_shape_arg("Dropout", noise_shape)
    seed_arg("Dropout", seed)
    name = describe("Dropout", rate)

    def apply(params, x, *, rng=None, train=False):
        if not train or rate == 0:
            return x
        need_rng(name, rng)
        if rate == 1:
            return jnp.zeros_like(x)
        keep = jax.random.bernoulli(rng, 1.0 - rate, noise_shape_for(name, noise_shape, x))
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype)).astype(x.dtype)

    return Layer(noise_shape_init(name, noise_shape), apply, name=name, masking=PASS)
