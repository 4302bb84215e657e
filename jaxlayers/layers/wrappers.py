"""Wrappers around other layers: `Bidirectional` (a recurrent layer run both ways over time)
and `TimeDistributed` (a layer applied to every time step)."""
from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp

from ..core import MaskRule, makes_mask
from ..core import Layer, Shape, ShapeError, as_layer, as_shape, stateful_init
from .args import ArgumentTypeError, keras_layer, one_of, refuse_unless_default
from .checks import check_rank


def _apply_any(layer, params, state, x, rng, train, **kwargs):
    """``(y, state)`` from a stateful or stateless layer, passing extra keywords."""
    if layer.stateful:
        return layer.apply(params, state, x, rng=rng, train=train, **kwargs)
    return layer.apply(params, x, rng=rng, train=train, **kwargs), state


def _takes(layer, keyword):
    try:
        sig = inspect.signature(layer.apply)
    except (TypeError, ValueError):
        return False
    return keyword in sig.parameters or any(
        p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


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

    Params: ``(forward_params, backward_params)``. ``apply`` takes ``mask=`` and
    ``initial_state=`` (forward states then backward states). With return_state the result
    is ``(merged, *forward_states, *backward_states)``.

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
        if not l.masking.takes or not _takes(l, "initial_state"):
            raise ValueError(f"Bidirectional: expected a recurrent layer (LSTM, GRU, SimpleRNN "
                             f"or RNN), got {l.name}")
    name = f"Bidirectional({fwd.name}" + ("" if merge_mode == "concat" else
                                          f", merge_mode={merge_mode!r}") + ")"
    stateful = fwd.stateful or bwd.stateful
    merge = _MERGES.get(merge_mode)

    def _merge_shape(a, b):
        if merge_mode == "concat":
            return Shape(a[:-1] + (a[-1] + b[-1],))
        if merge_mode is None:
            return (a, b)
        return a

    def init_s(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=3, what="input (batch, time, features)")
        k_f, k_b = jax.random.split(key)
        out_f, p_f, s_f = stateful_init(fwd, k_f, shape)
        out_b, p_b, s_b = stateful_init(bwd, k_b, shape)
        multi = isinstance(out_f, tuple) and not isinstance(out_f, Shape)
        if multi:
            y_f, states_f, y_b, states_b = out_f[0], out_f[1:], out_b[0], out_b[1:]
        else:
            y_f, states_f, y_b, states_b = out_f, (), out_b, ()
        if y_f != y_b and merge_mode in ("sum", "mul", "ave"):
            raise ShapeError(f"the forward and backward outputs {y_f!r}, {y_b!r} must agree "
                             f"for merge_mode={merge_mode!r}", name)
        merged = _merge_shape(y_f, y_b)
        if multi:
            out = ((merged,) if merge_mode is not None else merged) + states_f + states_b
        else:
            out = merged
        return out, (p_f, p_b), (s_f, s_b)

    def apply_s(params, state, x, *, rng=None, train=False, mask=None, initial_state=None):
        if getattr(x, "ndim", None) != 3:
            raise ShapeError(f"expected an input of shape (batch, time, features), received "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        (p_f, p_b), (s_f, s_b) = params, state
        r_f = r_b = None
        if rng is not None:
            r_f, r_b = jax.random.fold_in(rng, 0), jax.random.fold_in(rng, 1)
        kw_f, kw_b = {}, {}
        if mask is not None:
            mask = jnp.asarray(mask).astype(bool)
            kw_f["mask"], kw_b["mask"] = mask, (mask[:, ::-1] if flip_input else mask)
        if initial_state is not None:
            initial_state = tuple(initial_state)
            half = len(initial_state) // 2
            kw_f["initial_state"] = initial_state[:half]
            kw_b["initial_state"] = initial_state[half:]
        y_f, s_f = _apply_any(fwd, p_f, s_f, x, r_f, train, **kw_f)
        y_b, s_b = _apply_any(bwd, p_b, s_b, x[:, ::-1] if flip_input else x, r_b, train,
                              **kw_b)
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
        return y, (s_f, s_b)

    def mask_fn(x, mask):
        return fwd.masking.out(x, mask) if callable(fwd.masking.out) else None

    penalty = lambda params: fwd.penalty(params[0]) + bwd.penalty(params[1])
    constrain = lambda params: (fwd.constrain(params[0]), bwd.constrain(params[1]))
    if stateful:
        return Layer(init_s, apply_s, name=name, stateful=True, penalty=penalty,
                     constrain=constrain, masking=makes_mask(mask_fn, takes=True))

    def init(key, input_shape):
        out, params, _ = init_s(key, input_shape)
        return out, params

    def apply(params, x, *, rng=None, train=False, mask=None, initial_state=None):
        return apply_s(params, ((), ()), x, rng=rng, train=train, mask=mask,
                       initial_state=initial_state)[0]

    return Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                 masking=makes_mask(mask_fn, takes=True))


@keras_layer
def TimeDistributed(layer) -> Layer:
    """Apply `layer` to every time step (axis 1) independently, with the same params.

    The batch and time axes are folded into one for the call, so any layer works
    (Dense, Conv2D on frames, a whole `serial`); a stateful layer (BatchNormalization)
    sees the folded batch. A mask passes through unchanged; when the wrapped layer takes
    one (an RNN, BatchNormalization) and the mask covers every axis of the input but the
    last (e.g. (batch, time, steps) for TimeDistributed(LSTM) over (batch, time, steps,
    features)), it is folded the same way and handed to it, as Keras hands each step its
    slice of the mask.

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
        out, params, state = stateful_init(inner, key, Shape((folded,) + shape[2:]))
        if not isinstance(out, Shape):
            raise ShapeError(f"the wrapped layer must return one array, its output shape is "
                             f"{out!r}", name)
        return Shape(shape[:2] + out[1:]), params, state

    def apply_s(params, state, x, *, rng=None, train=False, mask=None):
        if getattr(x, "ndim", 0) < 3:
            raise ShapeError(f"expected an input of shape (batch, time, ...), received "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        b, t = x.shape[:2]
        kwargs = {}
        if mask is not None and tuple(jnp.shape(mask)) == tuple(x.shape[:-1]):
            kwargs["mask"] = jnp.reshape(mask, (b * t,) + tuple(x.shape[2:-1]))
        y, state = _apply_any(inner, params, state, x.reshape((b * t,) + x.shape[2:]), rng,
                              train, **kwargs)
        return y.reshape((b, t) + y.shape[1:]), state

    if inner.stateful:
        return Layer(init_s, apply_s, name=name, stateful=True, penalty=inner.penalty,
                     constrain=inner.constrain, children=(inner,),
                     masking=MaskRule(takes=inner.masking.takes, out="pass"))

    def init(key, input_shape):
        out, params, _ = init_s(key, input_shape)
        return out, params

    def apply(params, x, *, rng=None, train=False, mask=None):
        return apply_s(params, (), x, rng=rng, train=train, mask=mask)[0]

    return Layer(init, apply, name=name, penalty=inner.penalty, constrain=inner.constrain,
                 children=(inner,),
                 masking=MaskRule(takes=inner.masking.takes, out="pass"))
