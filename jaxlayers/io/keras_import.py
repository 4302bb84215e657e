"""`from_keras`: a Keras 3 model (object, ``.keras`` file, or ``.weights.h5`` + architecture)
as a jaxlayers model with its params and state.

A Sequential model becomes a `serial` whose layers keep their Keras names (as labels,
so ``jl.take(model, params, name)`` cuts it there); a functional model is replayed node by node on
jaxlayers' symbolic tensors and becomes a `jl.Model` with Keras' layer names. Each Keras
layer class is converted by a function registered in `CONVERTERS`, a dict from the Keras
class name to ``converter(keras_layer) -> (layer, params, state)``: a jaxlayers Layer, its
params in jaxlayers' layout (numpy arrays), and its state (or None to take the state its
``init`` builds). jaxlayers' constructors take Keras' argument names, so most converters
are ``generic(Constructor)``: the Keras config passed through `keras_arguments`, the
weights through `keras_weights` (both in `keras_config`, with the rest of the argument
mapping). Register a new one the same way:

    from jaxlayers.io.keras_import import CONVERTERS, generic
    CONVERTERS["MyLayer"] = generic(MyLayer)

(a module of converters that `keras_import` itself imports takes `generic` and the other
helpers from `keras_config`, and `keras_import` adds its table with one `CONVERTERS.update`).
A layer class without a converter raises `KerasImportError` naming it.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import jax
import numpy as np

from ..core import as_shape, with_state
from ..combinators import serial
from ..core import named
from ..functional import Input, Model, SymbolicTensor
from ..layers import activation as A
from ..layers import multi_head_attention as T
from ..layers import einsum_dense as ED
from ..layers import score_attention as SA
from ..layers import convolutions as C
from ..layers import core as L
from ..layers import embedding as E
from ..layers import merging as M
from ..layers import normalization as N
from ..layers import pooling as P
from ..layers import recurrent as R
from ..layers import regularization as G
from ..layers import reshaping as S
from ..layers import wrappers as W
from .keras_config import (KerasImportError, build as _build, generic, import_keras as _keras,
                           keras_arguments, keras_label as _where, keras_weights)
from .keras_file import load_keras_file


# --------------------------------------------------------------------------- converters


def _recurrent(ctor):
    """SimpleRNN / LSTM / GRU. Inside Bidirectional Keras sets zero_output_for_mask on
    its copies, which jaxlayers' Bidirectional does itself."""
    def convert(kl, in_bidirectional=False):
        skip = ("zero_output_for_mask",) if in_bidirectional else ()
        layer = _build(kl, ctor, **keras_arguments(kl, ctor, skip=skip))
        return layer, keras_weights(kl), None
    return convert


_CELLS = {"SimpleRNNCell": R.SimpleRNNCell, "LSTMCell": R.LSTMCell, "GRUCell": R.GRUCell}


def _cell(kl, keras_cell):
    """A built-in Keras cell as a jaxlayers cell, with its weights."""
    cls = type(keras_cell).__name__
    if cls not in _CELLS:
        raise KerasImportError(f"{_where(kl)}: cell {cls} has no jaxlayers equivalent; "
                               f"jaxlayers converts RNN({', '.join(sorted(_CELLS))}) and "
                               f"stacks of them")
    ctor = _CELLS[cls]
    return _build(keras_cell, ctor, **keras_arguments(keras_cell, ctor)), keras_weights(keras_cell)


def _rnn(kl, in_bidirectional=False):
    """Keras' generic ``RNN(cell)`` with a built-in cell or a `StackedRNNCells` of them
    (params: a tuple, one dict per cell)."""
    if type(kl.cell).__name__ == "StackedRNNCells":
        cells = [_cell(kl, c) for c in kl.cell.cells]
        cell, weights = [c for c, _ in cells], tuple(w for _, w in cells)
    else:
        cell, weights = _cell(kl, kl.cell)
    skip = ("cell", "zero_output_for_mask") if in_bidirectional else ("cell",)
    layer = _build(kl, R.RNN, cell=cell, **keras_arguments(kl, R.RNN, skip=skip))
    return layer, weights, None


def _bidirectional(kl):
    def inner(sub):
        cls = type(sub).__name__
        if cls not in _RECURRENT:
            raise KerasImportError(f"{_where(kl)}: wraps {cls} ({sub.name!r}); jaxlayers' "
                                   f"Bidirectional converts {', '.join(sorted(_RECURRENT))}")
        return CONVERTERS[cls](sub, in_bidirectional=True)
    fwd, bwd = inner(kl.forward_layer), inner(kl.backward_layer)
    layer = _build(kl, W.Bidirectional, layer=fwd[0], merge_mode=kl.merge_mode,
                   backward_layer=bwd[0])
    return layer, (fwd[1], bwd[1]), None


def _time_distributed(kl):
    inner, params, state = _convert_layer(kl.layer)
    return W.TimeDistributed(inner), params, state


def _no_params(make):
    def convert(kl):
        return make(kl), (), None
    return convert


def _attention(ctor):
    """MultiHeadAttention / GroupedQueryAttention: the params of each sublayer (query,
    key, value, attention_output, gate) read from the weights' paths. `options` are call
    arguments of the saved graph (use_causal_mask, ...), made constructor defaults."""
    def convert(kl, mask_input=False, fixed_mask=None, **options):
        layer = _build(kl, ctor, **keras_arguments(kl, ctor), **options)
        layer = T.attention_mask_input(layer) if mask_input else layer
        if fixed_mask is not None:      # a constant of the graph, given at every call
            layer = dataclasses.replace(layer, apply=functools.partial(
                layer.apply, attention_mask=np.asarray(fixed_mask)))
        params = {}
        for v in kl.weights:
            sub, weight = v.path.split("/")[-2:]
            params.setdefault(sub, {})[weight] = np.asarray(v.numpy())
        return layer, params, None
    return convert


def _with_options(ctor):
    """`generic(ctor)` that also takes call arguments as constructor defaults."""
    def convert(kl, **options):
        layer = _build(kl, ctor, **keras_arguments(kl, ctor), **options)
        return layer, keras_weights(kl) or (), None
    return convert


_ATTENTION = {"MultiHeadAttention": T.MultiHeadAttention,
              "GroupedQueryAttention": T.GroupedQueryAttention}
_CALL_OPTIONS = ("use_causal_mask", "return_attention_scores")


def _attention_call(op, args, kwargs):
    """``(args, options)`` of an attention layer's node: the positional / keyword
    (query, value[, key]) packed into one tuple input, and the call options (popped from
    `kwargs`) that its jaxlayers constructor takes. Other layers: unchanged, no options."""
    cls = type(op).__name__
    if cls not in _ATTENTION and cls not in ("Attention", "AdditiveAttention"):
        return args, {}
    options = {k: kwargs.pop(k) for k in _CALL_OPTIONS if k in kwargs and kwargs[k]}
    if cls in _ATTENTION:
        parts = list(args) + [kwargs.pop(k) for k in ("query", "value", "key")
                              if k in kwargs and kwargs[k] is not None]
        kwargs.pop("key", None)
        args = [tuple(parts)] if len(parts) > 1 else args
        mask = kwargs.pop("attention_mask", None)
        if isinstance(mask, SymbolicTensor):    # a tensor of the graph: (inputs, mask)
            args, options["mask_input"] = [(args[0], mask)], True
        elif mask is not None:                  # a constant array
            options["fixed_mask"] = mask
    return args, options


_RECURRENT = {"SimpleRNN": R.SimpleRNN, "LSTM": R.LSTM, "GRU": R.GRU, "RNN": R.RNN}

# Layers whose jaxlayers constructor takes Keras' config unchanged.
_GENERIC = [
    L.Dense, L.Activation, L.Dropout, S.Flatten, S.Reshape, S.Permute, S.RepeatVector,
    C.Conv1D, C.Conv2D, C.Conv3D, C.Conv1DTranspose, C.Conv2DTranspose, C.Conv3DTranspose,
    C.DepthwiseConv1D, C.DepthwiseConv2D, C.SeparableConv1D, C.SeparableConv2D,
    P.MaxPooling1D, P.MaxPooling2D, P.MaxPooling3D,
    P.AveragePooling1D, P.AveragePooling2D, P.AveragePooling3D,
    P.GlobalMaxPooling1D, P.GlobalMaxPooling2D, P.GlobalMaxPooling3D,
    P.GlobalAveragePooling1D, P.GlobalAveragePooling2D, P.GlobalAveragePooling3D,
    S.UpSampling1D, S.UpSampling2D, S.UpSampling3D, S.ZeroPadding1D, S.ZeroPadding2D,
    S.ZeroPadding3D, S.Cropping1D, S.Cropping2D, S.Cropping3D,
    E.Embedding, E.Masking,
    N.LayerNormalization, N.RMSNormalization, N.GroupNormalization, N.UnitNormalization,
    G.SpatialDropout1D, G.SpatialDropout2D, G.SpatialDropout3D, G.GaussianNoise,
    G.GaussianDropout, G.AlphaDropout, G.ActivityRegularization,
    A.ReLU, A.LeakyReLU, A.ELU, A.PReLU, A.Softmax,
    M.Add, M.Subtract, M.Multiply, M.Average, M.Maximum, M.Minimum, M.Concatenate, M.Dot,
]

CONVERTERS = {
    "InputLayer": _no_params(lambda kl: L.InputLayer(tuple(kl.batch_shape[1:]))),
    **{ctor.__name__: generic(ctor) for ctor in _GENERIC},
    "BatchNormalization": generic(N.BatchNormalization, (
        "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev")),
    **{name: _recurrent(ctor) for name, ctor in _RECURRENT.items() if name != "RNN"},
    "RNN": _rnn,
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
    "EinsumDense": generic(ED.EinsumDense),
    **{name: _attention(ctor) for name, ctor in _ATTENTION.items()},
    "Attention": _with_options(SA.Attention),
    "AdditiveAttention": _with_options(SA.AdditiveAttention),
}

# keras.ops calls in a functional graph (``x + 3.0``): class name -> ``(op, args) -> (layer,
# args)``, filled by io/keras_applications.py.
OPERATIONS = {}


def _convert_layer(kl, memo=None):
    """``(layer, params, state)`` of one Keras layer or nested model; `memo` maps
    ``id(keras layer)`` to its conversion, so a shared layer converts to one Layer."""
    keras = _keras()
    memo = {} if memo is None else memo
    if id(kl) in memo:
        return memo[id(kl)]
    cls = type(kl).__name__
    if isinstance(kl, keras.Model):
        out = _convert_model(kl, memo)[:3]
    elif not isinstance(kl, keras.layers.Layer):
        raise KerasImportError(
            f"Keras operation {cls} ({kl.name!r}) is not a layer (a keras.ops call in a "
            f"functional model); jaxlayers converts layers only: wrap the computation in a "
            f"layer jaxlayers has")
    elif cls not in CONVERTERS:
        raise KerasImportError(
            f"Keras layer {cls} ({kl.name!r}) has no jaxlayers converter; jaxlayers converts "
            f"{', '.join(sorted(CONVERTERS))} (register one in "
            f"jaxlayers.io.keras_import.CONVERTERS)")
    else:
        out = CONVERTERS[cls](kl)
    memo[id(kl)] = out
    return out


def _convert_model(km, memo):
    """``(layer, params, states, input_shape)``: a `serial` for a Sequential model, a
    `Model` graph with Keras' layer names for a functional one."""
    keras = _keras()
    if isinstance(km, keras.Sequential):
        return _convert_sequential(km, memo)
    if type(km).__name__ != "Functional" and not hasattr(km, "_nodes_by_depth"):
        raise KerasImportError(f"model {km.name!r} ({type(km).__name__}) is a subclassed "
                               f"Keras model; only Sequential and functional models can be "
                               f"imported")
    return _convert_functional(km, memo)


def _convert_sequential(km, memo):
    kls = [l for l in km.layers if type(l).__name__ != "InputLayer"]
    converted = [_convert_layer(l, memo) for l in kls]
    input_shape = as_shape(tuple(km.inputs[0].shape))      # children keep Keras' names
    # a stateful RNN needs the fixed batch size Keras was built with
    stateful = any(getattr(kl, "stateful", False) for kl in km._flatten_layers())
    batch = input_shape[0] if stateful else None
    layers = [L.InputLayer(tuple(input_shape[1:]), batch)] + [named(c[0], l.name)
                                                              for c, l in zip(converted, kls)]
    model = named(serial(*layers, name=km.name), km.name)
    params = ((),) + tuple(c[1] for c in converted)
    states = (None,) + tuple(c[2] for c in converted)
    return model, params, states, input_shape


def _convert_functional(km, memo):
    """Replay Keras' graph on jaxlayers' symbolic tensors, node by node in Keras' order."""
    keras = _keras()
    tensors = {}
    for t in km.inputs:
        source = t._keras_history.operation
        tensors[id(t)] = Input(batch_shape=tuple(t.shape), name=source.name,
                               dtype=np.dtype(t.dtype))
    layers, params, states = {}, {}, {}
    needed = _needed_nodes(km)
    for depth in sorted(km._nodes_by_depth, reverse=True):
        for node in km._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input or id(node) not in needed:
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            kwargs = {k: v for k, v in kwargs.items() if k not in ("mask", "training")}
            args, options = _attention_call(op, args, kwargs)
            operation = None                  # a keras.ops call with a converter
            if not isinstance(op, keras.layers.Layer) and type(op).__name__ in OPERATIONS:
                operation, args = OPERATIONS[type(op).__name__](op, list(args))
            if len(args) != 1 or kwargs:
                raise KerasImportError(
                    f"model {km.name!r}: layer {op.name!r} is called with "
                    f"{len(args)} positional argument(s) and keyword(s) {sorted(kwargs)}; "
                    f"only calls on one tensor or one list of tensors can be imported")
            if op.name not in layers:
                layer, p, s = ((operation, (), None) if operation is not None
                               else _convert_layer(op, memo) if not options
                               else CONVERTERS[type(op).__name__](op, **options))
                layers[op.name] = named(layer, op.name)
                params[op.name], states[op.name] = p, s
            out = layers[op.name](args[0])
            flat = jax.tree_util.tree_leaves(out, is_leaf=lambda x: isinstance(x, SymbolicTensor))
            for kt, jt in zip(node.outputs, flat):
                tensors[id(kt)] = jt
    pack = keras.tree.pack_sequence_as
    inputs = pack(km._inputs_struct, [tensors[id(t)] for t in km.inputs])
    outputs = pack(km._outputs_struct, [tensors[id(t)] for t in km.outputs])
    model = Model(inputs, outputs, name=km.name)
    input_shape = jax.tree_util.tree_map(lambda t: t.shape, inputs,
                                         is_leaf=lambda x: isinstance(x, SymbolicTensor))
    return model, params, states, input_shape


def _needed_nodes(km) -> set:
    """``id`` of each node the outputs depend on through the layers' inputs. Masks are
    left out: Keras computes them with ops of their own (``not_equal`` for
    Embedding(mask_zero=True)) and passes them as ``mask=``; jaxlayers' layers make and
    pass their masks themselves."""
    keras = _keras()
    needed, todo = set(), list(km.outputs)
    while todo:
        t = todo.pop()
        op, node_index, _ = t._keras_history
        node = op._inbound_nodes[node_index]
        if id(node) in needed:
            continue
        needed.add(id(node))
        args = node.arguments
        deps = keras.tree.flatten((args.args, {k: v for k, v in args.kwargs.items()
                                               if k != "mask"}))
        todo.extend(d for d in deps if isinstance(d, keras.KerasTensor))
    return needed


def _fill(default, given):
    """The state tree `default` with the arrays `given` put in (None: keep the default)."""
    if given is None:
        return default
    if isinstance(default, tuple) and isinstance(given, tuple):
        return tuple(_fill(d, g) for d, g in zip(default, given))
    if isinstance(default, dict) and isinstance(given, dict) and set(given) <= set(default):
        return {k: _fill(v, given.get(k)) for k, v in default.items()}
    return given


def _check(what, model, ref, got):
    ref_flat, ref_def = jax.tree_util.tree_flatten_with_path(ref)
    got_flat, got_def = jax.tree_util.tree_flatten_with_path(got)
    bad = [f"{jax.tree_util.keystr(p)}: Keras {np.shape(g)} vs jaxlayers {r.shape}"
           for (p, r), (_, g) in zip(ref_flat, got_flat) if tuple(np.shape(g)) != r.shape]
    if ref_def != got_def or bad:
        raise KerasImportError(f"converted {what} do not fit {model.name}: "
                               f"{'; '.join(bad) or f'Keras {got_def} vs jaxlayers {ref_def}'}")
    return jax.tree_util.tree_map(lambda a, r: np.asarray(a, r.dtype), got, ref)


def _place(model, params, states, input_shape):
    """Check the converted params and state against the model's own init (shapes,
    structure), filling in the states a converter left to the default."""
    _, ref_params, ref_state = jax.eval_shape(
        lambda k: with_state(model).init(k, input_shape), jax.random.key(0))
    params = _check("weights", model, ref_params, params)
    if not model.stateful:
        return params, ()
    _, _, state = with_state(model).init(jax.random.key(0), input_shape)
    state = _check("state", model, ref_state, _fill(state, states))
    return params, state


def from_keras(model_or_path, model=None):
    """Convert a Keras 3 model to ``(layer, params, state)``.

    `model_or_path` is a Keras model, a ``.keras`` file, or a ``.weights.h5`` file (then
    `model` must be a Keras model of the same architecture; the weights are loaded into it
    first). A Sequential model becomes a `serial` that starts with an `InputLayer` holding
    Keras' input shape, each layer labelled with its Keras name, so
    ``layer.init(key, None)`` works; a functional model (branches,
    merges, several inputs / outputs, shared layers, nested models) becomes a `jl.Model`
    whose params are keyed by Keras' layer names. `state` is ``()`` unless the model is
    stateful (BatchNormalization's moving statistics are carried over). Supported: every
    layer in `CONVERTERS` (see docs/training.md); anything else raises `KerasImportError`
    naming the layer. Outputs match Keras within float32 rounding; weight regularizers
    and constraints are carried over.
    """
    keras = _keras()
    km = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        if path.endswith(".weights.h5"):
            if model is None:
                raise KerasImportError(f"from_keras: {path!r} holds weights only; pass "
                                       f"model=<a Keras model of the same architecture>")
            model.load_weights(path)
            km = model
        elif path.endswith(".keras"):
            km = load_keras_file(path, keras, KerasImportError)
        else:
            raise KerasImportError(f"from_keras: expected a .keras or .weights.h5 file, got "
                                   f"{path!r}")
    if not isinstance(km, keras.Model):
        raise KerasImportError(f"from_keras: expected a Keras model or a path, got {km!r}")
    layer, params, states, input_shape = _convert_model(km, {})
    params, state = _place(layer, params, states, input_shape)
    return layer, params, state
