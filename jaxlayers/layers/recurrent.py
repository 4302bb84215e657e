"""Recurrent layers: the generic `RNN(cell)`, `SimpleRNN`, `LSTM`, `GRU`, and
`reset_states` for stateful ones. The cells live in cells.py and stacked_cells.py;
`Bidirectional` and `TimeDistributed` in wrappers.py.

Every RNN runs one `lax.scan` over time; a cell may `project` the whole sequence before the
loop (the built-in cells compute ``x @ kernel + bias`` for all time steps in one matmul there
where that is faster). A stateful RNN (``stateful=True``) keeps its last states in the
layer's state channel, under the key ``"rnn_state"``.
"""
from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from jax import lax

from ..core import Layer, Shape, ShapeError, as_shape, is_free, makes_mask
from .checks import check_rank, need_rng
from ..regularizers import with_activity_regularizer
from .args import boolean, keras_layer
from .cells import (Cell, GRUCell, LSTMCell, SimpleRNNCell, checked_cell_args,
                    repeated_state)
from .rnn_args import (CELL_ARGS, CELL_HEADS, CUDNN_ARG, IMPLEMENTATION_ARG, LAYER_ARGS,
                       check_cudnn, shared_args)
from .stacked_cells import StackedRNNCells

__all__ = ["Cell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNN", "SimpleRNNCell",
           "StackedRNNCells", "reset_states"]

STATE_KEY = "rnn_state"


def _tupled(tree):
    """`tree` with every list turned into a tuple (a state structure as `scan` carries it)."""
    if isinstance(tree, (list, tuple)):
        return tuple(_tupled(t) for t in tree)
    return tree


def _scan(cell, params, xs, states, extras, mask, return_sequences, zero_output, unroll):
    """Run `cell.step` over the time-major `xs`; returns (last output, outputs or None, states).

    A step whose `mask` entry is False keeps the previous states and outputs the previous
    output (Keras: `repeated_state`), or zeros with `zero_output`.
    """
    batch = jax.tree_util.tree_leaves(states)[0].shape[0]
    # When the output is the repeated state (also for a masked step, unless it outputs
    # zeros), it need not be carried next to the states: one carry fewer per step.
    from_state = cell.output_is_state and not (mask is not None and zero_output) and (
        xs.shape[0] > 0)

    def step(states, inputs):
        x_t, m_t = inputs
        y, new = cell.step(params, x_t, states, extras)
        new = _tupled(new)
        if m_t is not None:
            keep = m_t[:, None]
            y = jnp.where(keep, y, jnp.zeros_like(y) if zero_output else repeated_state(states))
            new = jax.tree_util.tree_map(lambda n, s: jnp.where(keep, n, s), new, states)
        return y, new

    unroll = True if unroll else 1
    if from_state:
        def body(states, inputs):
            y, new = step(states, inputs)
            return new, (y if return_sequences else None)
        states, ys = lax.scan(body, states, (xs, mask), unroll=unroll)
        return repeated_state(states), ys, states

    def body(carry, inputs):
        y, new = step(carry[0], inputs)
        return (new, y), (y if return_sequences else None)

    last = jnp.zeros((batch, cell.output_size), jax.tree_util.tree_leaves(states)[0].dtype)
    (states, last), ys = lax.scan(body, (states, last), (xs, mask), unroll=unroll)
    return last, ys, states


def _check_cell(cell, params, n_in, name):
    """Trace one step of the cell with no data: its outputs must fit its sizes."""
    def one_step(params):
        x = jnp.zeros((1, 2, n_in))
        xs, extras = cell.project(params, x, None, False)
        states = jax.tree_util.tree_map(lambda s: jnp.zeros((2, s)), cell.state_size)
        y, new = cell.step(params, jax.tree_util.tree_map(lambda a: a[0], xs), states, extras)
        return y, _tupled(new)
    try:
        y, new = jax.eval_shape(one_step, params)
    except ShapeError:
        raise
    except Exception as e:
        raise ShapeError(f"the cell {cell.name} fails on a step "
                         f"({type(e).__name__}: {e})", name) from None
    want = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct((2, s), jnp.float32),
                                  cell.state_size)
    shapes = lambda t: (jax.tree_util.tree_structure(t),
                        [tuple(a.shape) for a in jax.tree_util.tree_leaves(t)])
    if tuple(y.shape) != (2, cell.output_size) or shapes(new) != shapes(want):
        raise ShapeError(f"the cell {cell.name} returns an output of shape {tuple(y.shape)} "
                         f"and states {shapes(new)[1]} for a batch of 2; its output_size and "
                         f"state_size promise {(2, cell.output_size)} and {shapes(want)[1]}",
                         name)


def _rnn_layer(cell, *, name, return_sequences, return_state, go_backwards, stateful, unroll,
               zero_output_for_mask, activity_regularizer) -> Layer:
    """The layer behind `RNN`, `SimpleRNN`, `LSTM` and `GRU`, shown as `name`."""
    given = dict(return_sequences=return_sequences, return_state=return_state,
                 go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                 zero_output_for_mask=zero_output_for_mask)
    flags = [arg for arg, value in given.items() if boolean(name, arg, value)]
    if flags:
        name = name[:-1] + ", " + ", ".join(f"{k}=True" for k in flags) + ")"
    zeros = lambda batch, dtype: jax.tree_util.tree_map(lambda s: jnp.zeros((batch, s), dtype),
                                                        cell.state_size)

    def init_s(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=3, what="input (batch, time, features)")
        if is_free(shape[2]):
            raise ShapeError(f"the features axis of the input must be known, received "
                             f"{shape!r}", name)
        if stateful and is_free(shape[0]):
            raise ShapeError(f"stateful=True needs a fixed batch size (the states kept "
                             f"between calls are (batch, n) arrays), received {shape!r}; pass "
                             f"e.g. (32,) + the rest, or InputLayer(shape, batch_size=32)", name)
        params = cell.init(key, shape[2])
        _check_cell(cell, params, shape[2], name)
        out = (Shape((shape[0], shape[1], cell.output_size)) if return_sequences
               else Shape((shape[0], cell.output_size)))
        if return_state:
            out = (out,) + tuple(jax.tree_util.tree_map(lambda s: Shape((shape[0], s)),
                                                        cell.state_size))
        state = {STATE_KEY: zeros(shape[0], jnp.float32)} if stateful else ()
        return out, params, state

    def apply_s(params, state, x, *, rng=None, train=False, mask=None, initial_state=None):
        if getattr(x, "ndim", None) != 3:
            raise ShapeError(f"expected an input of shape (batch, time, features), received "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        if isinstance(params, dict) and "kernel" in params and (
                params["kernel"].shape[0] != x.shape[-1]):
            raise ShapeError(f"expected an input of shape (batch, time, "
                             f"{params['kernel'].shape[0]}), received {Shape(x.shape)!r}", name)
        if train and cell.needs_rng:
            need_rng(name, rng)
        batch, steps = x.shape[0], x.shape[1]
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        params = jax.tree_util.tree_map(lambda p: p.astype(dtype), params)
        if stateful:
            kept = state[STATE_KEY]
            kept_batch = jax.tree_util.tree_leaves(kept)[0].shape[0]
            if batch != kept_batch:
                raise ShapeError(f"a stateful RNN keeps states for a batch of {kept_batch}, "
                                 f"received an input of shape {Shape(x.shape)!r}", name)
            if initial_state is None:
                initial_state = kept
        states = _initial_states(initial_state, batch, dtype)
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.shape != (batch, steps):
                raise ShapeError(f"mask shape {Shape(mask.shape)!r} does not match the input's "
                                 f"(batch, time) = {(batch, steps)}", name)
            if not zero_output_for_mask and cell.output_size != repeated_state(cell.state_size):
                raise ShapeError(f"a masked step repeats a state as its output (as Keras "
                                 f"does), but the cell's output_size {cell.output_size} differs "
                                 f"from that state's size {repeated_state(cell.state_size)}", name)
            mask = jnp.swapaxes(mask.astype(bool), 0, 1)
        xs = jnp.swapaxes(x.astype(dtype), 0, 1)  # time-major
        if go_backwards:
            xs = xs[::-1]
            mask = None if mask is None else mask[::-1]
        xs, extras = cell.project(params, xs, rng, train)
        last, ys, states = _scan(cell, params, xs, states, extras, mask, return_sequences,
                                 zero_output_for_mask, unroll)
        out = jnp.swapaxes(ys, 0, 1) if return_sequences else last
        if stateful:
            state = {STATE_KEY: jax.tree_util.tree_map(lambda n, k: n.astype(k.dtype), states,
                                                       state[STATE_KEY])}
        return ((out,) + tuple(states) if return_state else out), state

    def _initial_states(initial_state, batch, dtype):
        want = zeros(batch, dtype)
        if initial_state is None:
            return want
        given = _tupled(initial_state)
        if not isinstance(given, tuple):
            given = (given,)
        shapes = lambda t: (jax.tree_util.tree_structure(t),
                            [tuple(jnp.shape(a)) for a in jax.tree_util.tree_leaves(t)])
        if shapes(given) != shapes(want):
            raise ShapeError(f"initial_state must be {len(want)} state(s) shaped "
                             f"{shapes(want)[1]} (nested as the cell's state_size "
                             f"{cell.state_size}), received {shapes(given)[1]}", name)
        return jax.tree_util.tree_map(lambda s: jnp.asarray(s).astype(dtype), given)

    def mask_fn(x, mask):
        return mask if return_sequences else None

    common = dict(name=name, penalty=cell.penalty, constrain=cell.constrain,
                  masking=makes_mask(mask_fn, takes=True))
    if stateful:
        layer = Layer(init_s, apply_s, stateful=True, **common)
    else:
        def init(key, input_shape):
            return init_s(key, input_shape)[:2]

        def apply(params, x, *, rng=None, train=False, mask=None, initial_state=None):
            return apply_s(params, (), x, rng=rng, train=train, mask=mask,
                           initial_state=initial_state)[0]

        layer = Layer(init, apply, **common)
    return with_activity_regularizer(layer, activity_regularizer)


@keras_layer
@shared_args(LAYER_ARGS)
def RNN(cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
        unroll=False, zero_output_for_mask=False, activity_regularizer=None) -> Layer:
    """Run a `Cell` (built-in or user-written), or a list of them, over the time axis.

    Args:
      cell: a `Cell`, e.g. ``LSTMCell(32)`` or one you write (see docs/recurrent.md), or a
        list of cells, run as `StackedRNNCells` (Keras' layout: params a tuple per cell,
        states one entry per cell).
      {shared}

    ``apply(params, x, *, rng=None, train=False, mask=None, initial_state=None)``:
    `mask` is a boolean (batch, time) array (True = a real step; a masked step keeps the
    state and repeats the previous output); `initial_state` the states to start from (zeros,
    or a stateful layer's kept states, by default). `rng` is needed with ``train=True`` when
    the cell has dropout.

    Input shape: ``(batch, time, features)``, `time` may be free. Output shape:
    ``(batch, time, output_size)`` with return_sequences, else ``(batch, output_size)``;
    with return_state a tuple of that and one ``(batch, n)`` per state.
    """
    if isinstance(cell, (list, tuple)):
        cell = StackedRNNCells(cell)
    if not isinstance(cell, Cell):
        raise ValueError(f"RNN: cell must be a Cell (e.g. jl.LSTMCell(32)) or a list of Cells, "
                         f"got {cell!r}")
    return _rnn_layer(cell, name=f"RNN({cell.name})", return_sequences=return_sequences,
                      return_state=return_state, go_backwards=go_backwards, stateful=stateful,
                      unroll=unroll, zero_output_for_mask=zero_output_for_mask,
                      activity_regularizer=activity_regularizer)


def reset_states(state):
    """`state` (a whole model's) with the kept states of every stateful RNN in it set to zeros.

    The rest (BatchNormalization statistics, activity losses) is returned unchanged; the
    result has the same structure, shapes and dtypes, so it can go straight back into a
    jitted step. Keras' ``model.reset_states()``, as a pure function.
    """
    def reset(path, leaf):
        hit = any(getattr(p, "key", None) == STATE_KEY for p in path)
        return jnp.zeros_like(leaf) if hit else leaf
    return jax.tree_util.tree_map_with_path(reset, state)


_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "zero_output_for_mask", "activity_regularizer")


def _cell_layer(kind, make_cell, args):
    """``RNN(make_cell(...))`` shown as `kind` with the cell's arguments (``LSTM(32)``),
    from the layer constructor's ``locals()`` `args`: checked with errors naming `kind`,
    the cell's arguments handed to `make_cell` by name, the RNN's to `_rnn_layer`."""
    checked_cell_args(kind, args)
    if "use_cudnn" in args:
        check_cudnn(kind, args["use_cudnn"])
    takes = inspect.signature(make_cell).parameters
    cell = make_cell(**{k: v for k, v in args.items()
                        if k in takes and k != "activity_regularizer"})
    return _rnn_layer(cell, name=kind + cell.name[cell.name.index("("):],
                      **{k: args[k] for k in _RNN_ARGS})


@keras_layer
@shared_args(CELL_HEADS["SimpleRNN"], CELL_ARGS, LAYER_ARGS)
def SimpleRNN(units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
              recurrent_initializer="orthogonal", bias_initializer="zeros",
              kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
              activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
              bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
              return_state=False, go_backwards=False, stateful=False, unroll=False,
              seed=None, zero_output_for_mask=False) -> Layer:
    """A fully connected RNN: ``RNN(SimpleRNNCell(...))`` (see `SimpleRNNCell`, `RNN`).

    Args:
      {shared}

    Params: ``kernel`` (in, units), ``recurrent_kernel`` (units, units), ``bias`` (units,).

    Input shape: ``(batch, time, features)``. Output shape: ``(batch, units)``, or
    ``(batch, time, units)`` with return_sequences; with return_state ``(output, h)``.
    """
    return _cell_layer("SimpleRNN", SimpleRNNCell, locals())


@keras_layer
@shared_args(CELL_HEADS["LSTM"], CELL_ARGS, LAYER_ARGS, IMPLEMENTATION_ARG,
             CUDNN_ARG)
def LSTM(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
         kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
         bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
         recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
         kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
         recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
         go_backwards=False, stateful=False, unroll=False, use_cudnn="auto",
         zero_output_for_mask=False, implementation=2) -> Layer:
    """Long short-term memory: ``RNN(LSTMCell(...))`` (see `LSTMCell`, `RNN`).

    Args:
      {shared}

    Params: ``kernel`` (in, 4*units), ``recurrent_kernel`` (units, 4*units), ``bias``
    (4*units,), gate blocks i, f, c, o.

    Input shape: ``(batch, time, features)``. Output shape: ``(batch, units)``, or
    ``(batch, time, units)`` with return_sequences; with return_state ``(output, h, c)``.
    """
    return _cell_layer("LSTM", LSTMCell, locals())


@keras_layer
@shared_args(CELL_HEADS["GRU"], CELL_ARGS, LAYER_ARGS, IMPLEMENTATION_ARG,
             CUDNN_ARG)
def GRU(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
        kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
        bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
        bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
        recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
        seed=None, return_sequences=False, return_state=False, go_backwards=False,
        stateful=False, unroll=False, reset_after=True, use_cudnn="auto",
        zero_output_for_mask=False, implementation=2) -> Layer:
    """Gated recurrent unit: ``RNN(GRUCell(...))`` (see `GRUCell`, `RNN`).

    Args:
      {shared}

    Params: ``kernel`` (in, 3*units), ``recurrent_kernel`` (units, 3*units), ``bias``
    (2, 3*units) with `reset_after` (default) or (3*units,) without; gate blocks z, r, h.

    Input shape: ``(batch, time, features)``. Output shape: ``(batch, units)``, or
    ``(batch, time, units)`` with return_sequences; with return_state ``(output, h)``.
    """
    return _cell_layer("GRU", GRUCell, locals())
