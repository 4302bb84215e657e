"""The functional API's graph builder: `Input`, symbolic tensors, layer calls, `build_graph`.

    inputs = jl.Input((16,))
    x = jl.Dense(32, activation="relu")(inputs)
    y = jl.Add()([x, jl.Dense(32)(x)])
    model = jl.Model(inputs, jl.Dense(10)(y))     # a Layer: init / apply as docs/design.md

Calling a layer on symbolic tensors records a `Node`; `Model` walks the graph from the
outputs back to the inputs and compiles it to one `(init, apply)` pair whose params (and
state) are dicts keyed by Keras-style layer names (``dense``, ``dense_1``, or the name
given with `named`). A layer object called several times is one entry: its weights are
shared. Every graph error (a disconnected tensor, shapes that do not fit, a cycle, two
layers with one name) is raised while the graph is built, naming the layers.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import re
from typing import Any

import jax
import jax.numpy as jnp

from .core import (Layer, Shape, ShapeError, call_child, dummy_shape, named,
                   on_symbolic_call, stateful_init)

_node_ids = itertools.count()


# --------------------------------------------------------------------------- tensors


@dataclasses.dataclass(eq=False)
class Node:
    """One call of `layer` on symbolic `inputs` (None for an `Input`), giving `outputs`."""

    layer: Layer
    inputs: Any
    outputs: Any = None
    param_spec: Any = None
    id: int = dataclasses.field(default_factory=lambda: next(_node_ids))

    @property
    def is_input(self) -> bool:
        return self.inputs is None

    def input_tensors(self) -> list:
        return [] if self.inputs is None else _leaves(self.inputs)

    def output_tensors(self) -> list:
        return _leaves(self.outputs)


@dataclasses.dataclass(eq=False, repr=False)
class SymbolicTensor:
    """A placeholder for an array in a functional graph: its shape, dtype and producer.

    Returned by `Input` and by calling a layer on symbolic tensors; holds no data.
    """

    shape: Shape
    dtype: Any
    node: Node
    index: int = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return (f"<SymbolicTensor shape={self.shape!r} dtype={jnp.dtype(self.dtype).name} "
                f"from {self.node.layer.name}>")

    def __iter__(self):
        raise TypeError(f"{self!r} is one tensor and cannot be unpacked")


def is_symbolic(x) -> bool:
    return isinstance(x, SymbolicTensor)


def _leaves(tree) -> list:
    return jax.tree_util.tree_leaves(tree, is_leaf=is_symbolic)


def _tuplify(tree):
    """Lists made tuples (arrays and shapes travel as tuples, as with `parallel`)."""
    if isinstance(tree, (list, tuple)) and not isinstance(tree, Shape):
        return tuple(_tuplify(t) for t in tree)
    if isinstance(tree, dict):
        return {k: _tuplify(v) for k, v in tree.items()}
    return tree


def _map(fn, tree):
    return jax.tree_util.tree_map(fn, tree, is_leaf=is_symbolic)


def _is_shape(s) -> bool:
    return isinstance(s, Shape)


# --------------------------------------------------------------------------- names


def snake_case(kind: str) -> str:
    """Keras' automatic layer name for a type name: ``Conv2D`` -> ``conv2d``."""
    name = re.sub(r"\W+", "", kind)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower() or "layer"


def _display(layer: Layer) -> str:
    return f"{layer.label!r} {layer.name}" if layer.label else layer.name


# --------------------------------------------------------------------------- Input / calls


def Input(shape=None, batch_size=None, name: str | None = None, dtype=jnp.float32,
          *, batch_shape=None) -> SymbolicTensor:
    """A symbolic input tensor of shape ``(batch_size, *shape)`` (the batch is implied).

    Args:
      shape: the shape of one example (an int or a tuple; None for a free dim).
      batch_size: a fixed batch size, or None (free).
      name: the input's layer name (default ``input_layer``, ``input_layer_1``, ...).
      dtype: the dtype of the arrays the model will receive (``jnp.int32`` for token ids).
      batch_shape: the full shape with the batch, instead of `shape` and `batch_size`.
    """
    from .layers.core import InputLayer
    if batch_shape is not None:
        if shape is not None:
            raise ValueError("Input: give shape or batch_shape, not both")
        batch_shape = tuple(batch_shape)
        if not batch_shape:
            raise ValueError("Input: batch_shape needs at least the batch dimension")
        batch_size, shape = batch_shape[0], batch_shape[1:]
    if shape is None:
        raise ValueError("Input: give the shape of one example, e.g. Input((28, 28, 1))")
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        raise ValueError(f"Input: unknown dtype {dtype!r}") from None
    layer = InputLayer(shape, batch_size)
    if name is not None:
        layer = named(layer, name)
    node = Node(layer, None)
    node.outputs = SymbolicTensor(layer.init(None)[0], dtype, node, 0)
    return node.outputs


def _inputs_text(inputs) -> str:
    parts = [f"{_display(t.node.layer)} -> {t.shape!r}" for t in _leaves(inputs)]
    return "[" + ", ".join(parts) + "]"


def _relocate(e: ShapeError, layer: Layer, inputs) -> ShapeError:
    where = e.where or layer.name
    if layer.label:
        where = f"{layer.label!r} {where}"
    return ShapeError(e.message, f"{where} called on {_inputs_text(inputs)}")


def call_layer(layer: Layer, *args, **kwargs):
    """Record a call of `layer` on symbolic tensors; returns its symbolic output(s).

    The output shape comes from the layer's `init`, the dtype from tracing its `apply`
    (no computation either way); a ShapeError is raised here, naming the layer and the
    layers its inputs come from.
    """
    if kwargs:
        raise TypeError(f"{layer.name}: a functional call takes only the input tensor(s), "
                        f"got keyword arguments {sorted(kwargs)}")
    if len(args) != 1:
        raise TypeError(f"{layer.name}: call a layer on one tensor or on one list / dict of "
                        f"tensors, got {len(args)} arguments")
    inputs = _tuplify(args[0])
    leaves = _leaves(inputs)
    if not leaves or not all(is_symbolic(t) for t in leaves):
        raise TypeError(
            f"{layer.name} is not called on arrays: use `.init(key, input_shape)` and "
            f"`.apply(params, x)`; calling a layer builds a graph only on symbolic tensors "
            f"from jl.Input")
    in_shapes = _map(lambda t: t.shape, inputs)
    try:
        out_shape, params, state = jax.eval_shape(
            lambda k: stateful_init(layer, k, in_shapes), jax.random.key(0))
        specs = _map(lambda t: jax.ShapeDtypeStruct(dummy_shape(t.shape), t.dtype), inputs)
        y = jax.eval_shape(lambda p, s, x: call_child(layer, p, s, x, None, False)[0],
                           params, state, specs)
    except ShapeError as e:
        raise _relocate(e, layer, inputs) from None
    shapes, treedef = jax.tree_util.tree_flatten(out_shape, is_leaf=_is_shape)
    dtypes = [getattr(a, "dtype", None) for a in jax.tree_util.tree_leaves(y)]
    if len(dtypes) != len(shapes):
        dtypes = [leaves[0].dtype] * len(shapes)
    node = Node(layer, inputs, param_spec=params)
    node.outputs = treedef.unflatten(
        [SymbolicTensor(s, d, node, i) for i, (s, d) in enumerate(zip(shapes, dtypes))])
    return node.outputs


# --------------------------------------------------------------------------- graph


@dataclasses.dataclass(eq=False)
class Graph:
    """A functional model's graph: the nodes in run order and the layer names.

    Attributes:
      name: the model's name.
      inputs / outputs: the symbolic tensors, structured as given (lists as tuples).
      input_nodes: the `Input` nodes, in the order of `inputs`.
      nodes: the layer calls in topological order (creation order where free).
      names: layer object -> its unique name (the key of its params).
      layers: the distinct layers that are called (not the inputs), in order.
    """

    name: str
    inputs: Any
    outputs: Any
    input_nodes: list
    nodes: list
    names: dict
    layers: list

    def node_index(self, node) -> int:
        """The index of `node` among the calls of its layer (Keras' ``node_index``)."""
        same = [n for n in self.input_nodes + self.nodes if n.layer is node.layer]
        return same.index(node)


def _parents(node):
    seen, out = set(), []
    for t in node.input_tensors():
        if t.node not in seen:
            seen.add(t.node)
            out.append(t.node)
    return out


def _reached(out_nodes) -> list:
    """Every node the outputs depend on; a ValueError naming the layers on a cycle."""
    color = {}
    found = []
    for root in out_nodes:
        if root in color:
            continue
        color[root] = 1
        stack = [(root, iter(_parents(root)))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                found.append(node)
                stack.pop()
            elif nxt not in color:
                color[nxt] = 1
                stack.append((nxt, iter(_parents(nxt))))
            elif color[nxt] == 1:
                ring = [n for n, _ in stack]
                ring = ring[ring.index(nxt):] + [nxt]
                raise ValueError("the graph has a cycle: " + " -> ".join(
                    _display(n.layer) for n in reversed(ring)))
    return found


def _topological(nodes) -> list:
    """`nodes` in an order where each follows its parents; ties by creation order."""
    children = {n: [] for n in nodes}
    indeg = {}
    for n in nodes:
        ps = _parents(n)
        indeg[n] = len(ps)
        for p in ps:
            children[p].append(n)
    by_id = {n.id: n for n in nodes}
    heap = [n.id for n in nodes if indeg[n] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        n = by_id[heapq.heappop(heap)]
        order.append(n)
        for c in children[n]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(heap, c.id)
    return order


def _assign_names(layers) -> dict:
    names, taken = {}, {}
    for layer in layers:
        if layer.label:
            other = taken.get(layer.label)
            if other is not None and other is not layer:
                raise ValueError(f"two layers are named {layer.label!r}: {other.name} and "
                                 f"{layer.name}; layer names must be unique in a model")
            taken[layer.label] = layer
    for layer in layers:
        if layer.label:
            names[layer] = layer.label
            continue
        base = snake_case(layer.kind)
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken[name] = layer
        names[layer] = name
    return names


def build_graph(inputs, outputs, name: str, names: dict | None = None) -> Graph:
    """Check and order the graph from `inputs` to `outputs` (see `Model`).

    `names` (layer -> name, e.g. a larger graph's `names`) keeps given names for the layers
    it has (used by `jl.take` so a sub-graph's params keep their keys).
    """
    inputs, outputs = _tuplify(inputs), _tuplify(outputs)
    in_leaves, out_leaves = _leaves(inputs), _leaves(outputs)
    if not in_leaves or not out_leaves:
        raise ValueError(f"Model {name!r}: give at least one input and one output tensor")
    for t in in_leaves:
        if not is_symbolic(t) or not t.node.is_input:
            what = repr(t) if is_symbolic(t) else type(t).__name__
            raise ValueError(f"Model {name!r}: every input must be a tensor made by jl.Input, "
                             f"got {what}")
    if len({id(t) for t in in_leaves}) != len(in_leaves):
        raise ValueError(f"Model {name!r}: the same Input is given twice among the inputs")
    for t in out_leaves:
        if not is_symbolic(t):
            raise ValueError(f"Model {name!r}: every output must be a symbolic tensor (made by "
                             f"calling layers on jl.Input tensors), got {type(t).__name__}")
    order = _topological(_reached([t.node for t in out_leaves]))
    input_nodes = [t.node for t in in_leaves]
    nodes = [n for n in order if not n.is_input]
    layers = list(dict.fromkeys(n.layer for n in nodes))
    all_layers = [n.layer for n in input_nodes] + [
        n.layer for n in order if n.is_input and n not in input_nodes] + layers
    all_layers = list(dict.fromkeys(all_layers))
    names = ({l: names[l] for l in all_layers} if names is not None
             and all(l in names for l in all_layers) else _assign_names(all_layers))
    for n in order:
        if n.is_input and n not in input_nodes:
            users = [m for m in nodes if n in _parents(m)]
            given = ", ".join(names[m.layer] for m in input_nodes)
            who = (f"layer(s) {', '.join(repr(names[m.layer]) for m in users)} use"
                   if users else "the outputs include")
            raise ValueError(
                f"Model {name!r}: the graph is disconnected: {who} Input "
                f"{names[n.layer]!r} {n.outputs.shape!r}, which is not among the model's "
                f"inputs ({given})")
    first = {}
    for n in nodes:
        if n.layer in first:
            _check_shared(first[n.layer], n, names[n.layer])
        else:
            first[n.layer] = n
    return Graph(name, inputs, outputs, input_nodes, nodes, names, layers)


def _check_shared(a: Node, b: Node, name: str):
    sa = jax.tree_util.tree_map(lambda s: (s.shape, s.dtype), a.param_spec)
    sb = jax.tree_util.tree_map(lambda s: (s.shape, s.dtype), b.param_spec)
    if jax.tree_util.tree_structure(a.param_spec) != jax.tree_util.tree_structure(
            b.param_spec) or sa != sb:
        raise ShapeError(
            f"the layer is shared, but its calls on {_inputs_text(a.inputs)} and on "
            f"{_inputs_text(b.inputs)} need weights of different shapes", f"{name} {a.layer.name}")


on_symbolic_call(call_layer)
