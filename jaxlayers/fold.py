"""Inference folding: `fold_for_inference(model, params, state)`.

In inference a BatchNormalization is a per-channel affine map ``y = x * a + b`` with
``a = gamma / sqrt(moving_variance + epsilon)`` and ``b = beta - moving_mean * a``. When
it directly follows a linear layer (Dense, Conv, ConvTranspose, DepthwiseConv,
SeparableConv without an activation, whose output feeds nothing else), the map folds
into that layer's kernel and bias, and the BatchNormalization disappears. Dropout and
noise layers are the identity in inference and are removed. What is left is a stateless
model computing what ``model.apply(params, state, x, train=False)`` computes.

``a`` and ``b`` are computed as BatchNormalization computes them (float32, its epsilon,
with or without gamma / beta); a normalisation over another axis than the linear layer's
output channels is left in place (with its state frozen).
"""
from __future__ import annotations

import ast
import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np

from .combinators import serial
from .core import Layer, as_shape, stateful_init
from .functional import Input, Model, named

# Kinds that are the identity with train=False.
_IDENTITY_IN_INFERENCE = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization"}

# Linear layers a following BatchNormalization folds into: kind -> (name of the kernel
# that is scaled, the axis of that kernel holding the output channels).
_LINEAR = {"Dense": ("kernel", -1)}
for _r in (1, 2, 3):
    _LINEAR[f"Conv{_r}D"] = ("kernel", -1)
    _LINEAR[f"Conv{_r}DTranspose"] = ("kernel", -2)
for _r in (1, 2):
    _LINEAR[f"DepthwiseConv{_r}D"] = ("kernel", None)   # (*k, in, dm): channel c * dm + m
    _LINEAR[f"SeparableConv{_r}D"] = ("pointwise_kernel", -1)


def fold_for_inference(model, params, state=(), input_shape=None):
    """An equivalent inference-only model: ``(folded_layer, folded_params)``.

    Args:
      model: a `serial` (possibly nested), a functional `jl.Model` (also one made by
        `jl.from_keras`), or any layer.
      params, state: the model's params and state (``()`` for a stateless model).
      input_shape: the model's input shape; needed for a `serial` that does not start
        with an `InputLayer` (a functional Model knows its own).

    Returns ``(layer, params)``: a stateless layer with ``layer.apply(params, x)`` equal to
    ``model.apply(params, state, x, train=False)`` (its output only) within float32
    rounding, BatchNormalizations folded into the linear layers before them, Dropout and
    noise layers removed. Layers that cannot be folded are kept, with their state frozen.
    """
    if input_shape is None and model.graph is None:
        input_shape = _declared_input_shape(model)
    return _fold(model, params, state, input_shape)


def _declared_input_shape(model):
    try:
        jax.eval_shape(lambda k: stateful_init(model, k, None), jax.random.key(0))
    except Exception:
        raise ValueError(f"fold_for_inference: {model.name} does not declare its input shape "
                         f"(no InputLayer first): pass input_shape=") from None
    return None


def _fold(layer, params, state, input_shape):
    if layer.graph is not None:
        return _fold_model(layer, params, state)
    if layer.kind == "serial":
        return _fold_serial(layer, params, state, input_shape)
    if layer.kind in _IDENTITY_IN_INFERENCE:
        return None, ()
    return _frozen(layer, state), params


def _frozen(layer, state):
    """`layer` as a stateless layer applied with `state` and ``train=False``."""
    if not layer.stateful:
        return _eval_only(layer)

    def init(key, input_shape):
        out_shape, params, _ = layer.init(key, input_shape)
        return out_shape, params

    def apply(params, x, *, rng=None, train=False):
        return layer.apply(params, state, x, train=False)[0]

    return Layer(init, apply, name=layer.name, penalty=layer.penalty,
                 constrain=layer.constrain, children=layer.children, label=layer.label)


def _eval_only(layer):
    apply_inner = layer.apply

    def apply(params, x, *, rng=None, train=False, **kwargs):
        # a container keeps its THREAD rule: its caller passes mask= / return_mask=
        return apply_inner(params, x, train=False, **kwargs)

    return dataclasses.replace(layer, apply=apply)


# --------------------------------------------------------------------------- the fold


def _output_shape(layer, input_shape):
    out = jax.eval_shape(lambda k: stateful_init(layer, k, input_shape), jax.random.key(0))
    return out[0]


def _bn_option(bn, option, default):
    """A BatchNormalization option read from its name (it lists the non-default ones)."""
    match = re.search(rf"\b{option}=([^,)]+)", bn.name)
    return default if match is None else ast.literal_eval(match.group(1))


def _affine(bn, bn_params, bn_state, rank, channel_axis):
    """``(a, b)``: `bn` in inference is ``x * a + b`` per channel (computed as it computes
    them), or None when it normalises another axis than `channel_axis` of a rank-`rank`
    input (then it does not fold)."""
    if "axis=[" in bn.name or "axis=(" in bn.name:
        return None
    if _bn_option(bn, "axis", -1) % rank != channel_axis % rank:
        return None
    f32 = lambda v: np.asarray(v, np.float32)       # numpy: no compile per shape
    a = 1 / np.sqrt(f32(bn_state["moving_variance"]) + np.float32(_bn_option(bn, "epsilon", 1e-3)))
    if "gamma" in bn_params:
        a = a * f32(bn_params["gamma"])
    b = -f32(bn_state["moving_mean"]) * a
    if "beta" in bn_params:
        b = b + f32(bn_params["beta"])
    return a, b


def _channel_axis(layer):
    return 1 if "data_format='channels_first'" in layer.name and layer.kind != "Dense" else -1


def _foldable(layer):
    """A linear layer (no activation, or "linear") without state: BN folds into it."""
    linear = "activation=" not in layer.name.replace("activation='linear'", "")
    return layer.kind in _LINEAR and linear and not layer.stateful


def _fold_affine(layer, params, a, b):
    """`layer`'s params with ``y * a + b`` (per output channel) folded in."""
    name, axis = _LINEAR[layer.kind]
    kernel = np.asarray(params[name])
    if axis is None:
        c_in, dm = kernel.shape[-2:]
        scaled = kernel * a.reshape(c_in, dm)
    else:
        shape = [1] * kernel.ndim
        shape[axis] = a.shape[0]
        scaled = kernel * a.reshape(shape)
    bias = np.asarray(params["bias"]) * a + b if "bias" in params else b
    return {**params, name: jnp.asarray(scaled, kernel.dtype),
            "bias": jnp.asarray(bias, kernel.dtype)}


def _with_bias(layer):
    """`layer` (a linear layer built with use_bias=False) whose init also makes the
    ``bias`` (output channels,) that folding gave it; its apply already adds any bias."""
    if "use_bias=False" not in layer.name:
        return layer
    init_inner, axis = layer.init, _channel_axis(layer)

    def init(key, input_shape):
        out_shape, params = init_inner(key, input_shape)
        return out_shape, {**params, "bias": jnp.zeros((out_shape[axis],), jnp.float32)}

    return dataclasses.replace(layer, init=init, name=layer.name.replace(", use_bias=False", ""))


def _fold_serial(layer, params, state, input_shape):
    children = layer.children
    states = state if state != () else tuple(() for _ in children)
    shape = as_shape(input_shape)
    kept, kept_params = [], []
    previous = None            # (index in kept, output shape) of a foldable linear layer
    for child, p, s in zip(children, params, states):
        out_shape = _output_shape(child, shape)
        if child.kind == "BatchNormalization" and previous is not None:
            i, linear = previous
            ab = _affine(child, p, s, len(shape), _channel_axis(linear))
            if ab is not None:
                kept[i] = _with_bias(kept[i])
                kept_params[i] = _fold_affine(linear, kept_params[i], *ab)
                previous, shape = None, out_shape
                continue
        folded, fp = _fold(child, p, s, shape)
        shape = out_shape
        if folded is None:          # removed (a dropout): what was before it comes next
            continue
        kept.append(folded)
        kept_params.append(fp)
        previous = (len(kept) - 1, child) if _foldable(child) else None

    return serial(*kept, name=layer.name), tuple(kept_params)


def _fold_model(model, params, state):
    graph = model.graph
    state = state if state != () else {}
    users = {}
    for node in graph.nodes:
        for t in node.input_tensors():
            users.setdefault(id(t), []).append(node)
    calls = {}
    for node in graph.nodes:
        calls[node.layer] = calls.get(node.layer, 0) + 1
    outputs = {id(t) for t in jax.tree_util.tree_leaves(
        graph.outputs, is_leaf=lambda t: hasattr(t, "node"))}

    new_params, new_layers, tensors = {}, {}, {}
    for node in graph.input_nodes:
        t = node.outputs
        tensors[id(t)] = Input(t.shape[1:], batch_size=t.shape[0], dtype=t.dtype,
                               name=graph.names[node.layer])
    absorbed = {}   # id(BN output tensor) -> folded linear node output
    for node in graph.nodes:
        layer, name = node.layer, graph.names[node.layer]
        if node.layer.kind in _IDENTITY_IN_INFERENCE:
            tensors[id(node.outputs)] = _map_inputs(node.inputs, tensors)
            continue
        if layer.kind == "BatchNormalization" and id(node.outputs) in absorbed:
            continue
        inputs = _map_inputs(node.inputs, tensors)
        lp = params.get(name, ())
        target = _fold_target(node, graph, users, calls, outputs)
        if target is not None:
            bn_name = graph.names[target.layer]
            ab = _affine(target.layer, params.get(bn_name, ()), state.get(bn_name, ()),
                         len(node.outputs.shape), _channel_axis(layer))
            if ab is not None:
                lp = _fold_affine(layer, lp, *ab)
                new = new_layers.setdefault(layer, named(_with_bias(layer), name))
                new_params[name] = lp
                tensors[id(target.outputs)] = new(inputs)
                absorbed[id(target.outputs)] = True
                continue
        new = new_layers.get(layer)
        if new is None:
            folded, fp = _fold(layer, lp, state.get(name, ()), node.inputs.shape
                               if hasattr(node.inputs, "shape") else None)
            new = new_layers[layer] = named(folded, name)
            new_params[name] = fp
        out = new(inputs)
        tensors[id(node.outputs)] = out
    rebuilt = Model(_map_inputs(graph.inputs, tensors), _map_inputs(graph.outputs, tensors),
                    name=graph.name)
    return rebuilt, {k: new_params[k] for k in rebuilt.graph.names.values() if k in new_params}


def _map_inputs(tree, tensors):
    return jax.tree_util.tree_map(lambda t: tensors[id(t)], tree,
                                  is_leaf=lambda t: hasattr(t, "node"))


def _fold_target(node, graph, users, calls, outputs):
    """The BatchNormalization node that node's output feeds alone, when node is a
    foldable linear layer called once; else None."""
    if not _foldable(node.layer) or calls[node.layer] != 1 or id(node.outputs) in outputs:
        return None
    after = users.get(id(node.outputs), [])
    if len(after) != 1 or after[0].layer.kind != "BatchNormalization":
        return None
    bn = after[0]
    if sum(1 for n in graph.nodes if n.layer is bn.layer) != 1:
        return None
    return bn
