"""Tiny MLP for per-call overhead: (8, 16) -> Dense 16 relu -> Dense 16 relu -> Dense 10.

The arithmetic is negligible, so the time is dispatch: pytree flattening, argument
checks, Python wrappers around the jitted call.
"""
from __future__ import annotations

from . import mlp

NAME = "tiny_mlp"
IN, HIDDEN = 16, (16, 16)
BASE = {"batch": 8}
SCALING = []


def data(cfg):
    return mlp.data(cfg, n_in=IN)


def builders(cfg, x, y, dtype="float32"):
    return mlp.builders(cfg, x, y, n_in=IN, hidden=HIDDEN, dtype=dtype)
