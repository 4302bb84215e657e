"""Benchmarks of jaxlayers against hand-written jax.numpy / lax and the peer libraries.

Run ``make bench`` (or ``python -m bench --help``); see docs/bench.md.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
