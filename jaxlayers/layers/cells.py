"""Recurrent cells: the `Cell` record, `SimpleRNNCell`, `LSTMCell` and `GRUCell` (stacked
cells: stacked_cells.py). `RNN` (jaxlayers/layers/recurrent.py) runs a cell over time.

Keras' names, arguments, defaults, weight names, weight layouts and gate orders, so Keras
weights load unchanged. The built-in cells may compute ``x @ kernel + bias`` for every time
step in one matmul before the loop (see `_hoists`), else inside it.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from .. import activations as _activations
from .. import initializers as _initializers
from ..core import describe
from .args import keras_layer
from .checks import bias_add
from .rnn_args import (CELL_ARGS, CELL_HEADS, IMPLEMENTATION_ARG, check_cell_arguments,
                       lookup, refuse_cell_activity_regularizer, shared_args)
from .weights import weight_hooks


def _no_penalty(params):
    return 0.0


def _no_constraint(params):
    return params


def identity_project(params, xs, rng, train):
    return xs, None


def _normalized_sizes(sizes, name):
    """`sizes` as a tuple whose entries are positive ints or (nested) tuples of them."""
    if isinstance(sizes, int) and not isinstance(sizes, bool):
        sizes = (sizes,)
    if not isinstance(sizes, (tuple, list)) or not sizes:
        raise ValueError(f"{name}: state_size must be a positive int or a tuple of them, "
                         f"got {sizes!r}")
    out = []
    for s in sizes:
        if isinstance(s, (tuple, list)):
            out.append(_normalized_sizes(s, name))
        elif isinstance(s, int) and not isinstance(s, bool) and s > 0:
            out.append(s)
        else:
            raise ValueError(f"{name}: state_size must be a positive int or a tuple of them, "
                             f"got {sizes!r}")
    return tuple(out)


def repeated_state(states):
    """The state a masked step repeats as its output, as Keras picks it: ``states[0]``, or
    for stacked cells (nested states) the first state of the last cell. Works on sizes too."""
    first = states[0]
    if isinstance(first, tuple):
        last = states[-1]
        return last[0] if isinstance(last, tuple) else last
    return first


@dataclasses.dataclass(frozen=True, eq=False)
class Cell:
    """One step of a recurrent layer; `RNN` runs it over the time axis.

    Attributes:
      init: ``(key, input_dim) -> params``.
      step: ``(params, x_t, states, extras) -> (output, new_states)``. `x_t` is one time
        step of what `project` returned (``(batch, ...)``), `states` a tuple of
        ``(batch, n)`` arrays shaped by `state_size` (nested for `StackedRNNCells`),
        `extras` what `project` returned next to the sequence (None by default).
      state_size: the sizes of the states, e.g. ``(units, units)`` for an LSTM; an entry
        may itself be a tuple (stacked cells: one entry per cell).
      output_size: the size of `output`.
      project: ``(params, xs, rng, train) -> (xs, extras)``, run once on the whole
        time-major sequence ``(time, batch, features)`` before the loop (default: the
        identity and ``extras=None``). The built-in cells compute the input projection
        and draw their dropout masks here.
      name: shown in errors and summaries.
      needs_rng: whether ``train=True`` needs an `rng` (dropout is set).
      penalty, constrain: the weight regularizers / constraints of the cell's params.
      output_is_state: the output is always `repeated_state(new_states)` (true of the
        built-in cells); lets `RNN` take the last output from the states.
      step_extras: ``(params, batch, input_dim, dtype, rng, train) -> extras`` for a `step`
        fed raw (unprojected) inputs, one step at a time; lets the cell follow another in
        `StackedRNNCells`, where no whole sequence exists to `project`. None for a cell
        whose `project` is the identity (its extras are None).
      label: the `name=` a user gave the cell (Keras' sublayer name), or "".
    """

    init: Callable
    step: Callable
    state_size: tuple
    output_size: int
    project: Callable = identity_project
    name: str = "Cell"
    needs_rng: bool = False
    penalty: Callable = _no_penalty
    constrain: Callable = _no_constraint
    output_is_state: bool = False
    step_extras: Callable | None = None
    label: str = ""

    def __post_init__(self):
        object.__setattr__(self, "state_size", _normalized_sizes(self.state_size, self.name))
        if (not isinstance(self.output_size, int) or isinstance(self.output_size, bool)
                or self.output_size < 1):
            raise ValueError(f"{self.name}: output_size must be a positive int, got "
                             f"{self.output_size!r}")


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


@dataclasses.dataclass(frozen=True)
class GatedCellSpec:
    """What sets a built-in cell apart, for `_gated_cell`.

    Attributes:
      kind: the cell's type name (``LSTMCell``), for errors.
      gates: the number of gate blocks in ``kernel`` / ``recurrent_kernel``.
      n_states: the number of ``(batch, units)`` states (2 for an LSTM's h and c).
      step: ``(params, z_t, states, rec_masks) -> (output, new_states)``, given the
        projected input ``z_t = x_t @ kernel + input bias``.
      bias_init: ``(bias_initializer, key) -> bias``.
      input_bias: ``params -> `` the bias added to the input projection, or None.
    """

    kind: str
    gates: int
    n_states: int
    step: Callable
    bias_init: Callable
    input_bias: Callable


def _gated_cell(spec: GatedCellSpec, *, units, use_bias, initializers, weight_rules, dropout,
                recurrent_dropout, implementation, name) -> Cell:
    """A `Cell` with Keras' ``kernel`` (in, gates*units), ``recurrent_kernel``
    (units, gates*units) and ``bias`` (its shape set by ``spec.bias_init``).

    `initializers` is ``(kernel, recurrent, bias)``; `weight_rules` maps each weight name
    to ``(regularizer, constraint)``. `project` computes the input projection for all steps
    at once when `_hoists` says so, and then the extras are the recurrent dropout masks (or
    None); otherwise it returns the sequence as it is and extras ``{"in": input masks,
    "rec": recurrent masks}``, and the step projects its own time step."""
    kind, gates = spec.kind, spec.gates
    kinit, rinit, binit = (lookup(_initializers, what, value, kind) for what, value in zip(
        ("kernel_initializer", "recurrent_initializer", "bias_initializer"), initializers))
    penalty, constrain = weight_hooks(name, **weight_rules)
    # Keras draws one input mask shared by the gates (implementation 2), or one per gate
    # (implementation 1, forced as soon as recurrent_dropout is set).
    n_masks = gates if recurrent_dropout > 0 or implementation == 1 else 1

    def init(key, input_dim):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {"kernel": kinit(k1, (input_dim, gates * units), jnp.float32),
                  "recurrent_kernel": rinit(k2, (units, gates * units), jnp.float32)}
        if use_bias:
            params["bias"] = spec.bias_init(binit, k3)
        return params

    def input_projection(params, xs, in_masks):
        proj = _gate_matmul(xs, params["kernel"], in_masks, gates)
        bias = spec.input_bias(params)
        return proj if bias is None else bias_add(proj, bias)

    def step_extras(params, batch, input_dim, dtype, rng, train):
        in_masks = rec_masks = None
        if train and (dropout > 0 or recurrent_dropout > 0):
            k_in, k_rec = jax.random.split(rng)
            if dropout > 0:
                in_masks = _dropout_masks(k_in, dropout, n_masks, (batch, input_dim), dtype)
            if recurrent_dropout > 0:
                rec_masks = _dropout_masks(k_rec, recurrent_dropout, n_masks, (batch, units),
                                           dtype)
        return {"in": in_masks, "rec": rec_masks}

    def project(params, xs, rng, train):
        extras = step_extras(params, xs.shape[1], xs.shape[-1], xs.dtype, rng, train)
        if not _hoists(xs.shape[-1], gates * units):
            return xs, extras
        in_masks = extras["in"]
        masks = None if in_masks is None else in_masks[:, None]   # broadcast over time
        return input_projection(params, xs, masks), extras["rec"]

    def full_step(params, x_t, states, extras):
        if isinstance(extras, dict):                 # the projection runs in the loop
            x_t, extras = input_projection(params, x_t, extras["in"]), extras["rec"]
        return spec.step(params, x_t, states, extras)

    return Cell(init, full_step, (units,) * spec.n_states, units, project=project, name=name,
                needs_rng=dropout > 0 or recurrent_dropout > 0, penalty=penalty,
                constrain=constrain, output_is_state=True, step_extras=step_extras)


def _cell_name(kind, units, activation, dropout, recurrent_dropout, **more):
    extra = {}
    if activation != "tanh":
        extra["activation"] = activation
    if dropout:
        extra["dropout"] = dropout
    if recurrent_dropout:
        extra["recurrent_dropout"] = recurrent_dropout
    extra.update(more)
    return describe(kind, units, **extra)


def _keras_cell(spec: GatedCellSpec, args: dict, **name_more) -> Cell:
    """`_gated_cell` built from a built-in cell constructor's Keras arguments, read by name
    from `args` (the constructor's ``locals()``): units, activation, use_bias, dropout,
    recurrent_dropout, implementation (2 when absent), and the initializer, regularizer and
    constraint of kernel, recurrent (``recurrent_kernel``) and bias. `name_more`: further
    arguments shown in the cell's name."""
    weights = (("kernel", "kernel"), ("recurrent_kernel", "recurrent"), ("bias", "bias"))
    return _gated_cell(
        spec, units=args["units"], use_bias=args["use_bias"],
        initializers=tuple(args[f"{arg}_initializer"] for _, arg in weights),
        weight_rules={w: (args[f"{arg}_regularizer"], args[f"{arg}_constraint"])
                      for w, arg in weights},
        dropout=args["dropout"], recurrent_dropout=args["recurrent_dropout"],
        implementation=args.get("implementation", 2),
        name=_cell_name(spec.kind, args["units"], args["activation"], args["dropout"],
                        args["recurrent_dropout"], **name_more))


def checked_cell_args(kind, args) -> dict:
    """A built-in cell's Keras arguments, read by name from `args` (the ``locals()`` of the
    cell's constructor or of the RNN layer built on one), checked with errors naming
    `kind`: a copy with units, use_bias, dropout and recurrent_dropout normalised (seed,
    implementation, unit_forget_bias and reset_after are checked too)."""
    flags = {f: args[f] for f in ("unit_forget_bias", "reset_after") if f in args}
    checked = dict(args)
    (checked["units"], checked["use_bias"], checked["dropout"],
     checked["recurrent_dropout"]) = check_cell_arguments(
        kind, args["units"], args["use_bias"], args["dropout"], args["recurrent_dropout"],
        args["seed"], args.get("implementation", 2), **flags)
    return checked


def _cell_args(kind, args):
    """``(args, activation, recurrent_activation)`` for a built-in cell constructor:
    `checked_cell_args`, activity_regularizer refused, the activations looked up (the
    recurrent one None for a cell without it)."""
    args = checked_cell_args(kind, args)
    refuse_cell_activity_regularizer(kind, args["activity_regularizer"])
    act = lookup(_activations, "activation", args["activation"], kind)
    rec_act = None
    if "recurrent_activation" in args:
        rec_act = lookup(_activations, "recurrent_activation", args["recurrent_activation"],
                         kind)
    return args, act, rec_act


def _plain_bias(params):
    return params.get("bias")


@keras_layer
@shared_args(CELL_HEADS["SimpleRNN"], CELL_ARGS)
def SimpleRNNCell(units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                  recurrent_initializer="orthogonal", bias_initializer="zeros",
                  kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                  kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                  dropout=0.0, recurrent_dropout=0.0, seed=None, *,
                  activity_regularizer=None) -> Cell:
    """The fully connected recurrent cell: ``h' = activation(x @ kernel + h @ recurrent_kernel
    + bias)``; the output is ``h'``.

    Args:
      {shared}
      activity_regularizer: None only (a cell runs inside the RNN's loop; give the
        regularizer to the RNN layer).

    Params: ``kernel`` (in, units), ``recurrent_kernel`` (units, units), ``bias`` (units,).
    Returns a `Cell` with ``state_size=(units,)``, for `RNN`.

    Input shape: one time step ``(batch, features)``. Output shape: ``(batch, units)``.
    """
    args, act, _ = _cell_args("SimpleRNNCell", locals())
    units = args["units"]

    def step(params, x_t, states, rec_masks):
        h = act(x_t + _gate_matmul(states[0], params["recurrent_kernel"], rec_masks, 1))
        return h, (h,)

    spec = GatedCellSpec("SimpleRNNCell", gates=1, n_states=1, step=step,
                         bias_init=lambda binit, k: binit(k, (units,), jnp.float32),
                         input_bias=_plain_bias)
    return _keras_cell(spec, args)


@keras_layer
@shared_args(CELL_HEADS["LSTM"], CELL_ARGS, IMPLEMENTATION_ARG)
def LSTMCell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
             kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
             bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
             recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
             recurrent_constraint=None, bias_constraint=None, dropout=0.0,
             recurrent_dropout=0.0, seed=None, implementation=2, *,
             activity_regularizer=None) -> Cell:
    """The long short-term memory cell (Hochreiter & Schmidhuber, 1997), as Keras computes it.

    With ``z = x @ kernel + h @ recurrent_kernel + bias`` split into the gate blocks
    i, f, c~, o (Keras' order) and ``s = recurrent_activation``:
    ``c' = s(f) * c + s(i) * activation(c~)``, ``h' = s(o) * activation(c')``; the output is
    ``h'``.

    Args:
      {shared}
      activity_regularizer: None only (a cell runs inside the RNN's loop; give the
        regularizer to the RNN layer).

    Params: ``kernel`` (in, 4*units), ``recurrent_kernel`` (units, 4*units), ``bias``
    (4*units,). Returns a `Cell` with ``state_size=(units, units)`` (h, c), for `RNN`.

    Input shape: one time step ``(batch, features)``. Output shape: ``(batch, units)``.
    """
    args, act, rec_act = _cell_args("LSTMCell", locals())
    units = args["units"]

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

    spec = GatedCellSpec("LSTMCell", gates=4, n_states=2, step=step, bias_init=bias_init,
                         input_bias=_plain_bias)
    return _keras_cell(spec, args)


@keras_layer
@shared_args(CELL_HEADS["GRU"], CELL_ARGS, IMPLEMENTATION_ARG)
def GRUCell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
            kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
            bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
            bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
            bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, reset_after=True,
            seed=None, implementation=2, *, activity_regularizer=None) -> Cell:
    """The gated recurrent unit cell (Cho et al., 2014), as Keras computes it.

    Gate blocks z (update), r (reset), h~ (candidate); ``s = recurrent_activation``,
    ``z = s(x W_z + h R_z + b_z)``, ``r = s(x W_r + h R_r + b_r)``,
    ``h' = z * h + (1 - z) * h~``. With `reset_after` (default, the cuDNN variant)
    ``h~ = activation(x W_h + b0_h + r * (h R_h + b1_h))`` and ``bias`` is (2, 3*units): row 0
    the input bias, row 1 the recurrent bias. Without it
    ``h~ = activation(x W_h + b_h + (r * h) R_h)`` and ``bias`` is (3*units,).

    Args:
      {shared}
      activity_regularizer: None only (a cell runs inside the RNN's loop; give the
        regularizer to the RNN layer).

    Params: ``kernel`` (in, 3*units), ``recurrent_kernel`` (units, 3*units), ``bias``.
    Returns a `Cell` with ``state_size=(units,)``, for `RNN`.

    Input shape: one time step ``(batch, features)``. Output shape: ``(batch, units)``.
    """
    args, act, rec_act = _cell_args("GRUCell", locals())
    units = args["units"]
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

    spec = GatedCellSpec("GRUCell", gates=3, n_states=1, step=step,
                         bias_init=lambda binit, k: binit(k, shape, jnp.float32),
                         input_bias=input_bias)
    return _keras_cell(spec, args, **({} if reset_after else {"reset_after": False}))

