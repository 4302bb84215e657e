"""Transfer learning: freeze part of the params, run part of a model in inference mode,
and cut the first layers of a `serial` model out as a feature extractor."""
from __future__ import annotations


import jax
import optax

from ..core import Layer, as_layer
from ..combinators import serial


def trainable_mask(params, frozen):
    """A tree of bools shaped like `params`: True where a leaf is trained.

    `frozen` is a prefix tree of bools over `params` (``(True, True, False)`` freezes the
    first two children of a serial model; a leaf ``True`` freezes everything under it), or
    a function ``(path, leaf) -> bool`` (True = frozen) over `jax.tree_util` key paths.
    """
    if callable(frozen):
        return jax.tree_util.tree_map_with_path(lambda p, leaf: not bool(frozen(p, leaf)),
                                                params)
    try:
        return jax.tree_util.tree_map(
            lambda f, sub: jax.tree_util.tree_map(lambda _: not bool(f), sub), frozen, params)
    except ValueError as e:
        raise ValueError(f"freeze: the frozen mask must be a prefix of the params tree "
                         f"({e})") from None


def freeze(optimizer, frozen) -> optax.GradientTransformation:
    """`optimizer` with the params selected by `frozen` left exactly as they are.

    Frozen leaves get ``optax.set_to_zero()`` through ``optax.multi_transform``, so their
    updates are zero *after* the whole optimizer chain: no gradient step, no weight decay
    (adamw), no momentum, and no optimizer state is kept for them. (``optax.masked`` alone
    would pass the raw gradient through as the update, and decay terms outside the mask
    would still apply.) `frozen` is as for `trainable_mask`.
    """
    def labels(params):
        return jax.tree_util.tree_map(lambda t: "train" if t else "frozen",
                                      trainable_mask(params, frozen))
    return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


def take(model, params, k, state=None):
    """The first `k` layers of a `serial` model (or those selected by a slice) with their
    params, as a new serial model: ``body, body_params = jl.take(model, params, -1)``;
    `k` may also be the name of one of its layers (``jl.named`` / Keras' name), included.

    On a `serial`, `k` may also be the name given to a child with `jl.named`: the layers
    up to and including that child (``jl.take(model, params, "features")``).

    For a functional `jl.Model`, `k` is a layer name (or a list of names): the result is a
    `jl.Model` from the model's inputs to that layer's output (a tuple of outputs for a
    list), with the params (and state) of the layers it uses, under the same names.

    Returns ``(layer, params)``, or ``(layer, params, state)`` when `state` is given.
    """
    model = as_layer(model)
    if model.graph is not None and (isinstance(k, str) or (
            isinstance(k, (list, tuple)) and k and all(isinstance(n, str) for n in k))):
        return _take_functional(model, params, k, state)
    if not model.children or not isinstance(params, tuple) or len(params) != len(
            model.children):
        raise ValueError(f"take: expected a serial model and its params tuple, got "
                         f"{model.name} with params of type {type(params).__name__}")
    if isinstance(k, str):
        k = _child_index(model, k) + 1
    elif isinstance(k, bool) or not isinstance(k, (int, slice)):
        raise TypeError(f"take: k must be an int, a slice or a layer name, received {k!r}")
    sl = k if isinstance(k, slice) else slice(0, k)
    layers = model.children[sl]
    if not layers:
        raise ValueError(f"take: {k!r} selects no layer of {model.name} "
                         f"({len(model.children)} layers)")
    sub = serial(*layers, name=model.name)
    if state is None:
        return sub, params[sl]
    return sub, params[sl], state[sl]


def _child_index(model, name):
    """The position of the child of a serial `model` named `name` (with `jl.named`)."""
    labels = [child.label for child in model.children]
    if name not in labels:
        named = [repr(n) for n in labels if n]
        raise ValueError(f"take: {model.name} has no layer named {name!r}; its named "
                         f"children are {', '.join(named) if named else 'none'} (name one "
                         f"with jl.named(layer, name))")
    if labels.count(name) > 1:
        raise ValueError(f"take: {model.name} has {labels.count(name)} children named "
                         f"{name!r}; names must be unique to take by name")
    return labels.index(name)


def _take_functional(model, params, k, state):
    """`take` for a functional Model: the sub-graph up to the named layers' outputs."""
    from ..functional import graph_model
    from ..graph import build_graph
    graph = model.graph
    by_name = {n: l for l, n in graph.names.items()}
    wanted = [k] if isinstance(k, str) else list(k)
    outputs = []
    for name in wanted:
        if name not in by_name:
            raise ValueError(f"take: {model.name} has no layer named {name!r}; its layers "
                             f"are {', '.join(repr(n) for n in graph.names.values())}")
        layer = by_name[name]
        nodes = [n for n in graph.input_nodes + graph.nodes if n.layer is layer]
        if len(nodes) != 1:
            raise ValueError(f"take: layer {name!r} of {model.name} is called {len(nodes)} "
                             f"times (shared weights), so its output is ambiguous; take a "
                             f"layer that is called once")
        outputs.append(nodes[0].outputs)
    sub = graph_model(build_graph(graph.inputs, outputs[0] if isinstance(k, str) else
                                  list(outputs), model.label or "functional", graph.names),
                      model.label or None)
    used = [sub.graph.names[l] for l in sub.graph.layers]
    sub_params = {n: params[n] for n in used}
    if state is None:
        return sub, sub_params
    return sub, sub_params, {n: state[n] for n in used}
