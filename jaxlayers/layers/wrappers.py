"""Wrappers around other layers: `Bidirectional` (a recurrent layer run both ways over time)
and `TimeDistributed` (a layer applied to every time step).

Both are containers: they run their layers through `core.init_child` / `core.call_child`
(which name the wrapped layer's place in errors and record it for `jl.summary`) and are
built once in the stateful form with `core.from_stateful`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..combinators import check_entries
from ..core import (Layer, Shape, ShapeError, as_layer, as_shape, call_child, child_rng,
                    from_stateful, init_child)
from .args import ArgumentTypeError, keras_layer, one_of, refuse_unless_default
from .checks import check_rank

# The places of the wrapped layers, named after Keras' attributes.
FORWARD, BACKWARD = "Bidirectional.forward_layer", "Bidirectional.backward_layer"
INNER = "TimeDistributed.layer"

_MERGES = {
    "concat": lambda a, b: jnp.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


def _wrapped(kind, arg, layer, expected) -> Layer:
    """`layer` as a Layer, or an ArgumentTypeError naming `kind`, `arg` and `expected`."""
    try:
        return as_layer(layer)
    except TypeError:
        raise ArgumentTypeError(f"{kind}: {arg} must be {expected}, received {layer!r}") from None


def _is_recurrent(layer: Layer) -> bool:
    """Whether `layer` follows the recurrent layers' mask rule: it takes the mask and
    computes the mask after it (`makes_mask(fn, takes=True)`)."""
    return layer.masking.takes and callable(layer.masking.out)


@keras_layer
def Bidirectional(layer, merge_mode="concat", weights=None, backward_layer=None) -> Layer:
    """Run a recurrent layer forward and backward over time and merge the two outputs.

    The backward pass is a second copy of `layer` (its own params) run on the reversed
    sequence (and reversed mask); a returned sequence is flipped back to the input's order
    before merging, as Keras does. With a mask and return_sequences, masked steps output
    zeros in both directions (Keras forces ``zero_output_for_mask`` here).

    Args:
      layer: a recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, `RNN`).
      merge_mode: ``"concat"`` (forward first), ``"sum"``, ``"mul"``, ``"ave"`` or None
        (a tuple ``(forward, backward)``).
      weights: None only (initial weights: copy arrays into the params instead).
      backward_layer: an optional separate layer for the backward direction, built with
        ``go_backwards=True`` as Keras requires; it gets the sequence as is.

    Params: ``(forward_params, backward_params)`` (state likewise, when a copy is stateful).
    ``apply`` takes ``mask=``, ``initial_state=`` (forward states then backward states) and
    ``return_mask=``. With return_state the result is
    ``(merged, *forward_states, *backward_states)``. Errors inside a copy name its place,
    ``Bidirectional.forward_layer`` or ``Bidirectional.backward_layer``.

    Input shape: ``(batch, time, features)``. Output shape: the layer's, with the last axis
    doubled for ``"concat"``.
    """
    one_of("Bidirectional", "merge_mode", merge_mode, ("concat", "sum", "mul", "ave", None))
    refuse_unless_default("Bidirectional", "weights", weights, None,
                          "params are a pytree returned by init: set its arrays instead")
    recurrent = "a recurrent layer (LSTM, GRU, SimpleRNN or RNN)"
    fwd = _wrapped("Bidirectional", "layer", layer, recurrent)
    bwd = fwd if backward_layer is None else _wrapped("Bidirectional", "backward_layer",
                                                      backward_layer, recurrent)
    # The copy of `layer` runs on the reversed sequence; a given backward_layer reverses it
    # itself (Keras requires it to have go_backwards=True).
    flip_input = backward_layer is None
    for l in (fwd, bwd):
        if not _is_recurrent(l):
            raise ValueError(f"Bidirectional: expected {recurrent}, got {l.name}")
    name = f"Bidirectional({fwd.name}" + ("" if merge_mode == "concat" else
                                          f", merge_mode={merge_mode!r}") + ")"
    merge = _MERGES.get(merge_mode)

    def merge_shape(a, b):
        if merge_mode == "concat":
            return Shape(a[:-1] + (a[-1] + b[-1],))
        if merge_mode is None:
            return (a, b)
        return a

    def init_s(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=3, what="input (batch, time, features)")
        k_f, k_b = jax.random.split(key)
        out_f, p_f, s_f = init_child(fwd, k_f, shape, FORWARD)
        out_b, p_b, s_b = init_child(bwd, k_b, shape, BACKWARD)
        multi = isinstance(out_f, tuple) and not isinstance(out_f, Shape)
        if multi:
            y_f, states_f, y_b, states_b = out_f[0], out_f[1:], out_b[0], out_b[1:]
        else:
            y_f, states_f, y_b, states_b = out_f, (), out_b, ()
        if y_f != y_b and merge_mode in ("sum", "mul", "ave"):
            raise ShapeError(f"the forward and backward outputs {y_f!r}, {y_b!r} must agree "
                             f"for merge_mode={merge_mode!r}", name)
        merged = merge_shape(y_f, y_b)
        if multi:
            out = ((merged,) if merge_mode is not None else merged) + states_f + states_b
        else:
            out = merged
        return out, (p_f, p_b), (s_f, s_b)

    def run(params, state, x, rng, train, mask, initial_state=None):
        if getattr(x, "ndim", None) != 3:
            raise ShapeError(f"expected an input of shape (batch, time, features), received "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        check_entries(name, params, 2, "params")
        check_entries(name, state, 2, "state")
        (p_f, p_b), (s_f, s_b) = params, state
        kw_f, kw_b = {}, {}
        if initial_state is not None:
            initial_state = tuple(initial_state)
            half = len(initial_state) // 2
            kw_f["initial_state"] = initial_state[:half]
            kw_b["initial_state"] = initial_state[half:]
        if mask is not None:
            mask = jnp.asarray(mask).astype(bool)
        x_b, mask_b = x, mask
        if flip_input:
            x_b, mask_b = x[:, ::-1], (None if mask is None else mask[:, ::-1])
        y_f, mask_after, s_f = call_child(fwd, p_f, s_f, x, child_rng(rng, 0), train, FORWARD,
                                          mask, **kw_f)
        y_b, _, s_b = call_child(bwd, p_b, s_b, x_b, child_rng(rng, 1), train, BACKWARD,
                                 mask_b, **kw_b)
        multi = isinstance(y_f, tuple)
        states = ()
        if multi:
            states = tuple(y_f[1:]) + tuple(y_b[1:])
            y_f, y_b = y_f[0], y_b[0]
        if y_b.ndim == 3:  # sequences: back to the input's order, masked steps zeroed
            y_b = y_b[:, ::-1]
            if mask is not None:
                keep = mask[:, :, None]
                y_f = jnp.where(keep, y_f, jnp.zeros_like(y_f))
                y_b = jnp.where(keep, y_b, jnp.zeros_like(y_b))
        y = (y_f, y_b) if merge is None else merge(y_f, y_b)
        if multi:
            y = (y if merge is None else (y,)) + states
        return y, mask_after, (s_f, s_b)

    return from_stateful(
        init_s, run, stateful=fwd.stateful or bwd.stateful, empty_state=((), ()),
        keywords=("initial_state",), name=name, children=(fwd, bwd),
        penalty=lambda params: fwd.penalty(params[0]) + bwd.penalty(params[1]),
        constrain=lambda params: (fwd.constrain(params[0]), bwd.constrain(params[1])))


@keras_layer
def TimeDistributed(layer) -> Layer:
    """Apply `layer` to every time step (axis 1) independently, with the same params.

    The batch and time axes are folded into one for the call, so any layer works
    (Dense, Conv2D on frames, a whole `serial`); a stateful layer (BatchNormalization)
    sees the folded batch. A (batch, time) mask passes through unchanged; when the wrapped
    layer takes one (an RNN, BatchNormalization) and the mask covers every axis of the
    input but the last (e.g. (batch, time, steps) for TimeDistributed(LSTM) over (batch,
    time, steps, features)), it is folded the same way and handed to it, as Keras hands
    each step its slice of the mask. Errors inside name the place
    ``TimeDistributed.layer``.

    Args:
      layer: the layer applied to each step: a Layer, an ``(init, apply)`` pair or a
        function.

    Params: the layer's. Input shape: ``(batch, time, *inner)``. Output shape:
    ``(batch, time, *inner_output)``.
    """
    inner = _wrapped("TimeDistributed", "layer", layer,
                     "a Layer, an (init, apply) pair or a function")
    name = f"TimeDistributed({inner.name})"

    def init_s(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=3)
        folded = None if None in shape[:2] else shape[0] * shape[1]   # batch * time
        out, params, state = init_child(inner, key, Shape((folded,) + shape[2:]), INNER)
        if not isinstance(out, Shape):
            raise ShapeError(f"the wrapped layer must return one array, its output shape is "
                             f"{out!r}", name)
        return Shape(shape[:2] + out[1:]), params, state

    def run(params, state, x, rng, train, mask):
        if getattr(x, "ndim", 0) < 3:
            raise ShapeError(f"expected an input of shape (batch, time, ...), received "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        b, t = x.shape[:2]
        step_mask = None
        if mask is not None and tuple(jnp.shape(mask)) == tuple(x.shape[:-1]):
            step_mask = jnp.reshape(mask, (b * t,) + tuple(x.shape[2:-1]))
        y, _, state = call_child(inner, params, state, x.reshape((b * t,) + x.shape[2:]), rng,
                                 train, INNER, step_mask)
        y = y.reshape((b, t) + y.shape[1:])
        # Keras' TimeDistributed passes its mask on; here only a (batch, time) one.
        passed = mask if mask is not None and tuple(jnp.shape(mask)) == (b, t) else None
        return y, passed, state

    return from_stateful(init_s, run, stateful=inner.stateful, empty_state=(), name=name,
                         children=(inner,), penalty=inner.penalty, constrain=inner.constrain)
