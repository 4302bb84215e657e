"""Keras-style lookup by name: the one rule behind every ``get`` (activations, initializers,
regularizers, constraints)."""
from __future__ import annotations

import numpy as np

__all__ = ["by_name", "from_config", "get_by_name", "is_keras_object"]


def by_name(identifier: str, table: dict, kind: str):
    """``table[identifier]``, or a ValueError that names `kind` and lists the valid names."""
    try:
        return table[identifier]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown {kind} {identifier!r}. Valid names: "
                         f"{', '.join(sorted(table))}.") from None


def is_keras_object(obj) -> bool:
    """Whether `obj` is an instance of a class of Keras' own (not a user's subclass)."""
    return type(obj).__module__.split(".")[0] == "keras"


def _config_value(value):
    """A value of a Keras config as Keras deserializes it: an array serialized as
    ``{"class_name": "__numpy__" or "__tensor__", "config": {"value", "dtype"}}`` back to a
    numpy array, a ``SeedGenerator`` to its int seed; anything else unchanged."""
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        name, config = value.get("class_name"), value["config"]
        if name in ("__numpy__", "__tensor__") and "value" in config:
            return np.asarray(config["value"], dtype=config.get("dtype"))
        if name == "SeedGenerator":
            return config.get("seed")
    return value


def from_config(identifier, table: dict, kind: str):
    """A Keras config dict (``{"class_name": name, "config": {...}}``) or a Keras object
    (one with ``get_config``, e.g. ``keras.regularizers.L2(0.1)``) rebuilt from `table`'s
    constructor of the same name with the config's arguments; None for anything else."""
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"A {kind} config dict needs a 'class_name' key, received "
                             f"{identifier!r}.")
        name, config = identifier["class_name"], identifier.get("config") or {}
    elif (is_keras_object(identifier)
          and callable(getattr(identifier, "get_config", None))):
        name, config = type(identifier).__name__, identifier.get_config()
    else:
        return None
    ctor = by_name(name, table, kind)
    config = {k: _config_value(v) for k, v in dict(config).items()}
    try:
        return ctor(**dict(config))
    except TypeError as e:
        raise ValueError(f"The {kind} {name} cannot take the config {config!r}: "
                         f"{e}") from None


def get_by_name(identifier, table: dict, kind: str, signature: str):
    """Keras-style ``get`` for callables made by classes: None or a callable as is, a class
    instantiated, a name from `table` instantiated with its defaults, a Keras config dict or
    Keras object rebuilt (`from_config`); anything else a ValueError listing the names."""
    rebuilt = from_config(identifier, table, kind)
    if rebuilt is not None:
        return rebuilt
    if identifier is None or callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, type):        # a Keras class's instance is rebuilt
        return get_by_name(identifier(), table, kind, signature)
    if isinstance(identifier, str):
        return by_name(identifier, table, kind)()
    raise ValueError(f"Could not interpret {kind} {identifier!r}: expected None, a callable "
                     f"{signature} or one of the names {', '.join(sorted(table))}.")
