"""`StackedRNNCells`: several recurrent cells run as one cell (what `RNN([cell, cell])`
builds), with Keras' weight order and state structure."""
from __future__ import annotations

import jax

from .args import keras_layer
from .cells import Cell, identity_project
from .rnn_args import refuse_cell_activity_regularizer


@keras_layer
def StackedRNNCells(cells, *, activity_regularizer=None) -> Cell:
    """Several cells run as one: at each step cell ``i + 1`` gets cell ``i``'s output.

    Args:
      cells: a non-empty list of `Cell` (built-in or your own).
      activity_regularizer: None only (a cell runs inside the RNN's loop; give the
        regularizer to the RNN layer).

    `RNN([cell, cell])` builds this. As in Keras (for its built-in cells), the states are
    one tuple per cell: ``((h1, c1), (h2,))`` for an LSTMCell then a GRUCell; a masked step
    repeats the last cell's first state. Only the first cell can `project` the whole
    sequence; a later one needs a `step_extras` (the built-in cells have one) or no
    `project`.

    Params: a tuple with each cell's params (Keras' weight order: cell by cell).
    Returns a `Cell` whose output is the last cell's, for `RNN`.

    Input shape: one time step ``(batch, features)``. Output shape: the last cell's,
    ``(batch, output_size)``.
    """
    refuse_cell_activity_regularizer("StackedRNNCells", activity_regularizer)
    if not isinstance(cells, (list, tuple)) or not cells:
        raise ValueError(f"StackedRNNCells: cells must be a non-empty list of Cells, got "
                         f"{cells!r}")
    cells = tuple(cells)
    for i, c in enumerate(cells):
        if not isinstance(c, Cell):
            raise ValueError(f"StackedRNNCells: cells[{i}] must be a Cell (e.g. "
                             f"jl.LSTMCell(32)), got {c!r}")
        if i and c.step_extras is None and c.project is not identity_project:
            raise ValueError(f"StackedRNNCells: cells[{i}] {c.name} projects whole sequences "
                             f"(project=) but has no step_extras; only the first cell of a "
                             f"stack sees the whole sequence")
    name = "StackedRNNCells(" + ", ".join(c.name for c in cells) + ")"
    state_size = tuple(c.state_size for c in cells)

    def init(key, input_dim):
        params = []
        for c, k in zip(cells, jax.random.split(key, len(cells))):
            params.append(c.init(k, input_dim))
            input_dim = c.output_size
        return tuple(params)

    def project(params, xs, rng, train):
        keys = [None] * len(cells) if rng is None else list(jax.random.split(rng, len(cells)))
        xs, first = cells[0].project(params[0], xs, keys[0], train)
        extras = [first]
        for i in range(1, len(cells)):
            make = cells[i].step_extras
            extras.append(None if make is None else make(
                params[i], xs.shape[1], cells[i - 1].output_size, xs.dtype, keys[i], train))
        return xs, tuple(extras)

    def step(params, x_t, states, extras):
        new = []
        for c, p, s, e in zip(cells, params, states, extras):
            x_t, out = c.step(p, x_t, s, e)
            new.append(tuple(out))
        return x_t, tuple(new)

    last = cells[-1]
    return Cell(init, step, state_size, last.output_size, project=project, name=name,
                needs_rng=any(c.needs_rng for c in cells),
                penalty=lambda params: sum(c.penalty(p) for c, p in zip(cells, params)),
                constrain=lambda params: tuple(c.constrain(p) for c, p in zip(cells, params)),
                output_is_state=last.output_is_state)
