"""EinsumDense: a dense layer whose contraction is an einsum equation (Keras 3).

The kernel and bias shapes are read from the equation, the input shape and the partial
output shape exactly as Keras' ``EinsumDense.build`` reads them, so Keras weights load
unchanged. MultiHeadAttention's four projections are EinsumDense layers.
"""
from __future__ import annotations

import inspect
import math
import re

import jax
import jax.numpy as jnp

from .. import activations as _activations
from .. import initializers as _initializers
from ..core import Layer, Shape, ShapeError, as_shape, describe, is_free
from .weights import weight_hooks
from .checks import cast_like
from ..regularizers import with_activity_regularizer
from .args import ArgumentTypeError, keras_layer, refuse_lora, refuse_unless_default

# The three equation forms Keras accepts ("0" stands for "..." after substitution).
_FORMS = (("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$", False),
          ("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$", True),
          ("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$", False))


def parse_equation(equation: str):
    """``(input_spec, weight_spec, output_spec, left_elided)`` of a Keras EinsumDense
    equation (``"ab,bc->ac"``, ``"...b,bc->...c"`` or ``"ab...,bc->ac..."``)."""
    flat = re.sub(r"\.\.\.", "0", equation.replace(" ", ""))
    for pattern, left in _FORMS:
        match = re.match(pattern, flat)
        if match:
            return match.group(1), match.group(2), match.group(3), left
    raise ValueError(f"EinsumDense: invalid equation {equation!r}; equations must be of the "
                     f"form [X],[Y]->[Z], ...[X],[Y]->...[Z] or [X]...,[Y]->[Z]...")


def dense_form(equation: str):
    """How many kernel axes `equation` contracts when it is a dense layer in disguise, or
    None.

    Dense form: the contracted letters close the input's letters, in the order they open
    the kernel's, and the output is the input's other letters then the kernel's other
    letters (``"abc,cde->abde"``, ``"abcd,cde->abe"``, ``"...b,bc->...c"``). Such an
    einsum is a reshape, one 2-D matrix product and a reshape; with several contracted
    axes XLA compiles that (and its gradient) with fewer transposes and copies than the
    einsum of the same numbers (docs/bench.md, transformer compile time).
    """
    in_spec, w_spec, out_spec, left = parse_equation(equation)
    if "..." in equation and not left:
        return None
    if any(len(set(s)) != len(s) for s in (in_spec, w_spec, out_spec)):
        return None
    shared = [c for c in in_spec if c in w_spec]
    n = len(shared)
    if n == 0 or in_spec[len(in_spec) - n:] != "".join(shared) or w_spec[:n] != "".join(
            shared):
        return None
    return n if out_spec == in_spec[:len(in_spec) - n] + w_spec[n:] else None


def _dense_product(x, kernel, n: int, bias):
    """``einsum`` (plus `bias`, shaped like the kernel's output axes) of a dense-form
    equation contracting `n` axes: the last `n` axes of `x` with the first `n` of `kernel`,
    as one 2-D matrix product (and bias add) between reshapes."""
    lead, inner, rest = x.shape[:x.ndim - n], kernel.shape[:n], kernel.shape[n:]
    if tuple(x.shape[x.ndim - n:]) != tuple(inner):
        raise ValueError(f"its last {n} dims must be {tuple(inner)}")
    size = math.prod(inner)
    y = x.reshape(lead + (size,)) @ kernel.reshape(size, -1)
    if bias is not None:    # added flat: its gradient is one plain reduce over the rows
        y = y + jnp.broadcast_to(bias.reshape(-1), y.shape)
    return y.reshape(lead + rest)


def einsum_shapes(name, equation, bias_axes, input_shape, output_shape):
    """Keras' ``_analyze_einsum_string``: ``(kernel_shape, bias_shape, full_output_shape,
    input_axes, output_axes)`` for an input of `input_shape` (batch first).

    `output_shape` is the partial output shape without the batch axis (None for a dim
    taken from the input); `bias_shape` is None when `bias_axes` is None; `input_axes` /
    `output_axes` are the kernel axes that are fan-in / fan-out. A ShapeError names
    `name` on any mismatch.
    """
    in_spec, w_spec, out_spec, left = parse_equation(equation)
    elided = len(input_shape) - len(in_spec)
    if elided < 0 or (elided > 0 and not ("..." in equation)):
        raise ShapeError(f"equation {equation!r} expects an input of rank {len(in_spec)}, "
                         f"received shape {Shape(input_shape)!r}", name)
    out = [input_shape[0]] + list(output_shape)
    if elided and left:
        out[1:1] = list(input_shape[1:elided])
    elif elided:
        out += list(input_shape[len(input_shape) - elided:])
    if len(out) != len(out_spec) + elided:
        raise ShapeError(f"output_shape {tuple(output_shape)!r} does not fit equation "
                         f"{equation!r}: expected {len(out_spec) - 1} dims (the output letters "
                         f"after the batch axis), received {len(output_shape)}", name)
    offset = elided if left else 0
    in_map = {c: i + offset for i, c in enumerate(in_spec)}
    out_map = {c: i + offset for i, c in enumerate(out_spec)}
    for c in in_spec:                        # a shared dim comes from the input
        if c in out_map:
            given, known = out[out_map[c]], input_shape[in_map[c]]
            if not is_free(given) and not is_free(known) and given != known:
                raise ShapeError(f"input and output_shape disagree on dimension {c!r} of "
                                 f"{equation!r}: input {known}, output_shape {given}", name)
            out[out_map[c]] = known if not is_free(known) else given
    for c in out_spec:
        if c not in in_spec and c not in w_spec:
            raise ShapeError(f"output dimension {c!r} of {equation!r} is in neither the "
                             f"input nor the kernel", name)
    kernel, in_axes, out_axes = [], [], []
    for i, c in enumerate(w_spec):
        if c in out_map:
            kernel.append(out[out_map[c]])
            out_axes.append(i)
        elif c in in_map:
            kernel.append(input_shape[in_map[c]])
            in_axes.append(i)
        else:
            raise ShapeError(f"kernel dimension {c!r} of {equation!r} is in neither the "
                             f"input nor the output", name)
        if is_free(kernel[-1]):
            raise ShapeError(f"kernel dimension {c!r} of {equation!r} must be known: give it "
                             f"in output_shape or the input shape, received input "
                             f"{Shape(input_shape)!r} and output_shape "
                             f"{tuple(output_shape)!r}", name)
    bias = None
    if bias_axes is not None:
        bad = [c for c in bias_axes if c not in out_spec]
        if bad:
            raise ShapeError(f"bias_axes {bias_axes!r} name {bad[0]!r}, which is not in the "
                             f"output {out_spec!r} of {equation!r}", name)
        first = min(out_spec.find(c) for c in bias_axes)
        bias = [out[out_map[c]] if c in bias_axes else 1 for c in out_spec[first:]]
        bias += [] if left else [1] * elided
        if any(is_free(d) for d in bias):
            raise ShapeError(f"bias_axes {bias_axes!r} name a dimension whose size is not "
                             f"known, output shape {Shape(out)!r}", name)
    return tuple(kernel), None if bias is None else tuple(bias), Shape(out), in_axes, out_axes


def fan_initializer(name, identifier, input_axes, output_axes):
    """The initializer for `identifier`; a variance-scaling one (glorot, he, lecun...)
    given by name or config gets the kernel's fan-in / fan-out axes, as Keras does."""
    try:
        if isinstance(identifier, (str, dict)):
            cls = identifier if isinstance(identifier, str) else identifier.get("class_name")
            ctor = _initializers.ALL.get(cls)
            if ctor is not None and "input_axes" in inspect.signature(ctor).parameters:
                config = {} if isinstance(identifier, str) else dict(
                    identifier.get("config") or {})
                config.update(input_axes=list(input_axes), output_axes=list(output_axes))
                return ctor(**config)
        return _initializers.get(identifier)
    except (ValueError, TypeError) as e:
        raise ShapeError(str(e), name) from None


def _partial_output_shape(output_shape) -> tuple:
    """EinsumDense's `output_shape` (an int, or a sequence of positive ints and None) as a
    tuple, or an ArgumentTypeError naming the argument."""
    dims = (output_shape,) if isinstance(output_shape, int) else output_shape
    if isinstance(dims, (list, tuple)) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in dims):
        return tuple(dims)
    raise ArgumentTypeError(f"EinsumDense: output_shape must be a positive int or a tuple of "
                            f"positive ints and None, received {output_shape!r}")


@keras_layer
def EinsumDense(equation: str, output_shape, activation=None, bias_axes=None,
                kernel_initializer="glorot_uniform", bias_initializer="zeros",
                kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                kernel_constraint=None, bias_constraint=None, lora_rank=None,
                lora_alpha=None, gptq_unpacked_column_size=None,
                quantization_config=None) -> Layer:
    """A dense layer computing ``activation(einsum(equation, x, kernel) + bias)``.

    Args:
      equation: Keras' einsum form, e.g. ``"abc,cd->abd"`` or ``"...b,bc->...c"``; the
        first operand is the input, the second the kernel.
      output_shape: the output shape without the batch axis (an int for one dim); None
        entries are taken from the input.
      activation: an activation name or function, or None.
      bias_axes: the output letters the bias spans (e.g. ``"d"``), or None for no bias.
      kernel_initializer, bias_initializer: initializers; variance-scaling ones use
        the kernel's fan-in / fan-out axes, as in Keras.
      kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
      kernel_constraint, bias_constraint: constraints.
      lora_rank, lora_alpha: None only (LoRA is not implemented; fine-tune with
        `jl.freeze` instead).
      gptq_unpacked_column_size, quantization_config: None only (weights are not
        quantized).

    Params: ``kernel`` and, with `bias_axes`, ``bias``, shaped as Keras builds them.

    Input shape: batch first, of the rank the equation names. Output shape: the batch
    axis, then `output_shape` (free dims filled from the input).
    """
    if not isinstance(equation, str):
        raise ArgumentTypeError(f"EinsumDense: equation must be a string such as 'ab,bc->ac', "
                                f"received {equation!r}")
    parse_equation(equation)
    partial = _partial_output_shape(output_shape)
    if bias_axes is not None and not isinstance(bias_axes, str):
        raise ArgumentTypeError(f"EinsumDense: bias_axes must be None or a string of output "
                                f"letters, received {bias_axes!r}")
    refuse_lora("EinsumDense", lora_rank, lora_alpha, quantization_config)
    refuse_unless_default("EinsumDense", "gptq_unpacked_column_size",
                          gptq_unpacked_column_size, None, "weights are not quantized")
    name = describe("EinsumDense", equation, partial)
    try:
        act = _activations.get(activation)
        binit = _initializers.get(bias_initializer)
    except ValueError as e:
        raise ShapeError(str(e), name) from None
    penalty, constrain = weight_hooks(name, kernel=(kernel_regularizer, kernel_constraint),
                                      bias=(bias_regularizer, bias_constraint))
    fan_initializer(name, kernel_initializer, [0], [0])    # an unknown name fails here
    # Only where the einsum contracts several axes (MultiHeadAttention's output projection):
    # there XLA must flatten them itself, and the 2-D form compiles with fewer transposes
    # and copies at no cost in speed. One contracted axis (the query / key / value
    # projections) is one matrix product already; its 2-D form compiles a little faster
    # too but trains the transformer step 6-8% slower on CPU (likely: the reshaped heads fix
    # a layout that the attention core then works around): docs/bench.md, "Compile time".
    contracted = dense_form(equation)
    contracted = contracted if contracted is not None and contracted > 1 else None
    in_rank = None if "..." in equation else len(parse_equation(equation)[0])

    def init(key, input_shape):
        shape = as_shape(input_shape)
        if not isinstance(shape, Shape):
            raise ShapeError(f"expected one input shape, received {input_shape!r}", name)
        kshape, bshape, out, in_axes, out_axes = einsum_shapes(
            name, equation, bias_axes, shape, partial)
        kinit = fan_initializer(name, kernel_initializer, in_axes, out_axes)
        k_kernel, k_bias = jax.random.split(key)
        params = {"kernel": kinit(k_kernel, kshape, jnp.float32)}
        if bshape is not None:
            params["bias"] = binit(k_bias, bshape, jnp.float32)
        return out, params

    def apply(params, x, *, rng=None, train=False):
        kernel, bias = cast_like(x, params["kernel"], params.get("bias"))
        try:
            if contracted is None or in_rank not in (None, x.ndim):
                y = jnp.einsum(equation, x, kernel)    # (a wrong rank fails in einsum)
            else:
                flat = bias is not None and bias.shape == kernel.shape[contracted:]
                y = _dense_product(x, kernel, contracted, bias if flat else None)
                bias = None if flat else bias
        except ValueError as e:
            raise ShapeError(f"input of shape {Shape(x.shape)!r} does not fit the kernel "
                             f"{Shape(kernel.shape)!r}: {e}", name) from None
        if bias is not None:
            y = y + jnp.broadcast_to(bias, y.shape)
        return act(y)

    layer = Layer(init, apply, name=name, penalty=penalty, constrain=constrain)
    return with_activity_regularizer(layer, activity_regularizer)
