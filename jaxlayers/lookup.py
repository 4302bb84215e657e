"""Keras-style lookup by name: the one rule behind every ``get`` (activations, initializers,
regularizers, constraints)."""
from __future__ import annotations

__all__ = ["by_name", "from_config", "get_by_name"]


def by_name(identifier: str, table: dict, kind: str):
    """``table[identifier]``, or a ValueError that names `kind` and lists the valid names."""
    try:
        return table[identifier]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown {kind} {identifier!r}. Valid names: "
                         f"{', '.join(sorted(table))}.") from None


def from_config(identifier, table: dict, kind: str):
    """A Keras config dict (``{"class_name": name, "config": {...}}``) or a Keras object
    (one with ``get_config``, e.g. ``keras.regularizers.L2(0.1)``) rebuilt from `table`'s
    constructor of the same name with the config's arguments; None for anything else."""
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"A {kind} config dict needs a 'class_name' key, received "
                             f"{identifier!r}.")
        name, config = identifier["class_name"], identifier.get("config") or {}
    elif (type(identifier).__module__.split(".")[0] == "keras"
          and callable(getattr(identifier, "get_config", None))):
        name, config = type(identifier).__name__, identifier.get_config()
    else:
        return None
    ctor = by_name(name, table, kind)
    try:
        return ctor(**dict(config))
    except TypeError as e:
        raise ValueError(f"The {kind} {name} cannot take the config {dict(config)!r}: "
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
    if isinstance(identifier, type):
        return identifier()
    if isinstance(identifier, str):
        return by_name(identifier, table, kind)()
    raise ValueError(f"Could not interpret {kind} {identifier!r}: expected None, a callable "
                     f"{signature} or one of the names {', '.join(sorted(table))}.")
