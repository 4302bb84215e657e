"""Reading a Keras layer for `from_keras`: its weights (`keras_weights`), its config as the
arguments of a jaxlayers constructor (`keras_arguments`: activations, initializers,
regularizers and constraints mapped, Keras-only entries refused), and `generic(ctor)`, the
converter of a layer whose jaxlayers constructor takes Keras' config as is.

The converter table and the graph walk are in `keras_import`; a module of converters imports
its helpers from here (no import circle) and registers them in `keras_import.CONVERTERS`.
"""
from __future__ import annotations

import inspect
import os

import numpy as np

__all__ = ["KerasImportError", "keras_weights", "keras_arguments", "generic", "build",
           "keras_label", "import_keras"]


class KerasImportError(ValueError):
    """A Keras model that `from_keras` cannot convert."""


def import_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        raise ImportError("jl.from_keras needs Keras 3: pip install 'jaxlayers[keras]'") from None
    return keras


def keras_weights(layer) -> dict:
    """``{weight name: numpy array}`` of a Keras layer (``kernel``, ``bias``, ...)."""
    return {v.path.split("/")[-1]: np.asarray(v.numpy()) for v in layer.weights}


def _rebuilt(obj, get, what, where):
    """A Keras regularizer / constraint object as jaxlayers' own (`get` rebuilds it from its
    config, `lookup.from_config`), None for None; a custom class raises."""
    from ..lookup import is_keras_object
    if obj is None:
        return None
    if not is_keras_object(obj):
        raise KerasImportError(f"{where}: {what} {type(obj).__name__} has no jaxlayers "
                               f"equivalent")
    try:
        return get(obj)
    except ValueError as e:
        raise KerasImportError(f"{where}: {what} {type(obj).__name__}: {e}") from None


def _regularizer(obj, where):
    from .. import regularizers
    return _rebuilt(obj, regularizers.get, "regularizer", where)


def _constraint(obj, where):
    from .. import constraints
    return _rebuilt(obj, constraints.get, "constraint", where)


# --------------------------------------------------------------------------- arguments

# Keras config keys that carry no meaning for a pure layer (names and dtypes are the
# caller's; `synchronized` BatchNormalization equals the plain one on one device, and
# renorm_* only matter with renorm=True, refused below).
_IGNORED = {"name", "trainable", "dtype"}
# Keras config keys jaxlayers has no argument for, accepted only at these values.
_MUST_BE = {"quantization_config": None, "lora_rank": None,
            "lora_alpha": None, "zero_output_for_mask": False}


def keras_label(kl) -> str:
    """A Keras layer as errors name it: its class and its name."""
    return f"{type(kl).__name__} {kl.name!r}"


def _initializer(value):
    """A Keras initializer config as jaxlayers takes it, or None when it does not map."""
    from .. import initializers
    try:
        initializers.get(value)
    except (ValueError, TypeError):
        return None
    return value


def _live(kl, key, value, get):
    """The object behind config entry `key`: the layer's own (or its cell's) attribute
    (a set private ``_key`` first: MultiHeadAttention keeps its activity regularizer
    there, its public one is the base layer's None), else deserialized from the config."""
    for owner in (kl, getattr(kl, "cell", None)):
        if owner is not None and getattr(owner, "_" + key, None) is not None:
            return getattr(owner, "_" + key)
        if owner is not None and hasattr(owner, key):
            return getattr(owner, key)
    return get(value)


def keras_arguments(kl, ctor, *, skip=()) -> dict:
    """The arguments of jaxlayers' `ctor` read from the Keras layer `kl`'s config.

    jaxlayers' constructors take Keras' argument names, so each config entry is passed
    under its own name: activations by name, regularizers and constraints converted
    (`KerasImportError` when jaxlayers lacks one), initializers when jaxlayers knows
    them (else the default: the weights are copied anyway). A config entry jaxlayers has
    no argument for raises `KerasImportError`, unless it is meaningless here (the name,
    dtype policy) or at its harmless default (``renorm=False``, ...). `skip` names
    entries the caller handles itself.
    """
    keras = import_keras()
    where = keras_label(kl)
    accepted = inspect.signature(ctor).parameters
    out = {}
    try:
        config = kl.get_config()
    except NotImplementedError as e:          # a custom object without get_config
        raise KerasImportError(f"{where}: {e}; custom regularizers, constraints and "
                               f"initializers have no jaxlayers equivalent") from None
    for key, value in config.items():
        if key in skip or key in _IGNORED:
            continue
        if key not in accepted:
            if key in _MUST_BE and value == _MUST_BE[key]:
                continue
            raise KerasImportError(f"{where}: argument {key}={value!r} has no jaxlayers "
                                   f"equivalent")
        if key.endswith("_regularizer"):
            value = _regularizer(_live(kl, key, value, keras.regularizers.get), where)
        elif key.endswith("_constraint"):
            value = _constraint(_live(kl, key, value, keras.constraints.get), where)
        elif key.endswith("_initializer"):
            value = _initializer(value)
            if value is None:
                continue
        elif key in ("activation", "recurrent_activation"):
            if not isinstance(value, str):
                raise KerasImportError(f"{where}: custom {key} {value!r} has no jaxlayers "
                                       f"equivalent")
        out[key] = value
    return out


def build(kl, ctor, **kwargs):
    """``ctor(**kwargs)``; a ValueError (a configuration jaxlayers refuses) names `kl`."""
    try:
        return ctor(**kwargs)
    except ValueError as e:
        raise KerasImportError(f"{keras_label(kl)}: {e}") from None


def generic(ctor, state_names=()):
    """A converter for a layer whose jaxlayers constructor takes Keras' config as is and
    whose params are Keras' weights under the same names (those in `state_names`, such
    as BatchNormalization's moving statistics, go to the state instead)."""
    def convert(kl):
        layer = build(kl, ctor, **keras_arguments(kl, ctor))
        weights = keras_weights(kl)
        state = {k: weights.pop(k) for k in state_names if k in weights} or None
        return layer, weights or (), state
    convert.__name__ = f"convert_{ctor.__name__}"
    return convert
