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
    out = mlp.builders(cfg, x, y, n_in=IN, hidden=HIDDEN, dtype=dtype)
    if dtype == "float32":   # what dict-shaped params cost per call, apart from any library
        ws = mlp.dense_weights(mlp.sizes(IN, HIDDEN))
        out = {"hand": out.pop("hand"), "hand_dict": lambda: mlp.build_hand_dict(ws), **out}
    return out
