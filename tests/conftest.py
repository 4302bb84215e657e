"""Strict settings for the whole suite (set before jax or keras is imported by a test)."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402

# Silent broadcasting bugs in jaxlayers fail loudly. Keras itself relies on implicit
# rank promotion: compute Keras references inside `jax.numpy_rank_promotion("allow")`.
jax.config.update("jax_numpy_rank_promotion", "raise")
