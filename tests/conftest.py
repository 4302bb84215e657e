"""Strict settings for the whole suite (set before jax or keras is used by a test)."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite compiles thousands of small programs: ask XLA:CPU for quick compiles rather
# than fast code (about 2.5x less CPU time for the suite; the classic elemental emitter
# compiles a fusion ~30% quicker than the newer fusion emitters). Same HLO, same
# semantics; speed is measured in bench/, never here. Subprocess tests inherit the flags.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                           " --xla_llvm_disable_expensive_passes=true"
                           " --xla_cpu_use_fusion_emitters=false")

import jax  # noqa: E402

# Silent broadcasting bugs in jaxlayers fail loudly. Keras itself relies on implicit
# rank promotion: compute Keras references inside `jax.numpy_rank_promotion("allow")`.
jax.config.update("jax_numpy_rank_promotion", "raise")
