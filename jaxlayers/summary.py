"""A Keras-style model summary, computed from shapes alone (no real computation)."""
from __future__ import annotations

import dataclasses
import math

import jax

from .core import Record, as_layer, as_shape, init_child, recording, stateful_init


def count(tree) -> int:
    """The number of scalars in a pytree of arrays (activity-loss slots not counted)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return sum(math.prod(leaf.shape) for path, leaf in leaves
               if not (path and getattr(path[-1], "key", None) == "activity_loss"))


@dataclasses.dataclass
class Summary:
    """The rows of a summary and its parameter counts; ``str()`` gives the table."""

    name: str
    rows: list
    output_shape: object
    trainable_params: int
    non_trainable_params: int
    connections: list | None = None  # functional models: the "Connected to" column
    params: object = dataclasses.field(default=None, repr=False)  # shapes of the params

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def __str__(self):
        head = ("Layer (type)", "Output Shape", "Param #")
        body = [("  " * r.depth + f"{r.label} {r.layer.name}", _fmt_shape(r.output_shape),
                 f"{count(r.params) + count(r.state):,}") for r in self.rows]
        if self.connections is not None:
            head += ("Connected to",)
            body = [b + (c,) for b, c in zip(body, self.connections)]
        w0 = max(len(head[0]), *(len(b[0]) for b in body)) if body else len(head[0])
        w1 = max(len(head[1]), *(len(b[1]) for b in body)) if body else len(head[1])
        w2 = max(len(head[2]), *(len(b[2]) for b in body)) if body else len(head[2])
        width = w0 + w1 + w2 + 4
        line = lambda a, b, c: f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}"
        if self.connections is not None:
            w3 = max(len(b[3]) for b in body + [head])
            width += w3 + 2
            line = lambda a, b, c, d: f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}  {d}"
        out = [f'Model: "{self.name}"', "=" * width, line(*head), "=" * width]
        out += [line(*b) for b in body]
        out += ["=" * width,
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                "=" * width]
        return "\n".join(out)


def _fmt_shape(shape):
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) for s in shape):
        return "[" + ", ".join(map(repr, shape)) + "]"
    return repr(shape)


def _frozen_count(params, frozen, trainable):
    """How many scalars of `params` are frozen, from `frozen` (as for `jl.freeze`) or a
    `trainable` mask (as `jl.trainable_mask` returns: True = trained)."""
    if frozen is None and trainable is None:
        return 0
    if frozen is not None and trainable is not None:
        raise ValueError("summary: pass frozen= (as for jl.freeze) or trainable= (the mask "
                         "from jl.trainable_mask), not both")
    if trainable is None:
        from .training.transfer import trainable_mask
        trainable = trainable_mask(params, frozen)
    mask_leaves, mask_def = jax.tree_util.tree_flatten(trainable)
    leaves, params_def = jax.tree_util.tree_flatten(params)
    if mask_def != params_def:
        raise ValueError(f"summary: the trainable mask must have the structure of the "
                         f"model's params, received {mask_def} for params {params_def}")
    return sum(math.prod(leaf.shape) for t, leaf in zip(mask_leaves, leaves) if not bool(t))


def summary(model, input_shape=None, print_fn=print, *, frozen=None,
            trainable=None) -> Summary:
    """Summarise `model` for inputs of `input_shape` (batch first, `None` for free dims).

    One row per layer (nested combinators indented) with its output shape and
    parameter count, then the total, trainable (params) and non-trainable (state, and
    params frozen by `frozen` -- as given to `jl.freeze` -- or by `trainable`, the mask
    `jl.trainable_mask` returns) counts. Prints the table with `print_fn` unless it is
    None; returns a `Summary`.
    """
    model = as_layer(model)
    shape = as_shape(input_shape)
    if model.graph is not None:
        result = _functional_summary(model, shape)
    else:
        result = _serial_summary(model, shape)
    if frozen is not None or trainable is not None:
        frozen_n = _frozen_count(result.params, frozen, trainable)
        result = dataclasses.replace(result, trainable_params=result.trainable_params - frozen_n,
                                     non_trainable_params=result.non_trainable_params + frozen_n)
    if print_fn is not None:
        print_fn(str(result))
    return result


def _serial_summary(model, shape) -> Summary:
    """One row per layer, nested combinators indented."""
    with recording() as rows:
        def run(key):
            return init_child(model, key, shape, "")
        out_shape, params, state = jax.eval_shape(run, jax.random.key(0))
    top = rows[0]
    rows = [dataclasses.replace(r, depth=r.depth - 1) for r in rows[1:]] if rows[1:] else [
        dataclasses.replace(top, label="")]
    for r in rows:
        r.label = r.label.strip()
    return Summary(model.name, rows, out_shape, count(params), count(state), params=params)


def _functional_summary(model, shape) -> Summary:
    """One row per layer of a functional Model, with Keras' "Connected to" column."""
    from .functional import is_symbolic
    graph = model.graph
    with recording() as rows:
        out_shape, params, state = jax.eval_shape(
            lambda k: stateful_init(model, k, shape), jax.random.key(0))
    first = {r.label: r for r in rows if r.depth == 0}
    in_shapes = [n.outputs.shape for n in graph.input_nodes]
    if shape is not None:
        in_def = jax.tree_util.tree_structure(graph.inputs, is_leaf=is_symbolic)
        in_shapes = [as_shape(s) for s in in_def.flatten_up_to(shape)]
    records, connections = [], []
    for node, s in zip(graph.input_nodes, in_shapes):
        records.append(Record(0, graph.names[node.layer], node.layer, s, s))
        connections.append("-")
    for layer in graph.layers:
        name = graph.names[layer]
        records.append(dataclasses.replace(first[name], label=name))
        links = [f"{graph.names[t.node.layer]}[{graph.node_index(t.node)}][{t.index}]"
                 for n in graph.nodes if n.layer is layer for t in n.input_tensors()]
        connections.append(", ".join(links) or "-")
    return Summary(model.label or "functional", records, out_shape, count(params),
                   count(state), connections, params)
