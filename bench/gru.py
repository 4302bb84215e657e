"""GRU: (batch 64, time, 10) -> GRU 64 (Keras' default reset_after=True) -> Dense 1, MSE.

Same module as `bench.lstm` with the cell switched; see there.
"""
from __future__ import annotations

from . import lstm

NAME = "gru"
BASE = lstm.BASE
SCALING = lstm.SCALING
data = lstm.data


def builders(cfg, x, y, dtype="float32"):
    return lstm.builders(cfg, x, y, dtype=dtype, cell="gru")
