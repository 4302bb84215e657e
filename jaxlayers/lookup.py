"""Keras-style lookup by name: the one rule behind every ``get`` (activations, initializers,
regularizers, constraints)."""
from __future__ import annotations

__all__ = ["by_name", "get_by_name"]


def by_name(identifier: str, table: dict, kind: str):
    """``table[identifier]``, or a ValueError that names `kind` and lists the valid names."""
    try:
        return table[identifier]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown {kind} {identifier!r}. Valid names: "
                         f"{', '.join(sorted(table))}.") from None


def get_by_name(identifier, table: dict, kind: str, signature: str):
    """Keras-style ``get`` for callables made by classes: None or a callable as is, a class
    instantiated, a name from `table` instantiated with its defaults; anything else a
    ValueError listing the names."""
    if identifier is None or callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, type):
        return identifier()
    if isinstance(identifier, str):
        return by_name(identifier, table, kind)()
    raise ValueError(f"Could not interpret {kind} {identifier!r}: expected None, a callable "
                     f"{signature} or one of the names {', '.join(sorted(table))}.")
