"""Recurrent layers: the cells `SimpleRNNCell`, `LSTMCell`, `GRUCell`, the generic `RNN(cell)`,
`SimpleRNN`, `LSTM`, `GRU`, `Bidirectional` and `TimeDistributed`.

Keras' names, arguments, defaults, weight names, weight layouts and gate orders, so Keras
weights load unchanged. Every RNN runs one `lax.scan` over time; a cell may `project` the
whole sequence before the loop (the built-in cells compute ``x @ kernel + bias`` for all time
steps in one matmul there where that is faster, see `_hoists`, else inside the loop).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from .. import activations as _activations
from .. import initializers as _initializers
from .weights import weight_hooks
from ..core import MaskRule, makes_mask
from ..core import Layer, Shape, ShapeError, as_layer, as_shape, describe, is_free, stateful_init
from .checks import need_rng, bias_add, check_rank
from ..regularizers import with_activity_regularizer


# --------------------------------------------------------------------------- cells


def _no_penalty(params):
    return 0.0


def _no_constraint(params):
    return params


def _identity_project(params, xs, rng, train):
    return xs, None


@dataclasses.dataclass(frozen=True, eq=False)
class Cell:
    """One step of a recurrent layer; `RNN` runs it over the time axis.

    Attributes:
      init: ``(key, input_dim) -> params``.
      step: ``(params, x_t, states, extras) -> (output, new_states)``. `x_t` is one time
        step of what `project` returned (``(batch, ...)``), `states` a tuple of
        ``(batch, n)`` arrays (one per entry of `state_size`), `extras` what `project`
        returned next to the sequence (None by default).
      state_size: the sizes of the states, e.g. ``(units, units)`` for an LSTM.
      output_size: the size of `output`.
      project: ``(params, xs, rng, train) -> (xs, extras)``, run once on the whole
        time-major sequence ``(time, batch, features)`` before the loop (default: the
        identity and ``extras=None``). The built-in cells compute the input projection
        and draw their dropout masks here.
      name: shown in errors and summaries.
      needs_rng: whether ``train=True`` needs an `rng` (dropout is set).
      penalty, constrain: the weight regularizers / constraints of the cell's params.
      output_is_state: the output is always ``new_states[0]`` (true of the built-in cells);
        lets `RNN` take the last output from the states instead of carrying it as well.
    """

    init: Callable
    step: Callable
    state_size: tuple
    output_size: int
    project: Callable = _identity_project
    name: str = "Cell"
    needs_rng: bool = False
    penalty: Callable = _no_penalty
    constrain: Callable = _no_constraint
    output_is_state: bool = False

    def __post_init__(self):
        sizes = self.state_size
        if isinstance(sizes, int):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not sizes or not all(isinstance(s, int) and s > 0 for s in sizes):
            raise ValueError(f"{self.name}: state_size must be a positive int or a tuple of "
                             f"them, got {self.state_size!r}")
        if not isinstance(self.output_size, int) or self.output_size < 1:
            raise ValueError(f"{self.name}: output_size must be a positive int, got "
                             f"{self.output_size!r}")
        object.__setattr__(self, "state_size", sizes)


def _lookup(module, what, value, name):
    try:
        return module.get(value)
    except ValueError as e:
        raise ValueError(f"{name}: {what}: {e}") from None


def _check_units(kind, units):
    if not isinstance(units, int) or isinstance(units, bool) or units < 1:
        raise ValueError(f"{kind}: units must be a positive int, got {units!r}")


def _check_rate(kind, what, rate):
    if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"{kind}: {what} must be a float in [0, 1), got {rate!r}")
    return float(rate)


def _dropout_masks(key, rate, n, shape, dtype):
    """`n` dropout masks of `shape`: 0 with probability `rate`, else 1 / (1 - rate)."""
    keep = jax.random.bernoulli(key, 1.0 - rate, (n,) + shape)
    return jnp.where(keep, 1.0 / (1.0 - rate), 0.0).astype(dtype)


def _dot(a, kernel):
    """``a @ kernel`` as one rank-2 matmul (leading axes folded: XLA's CPU backend runs a
    rank-3 dot with a much slower loop than a rank-2 one)."""
    if a.ndim == 2:
        return a @ kernel
    return (a.reshape((-1, a.shape[-1])) @ kernel).reshape(a.shape[:-1] + (kernel.shape[-1],))


def _gate_matmul(h, kernel, masks, gates):
    """``h @ kernel``; with `masks` (one, or one per gate block of `kernel`) ``h`` is
    multiplied by the gate's mask before its block (Keras' per-gate dropout)."""
    if masks is None:
        return _dot(h, kernel)
    if masks.shape[0] == 1:
        return _dot(h * masks[0], kernel)
    blocks = jnp.split(kernel, gates, axis=-1)
    return jnp.concatenate([_dot(h * m, k) for m, k in zip(masks, blocks)], axis=-1)


def _hoists(input_dim, width):
    """Whether the input projection ``x @ kernel + bias`` runs once for all time steps before
    the loop (True) or inside it, one step at a time (False). A static rule, from what was
    measured (docs/bench.md): on XLA:CPU a loop that slices the pre-projected (time, batch,
    width) sequence is several times slower than one that projects its (batch, input_dim)
    step when the projection is wider than the input (e.g. 10 features -> 4 x 64 gates), so
    CPU hoists only when ``input_dim >= width``; accelerators always hoist (one large matmul).
    Both forms compute the same numbers in the same order."""
    return input_dim >= width or jax.default_backend() != "cpu"


def _gated_cell(kind, units, gates, use_bias, kernel_initializer, recurrent_initializer,
                bias_initializer, bias_init, regularizers, dropout, recurrent_dropout, name,
                step, input_bias):
    """A `Cell` with Keras' ``kernel`` (in, gates*units), ``recurrent_kernel``
    (units, gates*units) and ``bias``.

    `step(params, z_t, states, rec_masks)` receives the projected input ``z_t = x_t @ kernel
    + input bias`` (with input dropout). `project` computes it for all steps at once when
    `_hoists` says so, and then the extras are the recurrent dropout masks (or None);
    otherwise it returns the sequence as it is and extras ``{"in": input masks, "rec":
    recurrent masks}``, and the step projects its own time step."""
    _check_units(kind, units)
    dropout = _check_rate(kind, "dropout", dropout)
    recurrent_dropout = _check_rate(kind, "recurrent_dropout", recurrent_dropout)
    kinit = _lookup(_initializers, "kernel_initializer", kernel_initializer, kind)
    rinit = _lookup(_initializers, "recurrent_initializer", recurrent_initializer, kind)
    binit = _lookup(_initializers, "bias_initializer", bias_initializer, kind)
    kreg, rreg, breg, kcon, rcon, bcon = regularizers
    penalty, constrain = weight_hooks(name, kernel=(kreg, kcon), recurrent_kernel=(rreg, rcon),
                                      bias=(breg, bcon))
    # Keras draws one input mask shared by the gates, or one per gate (its
    # "implementation 1") as soon as recurrent_dropout is set.
    n_masks = gates if recurrent_dropout > 0 else 1

    def init(key, input_dim):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {"kernel": kinit(k1, (input_dim, gates * units), jnp.float32),
                  "recurrent_kernel": rinit(k2, (units, gates * units), jnp.float32)}
        if use_bias:
            params["bias"] = bias_init(binit, k3)
        return params

    def input_projection(params, xs, in_masks):
        proj = _gate_matmul(xs, params["kernel"], in_masks, gates)
        bias = input_bias(params)
        return proj if bias is None else bias_add(proj, bias)

    def project(params, xs, rng, train):
        in_masks = rec_masks = None
        if train and (dropout > 0 or recurrent_dropout > 0):
            k_in, k_rec = jax.random.split(rng)
            batch = xs.shape[1]
            if dropout > 0:
                in_masks = _dropout_masks(k_in, dropout, n_masks, (batch, xs.shape[-1]),
                                          xs.dtype)
            if recurrent_dropout > 0:
                rec_masks = _dropout_masks(k_rec, recurrent_dropout, n_masks, (batch, units),
                                           xs.dtype)
        if not _hoists(xs.shape[-1], gates * units):
            return xs, {"in": in_masks, "rec": rec_masks}
        masks = None if in_masks is None else in_masks[:, None]   # broadcast over time
        return input_projection(params, xs, masks), rec_masks

    def full_step(params, x_t, states, extras):
        if isinstance(extras, dict):                 # the projection runs in the loop
            x_t, extras = input_projection(params, x_t, extras["in"]), extras["rec"]
        return step(params, x_t, states, extras)

    state_size = (units, units) if kind == "LSTMCell" else (units,)
    return Cell(init, full_step, state_size, units, project=project, name=name,
                needs_rng=dropout > 0 or recurrent_dropout > 0, penalty=penalty,
                constrain=constrain, output_is_state=True)


def _cell_name(kind, units, activation, default_activation, dropout, recurrent_dropout, **more):
    extra = {}
    if activation != default_activation:
        extra["activation"] = activation
    if dropout:
        extra["dropout"] = dropout
    if recurrent_dropout:
        extra["recurrent_dropout"] = recurrent_dropout
    extra.update(more)
    return describe(kind, units, **extra)


def SimpleRNNCell(units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                  recurrent_initializer="orthogonal", bias_initializer="zeros",
                  kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                  kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                  dropout=0.0, recurrent_dropout=0.0, seed=None) -> Cell:
    """The fully connected recurrent cell: ``h' = activation(x @ kernel + h @ recurrent_kernel
    + bias)``; the output is ``h'``.

    Params: ``kernel`` (in, units), ``recurrent_kernel`` (units, units), ``bias`` (units,).
    `seed` is accepted for Keras compatibility; randomness comes from the `rng` key.
    Returns a `Cell` with ``state_size=(units,)``.
    """
    name = _cell_name("SimpleRNNCell", units, activation, "tanh", dropout, recurrent_dropout)
    act = _lookup(_activations, "activation", activation, "SimpleRNNCell")

    def step(params, x_t, states, rec_masks):
        h = x_t + _gate_matmul(states[0], params["recurrent_kernel"], rec_masks, 1)
        h = act(h)
        return h, (h,)

    return _gated_cell(
        "SimpleRNNCell", units, 1, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, lambda binit, k: binit(k, (units,), jnp.float32),
        (kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
         recurrent_constraint, bias_constraint), dropout, recurrent_dropout, name, step,
        lambda params: params.get("bias"))


def LSTMCell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
             kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
             bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
             recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
             recurrent_constraint=None, bias_constraint=None, dropout=0.0,
             recurrent_dropout=0.0, seed=None) -> Cell:
    """The long short-term memory cell (Hochreiter & Schmidhuber, 1997), as Keras computes it.

    With ``z = x @ kernel + h @ recurrent_kernel + bias`` split into the gate blocks
    i, f, c~, o (Keras' order) and ``s = recurrent_activation``:
    ``c' = s(f) * c + s(i) * activation(c~)``, ``h' = s(o) * activation(c')``; the output is
    ``h'``. `unit_forget_bias` initialises the f block of the bias to 1.

    Params: ``kernel`` (in, 4*units), ``recurrent_kernel`` (units, 4*units), ``bias``
    (4*units,). Returns a `Cell` with ``state_size=(units, units)`` (h, c).
    """
    name = _cell_name("LSTMCell", units, activation, "tanh", dropout, recurrent_dropout)
    act = _lookup(_activations, "activation", activation, "LSTMCell")
    rec_act = _lookup(_activations, "recurrent_activation", recurrent_activation, "LSTMCell")

    def bias_init(binit, key):
        if unit_forget_bias:
            k1, k2 = jax.random.split(key)
            return jnp.concatenate([binit(k1, (units,), jnp.float32), jnp.ones((units,)),
                                    binit(k2, (2 * units,), jnp.float32)])
        return binit(key, (4 * units,), jnp.float32)

    def step(params, x_t, states, rec_masks):
        h, c = states
        z = x_t + _gate_matmul(h, params["recurrent_kernel"], rec_masks, 4)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = rec_act(f) * c + rec_act(i) * act(g)
        h = rec_act(o) * act(c)
        return h, (h, c)

    return _gated_cell(
        "LSTMCell", units, 4, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, bias_init,
        (kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
         recurrent_constraint, bias_constraint), dropout, recurrent_dropout, name, step,
        lambda params: params.get("bias"))


def GRUCell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
            kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
            bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
            bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
            bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, reset_after=True,
            seed=None) -> Cell:
    """The gated recurrent unit cell (Cho et al., 2014), as Keras computes it.

    Gate blocks z (update), r (reset), h~ (candidate); ``s = recurrent_activation``,
    ``z = s(x W_z + h R_z + b_z)``, ``r = s(x W_r + h R_r + b_r)``,
    ``h' = z * h + (1 - z) * h~``. With `reset_after` (default, the cuDNN variant)
    ``h~ = activation(x W_h + b0_h + r * (h R_h + b1_h))`` and ``bias`` is (2, 3*units): row 0
    the input bias, row 1 the recurrent bias. Without it
    ``h~ = activation(x W_h + b_h + (r * h) R_h)`` and ``bias`` is (3*units,).

    Params: ``kernel`` (in, 3*units), ``recurrent_kernel`` (units, 3*units), ``bias``.
    Returns a `Cell` with ``state_size=(units,)``.
    """
    if not isinstance(reset_after, bool):
        raise ValueError(f"GRUCell: reset_after must be True or False, got {reset_after!r}")
    name = _cell_name("GRUCell", units, activation, "tanh", dropout, recurrent_dropout,
                      **({} if reset_after else {"reset_after": False}))
    act = _lookup(_activations, "activation", activation, "GRUCell")
    rec_act = _lookup(_activations, "recurrent_activation", recurrent_activation, "GRUCell")
    shape = (2, 3 * units) if reset_after else (3 * units,)

    def input_bias(params):
        bias = params.get("bias")
        return bias[0] if bias is not None and reset_after else bias

    def step(params, x_t, states, rec_masks):
        h = states[0]
        kernel = params["recurrent_kernel"]
        x_z, x_r, x_h = jnp.split(x_t, 3, axis=-1)
        if reset_after:
            rec = _gate_matmul(h, kernel, rec_masks, 3)
            if "bias" in params:
                rec = bias_add(rec, params["bias"][1])
            r_z, r_r, r_h = jnp.split(rec, 3, axis=-1)
            z, r = rec_act(x_z + r_z), rec_act(x_r + r_r)
            candidate = act(x_h + r * r_h)
        else:
            zr_masks = h_mask = None
            if rec_masks is not None:
                zr_masks = rec_masks[:2] if rec_masks.shape[0] == 3 else rec_masks
                h_mask = rec_masks[2] if rec_masks.shape[0] == 3 else rec_masks[0]
            rec = _gate_matmul(h, kernel[:, :2 * units], zr_masks, 2)
            r_z, r_r = jnp.split(rec, 2, axis=-1)
            z, r = rec_act(x_z + r_z), rec_act(x_r + r_r)
            h_in = h if h_mask is None else h * h_mask
            candidate = act(x_h + (r * h_in) @ kernel[:, 2 * units:])
        h = z * h + (1 - z) * candidate
        return h, (h,)

    return _gated_cell(
        "GRUCell", units, 3, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, lambda binit, k: binit(k, shape, jnp.float32),
        (kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
         recurrent_constraint, bias_constraint), dropout, recurrent_dropout, name, step,
        input_bias)


# --------------------------------------------------------------------------- RNN


def _scan(cell, params, xs, states, extras, mask, return_sequences, zero_output, unroll):
    """Run `cell.step` over the time-major `xs`; returns (last output, outputs or None, states).

    A step whose `mask` entry is False keeps the previous states and outputs the previous
    output (Keras: ``states[0]``), or zeros with `zero_output`.
    """
    batch = states[0].shape[0]
    # When the output is states[0] (also for a masked step, unless it outputs zeros), it
    # need not be carried next to the states: one carry fewer per step, forward and back.
    from_state = cell.output_is_state and not (mask is not None and zero_output) and (
        xs.shape[0] > 0)

    def step(states, inputs):
        x_t, m_t = inputs
        y, new = cell.step(params, x_t, states, extras)
        new = tuple(new)
        if m_t is not None:
            keep = m_t[:, None]
            y = jnp.where(keep, y, jnp.zeros_like(y) if zero_output else states[0])
            new = tuple(jnp.where(keep, n, s) for n, s in zip(new, states))
        return y, new

    unroll = True if unroll else 1
    if from_state:
        def body(states, inputs):
            y, new = step(states, inputs)
            return new, (y if return_sequences else None)
        states, ys = lax.scan(body, tuple(states), (xs, mask), unroll=unroll)
        return states[0], ys, states

    def body(carry, inputs):
        y, new = step(carry[0], inputs)
        return (new, y), (y if return_sequences else None)

    last = jnp.zeros((batch, cell.output_size), states[0].dtype)
    (states, last), ys = lax.scan(body, (tuple(states), last), (xs, mask), unroll=unroll)
    return last, ys, states


def RNN(cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
        unroll=False, zero_output_for_mask=False, activity_regularizer=None, *,
        _kind="RNN", _name=None) -> Layer:
    """Run a `Cell` (built-in or user-written) over the time axis of its input.

    Args:
      cell: a `Cell`, e.g. ``LSTMCell(32)`` or one you write (see docs/recurrent.md).
      return_sequences: return the output of every step, not only the last.
      return_state: also return the final states: ``(output, *states)``.
      go_backwards: process the sequence in reverse; a returned sequence is in
        processing (reversed) order, as in Keras.
      stateful: not supported (pass the carried states as ``initial_state=``).
      unroll: unroll the loop (`lax.scan` with ``unroll=True``).
      zero_output_for_mask: masked steps output zeros instead of the previous output.
      activity_regularizer: Keras' activity regularizer (makes the layer stateful).

    ``apply(params, x, *, rng=None, train=False, mask=None, initial_state=None)``:
    `mask` is a boolean (batch, time) array (True = a real step; a masked step keeps the
    state and repeats the previous output); `initial_state` a tuple of (batch, n) arrays
    (zeros by default). `rng` is needed with ``train=True`` when the cell has dropout.

    Input shape: ``(batch, time, features)``, `time` may be free. Output shape:
    ``(batch, time, output_size)`` with return_sequences, else ``(batch, output_size)``;
    with return_state a tuple of that and one ``(batch, n)`` per state.
    """
    if not isinstance(cell, Cell):
        raise ValueError(f"{_kind}: cell must be a Cell (e.g. jl.LSTMCell(32)), got {cell!r}")
    if stateful:
        raise ValueError(f"{_kind}: stateful=True is not supported by pure layers; carry the "
                         f"final states yourself (return_state=True) and pass them back with "
                         f"apply(..., initial_state=states)")
    flags = {k: v for k, v in dict(return_sequences=return_sequences,
                                   return_state=return_state, go_backwards=go_backwards,
                                   unroll=unroll).items() if v}
    name = _name or f"{_kind}({cell.name})"
    if flags:
        name = name[:-1] + ", " + ", ".join(f"{k}=True" for k in flags) + ")"
    n_states = len(cell.state_size)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=3, what="input (batch, time, features)")
        if is_free(shape[2]):
            raise ShapeError(f"the features axis of the input must be known, received "
                             f"{shape!r}", name)
        params = cell.init(key, shape[2])
        _check_cell(params, shape[2])
        out = (Shape((shape[0], shape[1], cell.output_size)) if return_sequences
               else Shape((shape[0], cell.output_size)))
        if return_state:
            out = (out,) + tuple(Shape((shape[0], s)) for s in cell.state_size)
        return out, params

    def _check_cell(params, n_in):
        """Trace one step of the cell with no data: its outputs must fit its sizes."""
        def one_step(params):
            x = jnp.zeros((1, 2, n_in))
            xs, extras = cell.project(params, x, None, False)
            states = tuple(jnp.zeros((2, s)) for s in cell.state_size)
            return cell.step(params, jax.tree_util.tree_map(lambda a: a[0], xs), states, extras)
        try:
            y, new = jax.eval_shape(one_step, params)
        except ShapeError:
            raise
        except Exception as e:
            raise ShapeError(f"the cell {cell.name} fails on a step "
                             f"({type(e).__name__}: {e})", name) from None
        want = [(2, s) for s in cell.state_size]
        got = [tuple(s.shape) for s in jax.tree_util.tree_leaves(new)]
        if tuple(y.shape) != (2, cell.output_size) or got != want:
            raise ShapeError(f"the cell {cell.name} returns an output of shape {tuple(y.shape)} "
                             f"and states {got} for a batch of 2; its output_size and "
                             f"state_size promise {(2, cell.output_size)} and {want}", name)

    def apply(params, x, *, rng=None, train=False, mask=None, initial_state=None):
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
        states = _initial_states(initial_state, batch, dtype)
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.shape != (batch, steps):
                raise ShapeError(f"mask shape {Shape(mask.shape)!r} does not match the input's "
                                 f"(batch, time) = {(batch, steps)}", name)
            if cell.output_size != cell.state_size[0]:
                raise ShapeError(f"a masked step repeats states[0] as its output (as Keras "
                                 f"does), but the cell's output_size {cell.output_size} differs "
                                 f"from state_size[0] {cell.state_size[0]}", name)
            mask = jnp.swapaxes(mask.astype(bool), 0, 1)
        xs = jnp.swapaxes(x.astype(dtype), 0, 1)  # time-major
        if go_backwards:
            xs = xs[::-1]
            mask = None if mask is None else mask[::-1]
        xs, extras = cell.project(params, xs, rng, train)
        last, ys, states = _scan(cell, params, xs, states, extras, mask, return_sequences,
                                 zero_output_for_mask, unroll)
        out = jnp.swapaxes(ys, 0, 1) if return_sequences else last
        return (out,) + tuple(states) if return_state else out

    def _initial_states(initial_state, batch, dtype):
        if initial_state is None:
            return tuple(jnp.zeros((batch, s), dtype) for s in cell.state_size)
        if not isinstance(initial_state, (tuple, list)):
            initial_state = (initial_state,)
        want = [(batch, s) for s in cell.state_size]
        got = [tuple(getattr(s, "shape", ())) for s in initial_state]
        if got != want:
            raise ShapeError(f"initial_state must be {n_states} array(s) of shapes {want}, "
                             f"received {got}", name)
        return tuple(jnp.asarray(s).astype(dtype) for s in initial_state)

    def mask_fn(x, mask):
        return mask if return_sequences else None

    layer = Layer(init, apply, name=name, penalty=cell.penalty, constrain=cell.constrain,
                  masking=makes_mask(mask_fn, takes=True))
    return with_activity_regularizer(layer, activity_regularizer)


def _layer_args(return_sequences, return_state, go_backwards, stateful, unroll,
                activity_regularizer, use_cudnn):
    if use_cudnn not in ("auto", True, False):
        raise ValueError(f"use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
    return dict(return_sequences=return_sequences, return_state=return_state,
                go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                activity_regularizer=activity_regularizer)


def SimpleRNN(units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
              recurrent_initializer="orthogonal", bias_initializer="zeros",
              kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
              activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
              bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
              return_state=False, go_backwards=False, stateful=False, unroll=False,
              seed=None) -> Layer:
    """A fully connected RNN: ``RNN(SimpleRNNCell(...))`` (see `SimpleRNNCell`, `RNN`).

    Params: ``kernel`` (in, units), ``recurrent_kernel`` (units, units), ``bias`` (units,).
    Input shape: ``(batch, time, features)``. Output shape: ``(batch, units)``, or
    ``(batch, time, units)`` with return_sequences; with return_state ``(output, h)``.
    """
    _check_units("SimpleRNN", units)
    cell = SimpleRNNCell(units, activation, use_bias, kernel_initializer, recurrent_initializer,
                         bias_initializer, kernel_regularizer, recurrent_regularizer,
                         bias_regularizer, kernel_constraint, recurrent_constraint,
                         bias_constraint, dropout, recurrent_dropout, seed)
    return RNN(cell, **_layer_args(return_sequences, return_state, go_backwards, stateful,
                                   unroll, activity_regularizer, "auto"),
               _kind="SimpleRNN", _name="SimpleRNN" + cell.name[len("SimpleRNNCell"):])


def LSTM(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
         kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
         bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
         recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
         kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
         recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
         go_backwards=False, stateful=False, unroll=False, use_cudnn="auto") -> Layer:
    """Long short-term memory: ``RNN(LSTMCell(...))`` (see `LSTMCell`, `RNN`).

    Params: ``kernel`` (in, 4*units), ``recurrent_kernel`` (units, 4*units), ``bias``
    (4*units,), gate blocks i, f, c, o. `use_cudnn` and `seed` are accepted for Keras
    compatibility and ignored (XLA compiles the loop; randomness comes from `rng`).

    Input shape: ``(batch, time, features)``. Output shape: ``(batch, units)``, or
    ``(batch, time, units)`` with return_sequences; with return_state ``(output, h, c)``.
    """
    _check_units("LSTM", units)
    cell = LSTMCell(units, activation, recurrent_activation, use_bias, kernel_initializer,
                    recurrent_initializer, bias_initializer, unit_forget_bias,
                    kernel_regularizer, recurrent_regularizer, bias_regularizer,
                    kernel_constraint, recurrent_constraint, bias_constraint, dropout,
                    recurrent_dropout, seed)
    return RNN(cell, **_layer_args(return_sequences, return_state, go_backwards, stateful,
                                   unroll, activity_regularizer, use_cudnn),
               _kind="LSTM", _name="LSTM" + cell.name[len("LSTMCell"):])


def GRU(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
        kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
        bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
        bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
        recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
        seed=None, return_sequences=False, return_state=False, go_backwards=False,
        stateful=False, unroll=False, reset_after=True, use_cudnn="auto") -> Layer:
    """Gated recurrent unit: ``RNN(GRUCell(...))`` (see `GRUCell`, `RNN`).

    Params: ``kernel`` (in, 3*units), ``recurrent_kernel`` (units, 3*units), ``bias``
    (2, 3*units) with `reset_after` (default) or (3*units,) without; gate blocks z, r, h.

    Input shape: ``(batch, time, features)``. Output shape: ``(batch, units)``, or
    ``(batch, time, units)`` with return_sequences; with return_state ``(output, h)``.
    """
    _check_units("GRU", units)
    cell = GRUCell(units, activation, recurrent_activation, use_bias, kernel_initializer,
                   recurrent_initializer, bias_initializer, kernel_regularizer,
                   recurrent_regularizer, bias_regularizer, kernel_constraint,
                   recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
                   reset_after, seed)
    return RNN(cell, **_layer_args(return_sequences, return_state, go_backwards, stateful,
                                   unroll, activity_regularizer, use_cudnn),
               _kind="GRU", _name="GRU" + cell.name[len("GRUCell"):])


# --------------------------------------------------------------------------- wrappers


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
      weights: not supported (copy arrays into the params instead).
      backward_layer: an optional separate layer for the backward direction, built with
        ``go_backwards=True`` as Keras requires; it gets the sequence as is.

    Params: ``(forward_params, backward_params)``. ``apply`` takes ``mask=`` and
    ``initial_state=`` (forward states then backward states). With return_state the result
    is ``(merged, *forward_states, *backward_states)``.

    Input shape: ``(batch, time, features)``. Output shape: the layer's, with the last axis
    doubled for ``"concat"``.
    """
    if merge_mode not in ("concat", "sum", "mul", "ave", None):
        raise ValueError(f"Bidirectional: merge_mode must be one of 'concat', 'sum', 'mul', "
                         f"'ave' or None, got {merge_mode!r}")
    if weights is not None:
        raise ValueError("Bidirectional: weights= is not supported; set the params instead")
    fwd = as_layer(layer)
    bwd = fwd if backward_layer is None else as_layer(backward_layer)
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


def TimeDistributed(layer) -> Layer:
    """Apply `layer` to every time step (axis 1) independently, with the same params.

    The batch and time axes are folded into one for the call, so any layer works
    (Dense, Conv2D on frames, a whole `serial`); a stateful layer (BatchNormalization)
    sees the folded batch. A mask passes through unchanged; when the wrapped layer takes
    one (an RNN, BatchNormalization) and the mask covers every axis of the input but the
    last (e.g. (batch, time, steps) for TimeDistributed(LSTM) over (batch, time, steps,
    features)), it is folded the same way and handed to it, as Keras hands each step its
    slice of the mask.

    Params: the layer's. Input shape: ``(batch, time, *inner)``. Output shape:
    ``(batch, time, *inner_output)``.
    """
    inner = as_layer(layer)
    name = f"TimeDistributed({inner.name})"

    def init_s(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=3)
        out, params, state = stateful_init(inner, key, Shape((None,) + shape[2:]))
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
