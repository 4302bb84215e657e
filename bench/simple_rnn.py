"""SimpleRNN: (batch 64, time, 10) -> SimpleRNN 64 (tanh) -> Dense 1, MSE.

Same module as `bench.lstm` with the cell switched; see there.
"""
from __future__ import annotations

from . import lstm

NAME = "simple_rnn"
BASE = lstm.BASE
SCALING = lstm.SCALING
data = lstm.data


def builders(cfg, x, y, dtype="float32"):
    return lstm.builders(cfg, x, y, dtype=dtype, cell="simple_rnn")
