"""Keras-style lookup of a callable by name: the one rule behind every ``get``."""
from __future__ import annotations

__all__ = ["get_by_name"]


def get_by_name(identifier, table: dict, kind: str, signature: str):
    """Keras-style lookup: None or a callable as is, a class instantiated, a name from
    `table` instantiated with its defaults; anything else a ValueError listing the names."""
    if identifier is None or callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, type):
        return identifier()
    if isinstance(identifier, str) and identifier in table:
        return table[identifier]()
    raise ValueError(f"unknown {kind} {identifier!r}; valid names: "
                     f"{', '.join(sorted(k for k in table if k.islower()))}, or a callable "
                     f"{signature}")
