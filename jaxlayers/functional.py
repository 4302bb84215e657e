"""Keras' functional API over the layer contract: `Input`, `Model`, `named`.

    inputs = jl.Input((16,))
    x = jl.Dense(32, activation="relu")(inputs)
    y = jl.Add()([x, jl.Dense(32)(x)])
    model = jl.Model(inputs, jl.Dense(10)(y))     # a Layer: init / apply as DESIGN.md

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

from .core import (Layer, Shape, ShapeError, apply_child, apply_child_masked, as_layer,
                   as_shape, check_input, child_rng, describe, dummy_shape, init_child, is_free,
                   located, stateful_apply, stateful_init)

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


def named(layer, name: str) -> Layer:
    """`layer` with the unique name `name`: its key in a functional Model's params.

    Returns a new Layer object (call that one to share its weights). Layer constructors
    take no ``name=``; this is how a layer is named (``jl.Model(..., name=)`` names models).
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"named: a layer name must be a non-empty string without '/', got "
                         f"{name!r}")
    return dataclasses.replace(as_layer(layer), label=name)


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
        y = jax.eval_shape(lambda p, s, x: stateful_apply(layer, p, s, x, None, False)[0],
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
            raise ValueError(
                f"Model {name!r}: the graph is disconnected: layer(s) "
                f"{', '.join(repr(names[m.layer]) for m in users)} use Input "
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


# --------------------------------------------------------------------------- Model


def Model(inputs, outputs, name: str | None = None, *, _names: dict | None = None) -> Layer:
    """A Layer running the graph from `inputs` to `outputs` (Keras' functional Model).

    Args:
      inputs: a tensor from `Input`, or a list / tuple / dict of them.
      outputs: a symbolic tensor, or a list / tuple / dict of them.
      name: the model's name (its key when nested in another Model); default
        ``functional``.

    `init(key, input_shape=None)` uses the Inputs' shapes (or `input_shape`, structured
    like `inputs`, e.g. with a concrete batch size). Params (and state) are dicts with one
    entry per layer under its unique name (``()`` for a layer without weights); a layer
    called several times has one entry. The model is stateful iff a layer in it is.
    `apply(params, [state,] x, *, rng=None, train=False)` takes `x` structured like
    `inputs` and returns arrays structured like `outputs` (lists as tuples); node ``i``
    (in run order) gets ``fold_in(rng, i)``. `penalty` and `constrain` compose the layers'.

    Time-step masks travel along the edges as in `serial` (Embedding(mask_zero=True) ->
    LSTM masks the padding); ``apply(..., mask=)`` gives the inputs' masks (structured like
    `inputs`, None for unmasked), ``apply(..., return_mask=True)`` returns ``(y, masks)``.
    """
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise ValueError(f"Model: name must be a non-empty string without '/', got {name!r}")
    model_name = name or "functional"
    graph = build_graph(inputs, outputs, model_name, _names)
    names, layers, nodes = graph.names, graph.layers, graph.nodes
    in_tensors = _leaves(graph.inputs)
    in_def = jax.tree_util.tree_structure(graph.inputs, is_leaf=is_symbolic)
    input_names = [names[t.node.layer] for t in in_tensors]
    out_defs = [jax.tree_util.tree_structure(n.outputs, is_leaf=is_symbolic) for n in nodes]
    keys_of = {l: i for i, l in enumerate(layers)}
    stateful = any(l.stateful for l in layers)
    masked = any(l.mask_fn is not None or l.takes_mask or l.returns_mask for l in layers)

    def input_shapes(input_shape):
        declared = [t.shape for t in in_tensors]
        if input_shape is None:
            return declared
        try:
            given = in_def.flatten_up_to(as_shape(input_shape))
        except (ValueError, TypeError):
            raise ShapeError(f"expected input shapes structured like "
                             f"{_map(lambda t: t.shape, graph.inputs)!r}, received "
                             f"{input_shape!r}", model_name) from None
        out = []
        for d, g, n in zip(declared, given, input_names):
            g = as_shape(g)
            if not isinstance(g, Shape) or len(g) != len(d) or any(
                    not (is_free(a) or is_free(b) or a == b) for a, b in zip(d, g)):
                raise ShapeError(f"input {n!r} expects shape {d!r}, received {g!r}", model_name)
            out.append(Shape(b if not is_free(b) else a for a, b in zip(d, g)))
        return out

    def init_graph(key, input_shape):
        shapes = dict(zip(in_tensors, input_shapes(input_shape)))
        keys = jax.random.split(key, len(layers)) if layers else ()
        params, state = {}, {}
        for node, out_def in zip(nodes, out_defs):
            layer, lname = node.layer, names[node.layer]
            in_shape = _map(lambda t: shapes[t], node.inputs)
            k = keys[keys_of[layer]]
            if lname not in params:
                out, params[lname], state[lname] = init_child(layer, k, in_shape, lname)
            else:
                with located(lname, layer.name):
                    out = jax.eval_shape(lambda k: stateful_init(layer, k, in_shape), k)[0]
            shapes.update(zip(node.output_tensors(), out_def.flatten_up_to(out)))
        return _map(lambda t: shapes[t], graph.outputs), params, state

    def apply_graph(params, state, x, rng, train, mask=None):
        try:
            given = in_def.flatten_up_to(_tuplify(x))
        except (ValueError, TypeError):
            raise ShapeError(f"expected inputs structured like "
                             f"{_map(lambda t: t.shape, graph.inputs)!r}, received "
                             f"{type(x).__name__}", model_name) from None
        values = {}
        for t, a, n in zip(in_tensors, given, input_names):
            check_input(f"{model_name} > {n}", a, t.shape)
            values[t] = a
        # Time-step masks along the edges (docs/functional.md, "Masks"): None = no mask.
        threaded = masked or mask is not None
        masks = dict.fromkeys(in_tensors)
        if mask is not None:
            try:
                given_masks = in_def.flatten_up_to(_tuplify(mask))
            except (ValueError, TypeError):
                given_masks = None
            if given_masks is None or any(
                    m is not None and tuple(getattr(m, "shape", ())) != tuple(a.shape[:2])
                    for m, a in zip(given_masks, given)):
                raise ShapeError(f"expected masks structured like the inputs "
                                 f"{_map(lambda t: t.shape, graph.inputs)!r}, each a "
                                 f"(batch, time) array or None, received "
                                 f"{type(mask).__name__}", model_name)
            masks.update(zip(in_tensors, given_masks))
        state = dict(state)
        for i, (node, out_def) in enumerate(zip(nodes, out_defs)):
            lname = names[node.layer]
            xin = _map(lambda t: values[t], node.inputs)
            if threaded:
                min_ = _map(lambda t: masks[t], node.inputs)
                if not jax.tree_util.tree_leaves(min_):
                    min_ = None
                y, mout, state[lname] = apply_child_masked(
                    node.layer, params[lname], state[lname], xin, child_rng(rng, i), train,
                    lname, min_)
            else:
                y, state[lname] = apply_child(node.layer, params[lname], state[lname], xin,
                                              child_rng(rng, i), train, lname)
            try:
                ys = out_def.flatten_up_to(y)
            except (ValueError, TypeError):
                raise ShapeError(f"returned {type(y).__name__}, not the outputs its init "
                                 f"described", f"{lname} {node.layer.name}") from None
            values.update(zip(node.output_tensors(), ys))
            if threaded:
                masks.update(zip(node.output_tensors(), _output_masks(mout, out_def, ys)))
        out = _map(lambda t: values[t], graph.outputs)
        return (out, _map(lambda t: masks.get(t), graph.outputs)), state

    def penalty(params):
        return sum((l.penalty(params[names[l]]) for l in layers), 0.0)

    def constrain(params):
        return {**params, **{names[l]: l.constrain(params[names[l]]) for l in layers}}

    if stateful:
        def init(key, input_shape=None):
            return init_graph(key, input_shape)

        def apply(params, state, x, *, rng=None, train=False, mask=None, return_mask=False):
            (y, ymask), state = apply_graph(params, state, x, rng, train, mask)
            return ((y, ymask) if return_mask else y), state
    else:
        empty = {names[l]: () for l in layers}

        def init(key, input_shape=None):
            out_shape, params, _ = init_graph(key, input_shape)
            return out_shape, params

        def apply(params, x, *, rng=None, train=False, mask=None, return_mask=False):
            y, ymask = apply_graph(params, empty, x, rng, train, mask)[0]
            return (y, ymask) if return_mask else y

    display = describe("Functional", name) if name else "Functional()"
    # One input to one output through mask-passing layers only: the model passes a mask on.
    passes = (not masked and len(in_tensors) == 1 and is_symbolic(graph.outputs)
              and all(layer.passes_mask for layer in layers))
    return Layer(init, apply, name=display, stateful=stateful, penalty=penalty,
                 constrain=constrain, children=tuple(layers), label=name or "", graph=graph,
                 takes_mask=masked, returns_mask=masked, passes_mask=passes)


def _output_masks(mask, out_def, ys) -> list:
    """The masks of a node's output tensors `ys`, from the mask its layer gave.

    A structure of masks (a nested Model with several outputs) is matched to the outputs;
    one mask goes to a single output, or, for several outputs (an RNN with return_state),
    to those that keep the (batch, time) axes of rank >= 3 (the sequences, not the states).
    """
    if mask is None:
        return [None] * len(ys)
    if hasattr(mask, "shape"):
        if len(ys) == 1:
            return [mask]
        return [mask if y.ndim >= 3 and tuple(y.shape[:2]) == tuple(mask.shape) else None
                for y in ys]
    return out_def.flatten_up_to(mask)
