"""`from_keras`: a Keras 3 model (object, ``.keras`` file, or ``.weights.h5`` + architecture)
as a jaxlayers model with its params.

Each Keras layer class is converted by a function registered in `CONVERTERS`, a dict from
the Keras class name to ``converter(keras_layer) -> (layer, params, state)``: a jaxlayers
Layer, its params in jaxlayers' layout (numpy arrays), and its state (or None to take
the state its ``init`` builds). Another layer family adds its own entries, e.g.

    from jaxlayers.io.keras_import import CONVERTERS, keras_weights
    CONVERTERS["Conv2D"] = lambda kl: (jl.Conv2D(...), keras_weights(kl), None)

A layer class without a converter raises `KerasImportError` naming it.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from ..core import as_shape, with_state
from ..combinators import serial
from ..layers import core as L


class KerasImportError(ValueError):
    """A Keras model that `from_keras` cannot convert."""


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        raise ImportError("jl.from_keras needs Keras 3: pip install 'jaxlayers[keras]'") from None
    return keras


def keras_weights(layer) -> dict:
    """``{weight name: numpy array}`` of a Keras layer (``kernel``, ``bias``, ...)."""
    return {v.path.split("/")[-1]: np.asarray(v.numpy()) for v in layer.weights}


def _serialized(obj):
    """A Keras regularizer / constraint as ``(class name, config)``, or None."""
    if obj is None:
        return None
    keras = _keras()
    cfg = keras.saving.serialize_keras_object(obj)
    return cfg["class_name"], cfg.get("config", {})


def _regularizer(obj, where):
    from .. import regularizers
    s = _serialized(obj)
    if s is None:
        return None
    name, cfg = s
    table = {"L1": regularizers.L1, "L2": regularizers.L2, "L1L2": regularizers.L1L2,
             "OrthogonalRegularizer": regularizers.OrthogonalRegularizer}
    if name not in table:
        raise KerasImportError(f"{where}: regularizer {name} has no jaxlayers equivalent")
    return table[name](**{k: v for k, v in cfg.items() if k in ("l1", "l2", "factor", "mode")})


def _constraint(obj, where):
    from .. import constraints
    s = _serialized(obj)
    if s is None:
        return None
    name, cfg = s
    table = {"MaxNorm": constraints.MaxNorm, "MinMaxNorm": constraints.MinMaxNorm,
             "UnitNorm": constraints.UnitNorm, "NonNeg": constraints.NonNeg}
    if name not in table:
        raise KerasImportError(f"{where}: constraint {name} has no jaxlayers equivalent")
    return table[name](**cfg)


def _activation_name(layer, fn):
    keras = _keras()
    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        raise KerasImportError(f"{type(layer).__name__} {layer.name!r}: custom activation "
                               f"{name} has no jaxlayers equivalent")
    return None if name == "linear" else name


# --------------------------------------------------------------------------- converters


def _dense(kl):
    where = f"Dense {kl.name!r}"
    layer = L.Dense(kl.units, activation=_activation_name(kl, kl.activation),
                    use_bias=kl.use_bias,
                    kernel_regularizer=_regularizer(kl.kernel_regularizer, where),
                    bias_regularizer=_regularizer(kl.bias_regularizer, where),
                    activity_regularizer=_regularizer(kl.activity_regularizer, where),
                    kernel_constraint=_constraint(kl.kernel_constraint, where),
                    bias_constraint=_constraint(kl.bias_constraint, where))
    w = keras_weights(kl)
    params = {"kernel": w["kernel"]}
    if kl.use_bias:
        params["bias"] = w["bias"]
    return layer, params, None


def _no_params(make):
    def convert(kl):
        return make(kl), (), None
    return convert


CONVERTERS = {
    "Dense": _dense,
    "Dropout": _no_params(lambda kl: L.Dropout(kl.rate, noise_shape=kl.noise_shape)),
    "Flatten": _no_params(lambda kl: L.Flatten(kl.data_format)),
    "Reshape": _no_params(lambda kl: L.Reshape(kl.target_shape)),
    "Activation": _no_params(lambda kl: L.Activation(_activation_name(kl, kl.activation)
                                                     or "linear")),
    "Permute": _no_params(lambda kl: L.Permute(kl.dims)),
    "RepeatVector": _no_params(lambda kl: L.RepeatVector(kl.n)),
    "InputLayer": _no_params(lambda kl: L.InputLayer(tuple(kl.batch_shape[1:]))),
}


def _model_layers(km):
    """The layers of a Sequential model, or of a functional model that is a plain chain."""
    keras = _keras()
    if isinstance(km, keras.Sequential):
        return [l for l in km.layers if type(l).__name__ != "InputLayer"]
    if len(km.inputs) != 1 or len(km.outputs) != 1:
        raise KerasImportError(f"model {km.name!r}: only single-input, single-output models "
                               f"whose layers form a chain can be imported")
    chain = [l for l in km.layers if type(l).__name__ != "InputLayer"]
    prev = km.inputs[0]
    for l in chain:
        if l.input is not prev:
            raise KerasImportError(f"model {km.name!r}: layer {l.name!r} does not take the "
                                   f"previous layer's output; only chains can be imported")
        prev = l.output
    return chain


def _convert_layer(kl):
    keras = _keras()
    cls = type(kl).__name__
    if isinstance(kl, keras.Model):
        return _convert_model(kl)[:3]
    if cls not in CONVERTERS:
        raise KerasImportError(
            f"Keras layer {cls} ({kl.name!r}) has no jaxlayers converter; jaxlayers converts "
            f"{', '.join(sorted(CONVERTERS))} (register one in "
            f"jaxlayers.io.keras_import.CONVERTERS)")
    return CONVERTERS[cls](kl)


def _convert_model(km):
    converted = [_convert_layer(l) for l in _model_layers(km)]
    input_shape = as_shape(tuple(km.inputs[0].shape))
    layers = [L.InputLayer(tuple(input_shape[1:]))] + [c[0] for c in converted]
    model = serial(*layers, name=km.name)
    params = ((),) + tuple(c[1] for c in converted)
    states = (None,) + tuple(c[2] for c in converted)
    return model, params, states, input_shape


def _place(model, params, states, input_shape):
    """Check the converted params against the model's own init; fill in default states."""
    _, ref_params, ref_state = jax.eval_shape(
        lambda k: with_state(model).init(k, input_shape), jax.random.key(0))
    ref_flat, ref_def = jax.tree_util.tree_flatten_with_path(ref_params)
    got_flat, got_def = jax.tree_util.tree_flatten_with_path(params)
    bad = [f"{jax.tree_util.keystr(p)}: Keras {np.shape(g)} vs jaxlayers {r.shape}"
           for (p, r), (_, g) in zip(ref_flat, got_flat) if tuple(np.shape(g)) != r.shape]
    if ref_def != got_def or bad:
        raise KerasImportError(f"converted weights do not fit {model.name}: "
                               f"{'; '.join(bad) or 'different structure'}")
    params = jax.tree_util.tree_map(lambda a, r: np.asarray(a, r.dtype), params, ref_params)
    if not model.stateful:
        return params, ()
    _, _, state = with_state(model).init(jax.random.key(0), input_shape)
    state = tuple(s if c is None else c for s, c in zip(state, states))
    return params, state


def from_keras(model_or_path, model=None):
    """Convert a Keras 3 model to ``(layer, params, state)``.

    `model_or_path` is a Keras model, a ``.keras`` file, or a ``.weights.h5`` file (then
    `model` must be a Keras model of the same architecture; the weights are loaded into it
    first). The result is a `serial` model that starts with an `InputLayer` holding Keras'
    input shape, so ``layer.init(key, None)`` works; `state` is ``()`` unless the model is
    stateful. Supported: Sequential models and chain-shaped functional models of the
    layers in `CONVERTERS` (nested models too). Outputs match Keras within float32
    rounding; weight regularizers and constraints are carried over.
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
            km = keras.saving.load_model(path, compile=False)
        else:
            raise KerasImportError(f"from_keras: expected a .keras or .weights.h5 file, got "
                                   f"{path!r}")
    if not isinstance(km, keras.Model):
        raise KerasImportError(f"from_keras: expected a Keras model or a path, got {km!r}")
    layer, params, states, input_shape = _convert_model(km)
    params, state = _place(layer, params, states, input_shape)
    return layer, params, state
