"""Keras' functional API: `Model`, a small runner over the graph that `graph.py` builds.

    inputs = jl.Input((16,))
    x = jl.Dense(32, activation="relu")(inputs)
    y = jl.Add()([x, jl.Dense(32)(x)])
    model = jl.Model(inputs, jl.Dense(10)(y))     # a Layer: init / apply as docs/design.md

Params (and state) are dicts keyed by Keras-style layer names (``dense``, ``dense_1``, or
the name given with ``name=`` / `named`); a layer called several times is one entry (its
weights are shared). Every graph error is raised while the graph is built (graph.py).
"""
from __future__ import annotations

import jax

from .core import (Layer, Shape, ShapeError, as_shape, call_child, child_rng, describe,
                   from_stateful, init_child, is_free, located, named, stateful_init)
from .layers.checks import check_input
from .graph import Graph, Input, SymbolicTensor, build_graph, is_symbolic, _leaves, _map, _tuplify

__all__ = ["Input", "Model", "SymbolicTensor", "named"]


def Model(inputs, outputs, name: str | None = None) -> Layer:
    """A Layer running the graph from `inputs` to `outputs` (Keras' functional Model).

    Args:
      inputs: a tensor from `Input`, or a list / tuple / dict of them.
      outputs: a symbolic tensor, or a list / tuple / dict of them.
      name: the model's name (its key when nested in another Model); default
        ``functional``.

    `init(key, input_shape=None)` uses the Inputs' shapes (or `input_shape`, structured
    like `inputs`, e.g. with a concrete batch size). Params (and state) are dicts with one
    entry per layer under its unique name (``()`` for a layer without weights). The model
    is stateful iff a layer in it is. `apply(params, [state,] x, *, rng=None, train=False)`
    takes `x` structured like `inputs` and returns arrays structured like `outputs` (lists
    as tuples); node ``i`` (in run order) gets ``fold_in(rng, i)``.

    Time-step masks travel along the edges (Embedding(mask_zero=True) -> LSTM masks the
    padding); ``apply(..., mask=)`` gives the inputs' masks (structured like `inputs`, None
    for unmasked), ``apply(..., return_mask=True)`` returns ``(y, masks)``.
    """
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise ValueError(f"Model: name must be a non-empty string without '/', got {name!r}")
    return graph_model(build_graph(inputs, outputs, name or "functional"), name)


def graph_model(graph: Graph, name: str | None = None) -> Layer:
    """The Layer that runs a built `Graph` (see `Model`)."""
    names, layers, nodes = graph.names, graph.layers, graph.nodes
    model_name = graph.name
    in_tensors = _leaves(graph.inputs)
    in_def = jax.tree_util.tree_structure(graph.inputs, is_leaf=is_symbolic)
    input_names = [names[t.node.layer] for t in in_tensors]
    out_defs = [jax.tree_util.tree_structure(n.outputs, is_leaf=is_symbolic) for n in nodes]
    keys_of = {l: i for i, l in enumerate(layers)}
    declared = _map(lambda t: t.shape, graph.inputs)

    def flat_inputs(tree, what):
        try:
            return in_def.flatten_up_to(_tuplify(tree))
        except (ValueError, TypeError):
            raise ShapeError(f"expected {what} structured like the inputs {declared!r}, received "
                             f"{type(tree).__name__}", model_name) from None

    def init_s(key, input_shape):
        shapes = dict(zip(in_tensors, _input_shapes(in_tensors, input_names, model_name,
                                                     flat_inputs, input_shape)))
        keys = jax.random.split(key, len(layers)) if layers else ()
        params, state = {}, {}
        for node, out_def in zip(nodes, out_defs):
            layer, lname = node.layer, names[node.layer]
            in_shape = _map(lambda t: shapes[t], node.inputs)
            k = keys[keys_of[layer]]
            if lname not in params:
                out, params[lname], state[lname] = init_child(layer, k, in_shape, lname)
            else:   # a shared layer: its weights exist already
                with located(lname, layer.name):
                    out = jax.eval_shape(lambda k: stateful_init(layer, k, in_shape), k)[0]
            shapes.update(zip(node.output_tensors(), out_def.flatten_up_to(out)))
        return _map(lambda t: shapes[t], graph.outputs), params, state

    def run(params, state, x, rng, train, mask):
        for what, tree in (("params", params), ("state", state)):
            if not isinstance(tree, dict) or set(tree) != set(names[l] for l in layers):
                have = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
                raise ShapeError(f"expects {what} as a dict with one entry per layer "
                                 f"{sorted(names[l] for l in layers)}, got {have}", model_name)
        values, masks = {}, {}
        for t, a, n in zip(in_tensors, flat_inputs(x, "inputs"), input_names):
            check_input(f"{model_name} > {n}", a, t.shape)
            values[t] = a
        given = [None] * len(in_tensors) if mask is None else flat_inputs(mask, "masks")
        for t, m, n in zip(in_tensors, given, input_names):
            if m is not None and tuple(getattr(m, "shape", ())) != tuple(values[t].shape[:2]):
                raise ShapeError(f"expected masks structured like the inputs {declared!r}, "
                                 f"each a (batch, time) array or None; the mask of input "
                                 f"{n!r} should have shape {tuple(values[t].shape[:2])}, "
                                 f"received {getattr(m, 'shape', type(m).__name__)}",
                                 model_name)
            masks[t] = m
        state = dict(state)
        for i, (node, out_def) in enumerate(zip(nodes, out_defs)):
            lname = names[node.layer]
            xin = _map(lambda t: values[t], node.inputs)
            min_ = _map(lambda t: masks[t], node.inputs)
            min_ = min_ if jax.tree_util.tree_leaves(min_) else None
            y, mout, state[lname] = call_child(node.layer, params[lname], state[lname], xin,
                                               child_rng(rng, i), train, lname, min_)
            try:
                ys = out_def.flatten_up_to(y)
            except (ValueError, TypeError):
                raise ShapeError(f"returned {type(y).__name__}, not the outputs its init "
                                 f"described", f"{lname} {node.layer.name}") from None
            values.update(zip(node.output_tensors(), ys))
            masks.update(zip(node.output_tensors(), _output_masks(mout, out_def, ys)))
        return (_map(lambda t: values[t], graph.outputs),
                _map(lambda t: masks[t], graph.outputs), state)

    def penalty(params):
        return sum((l.penalty(params[names[l]]) for l in layers), 0.0)

    def constrain(params):
        return {**params, **{names[l]: l.constrain(params[names[l]]) for l in layers}}

    display = describe("Functional", name) if name else "Functional()"
    return from_stateful(init_s, run, stateful=any(l.stateful for l in layers),
                         empty_state={names[l]: () for l in layers}, name=display,
                         penalty=penalty, constrain=constrain, children=tuple(layers),
                         label=name or "", graph=graph)


def _input_shapes(in_tensors, input_names, model_name, flat_inputs, input_shape):
    """The input shapes for init: the Inputs' own, or `input_shape` where it fits them."""
    declared = [t.shape for t in in_tensors]
    if input_shape is None:
        return declared
    out = []
    for d, g, n in zip(declared, flat_inputs(as_shape(input_shape), "input shapes"),
                       input_names):
        g = as_shape(g)
        if not isinstance(g, Shape) or len(g) != len(d) or any(
                not (is_free(a) or is_free(b) or a == b) for a, b in zip(d, g)):
            raise ShapeError(f"input {n!r} expects shape {d!r}, received {g!r}", model_name)
        out.append(Shape(b if not is_free(b) else a for a, b in zip(d, g)))
    return out


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
