"""Strict settings for the whole suite (set before jax or keras is used by a test)."""
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite compiles thousands of small programs: ask XLA:CPU for quick compiles rather
# than fast code (about 2.5x less CPU time for the suite; the classic elemental emitter
# compiles a fusion ~30% quicker than the newer fusion emitters, and one LLVM module per
# program ~15% quicker than modules split for threads the busy workers do not have).
# Same HLO, same semantics; speed is measured in bench/, never here. Subprocess tests
# inherit the flags.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                           " --xla_llvm_disable_expensive_passes=true"
                           " --xla_cpu_use_fusion_emitters=false"
                           " --xla_cpu_parallel_codegen_split_count=1")
# One compilation cache for the run, shared by the xdist workers and the subprocess tests
# (they compile many of the same small programs: ~10% less CPU time). A fresh folder each
# run, made by the first process (the controller; workers inherit it) and removed by it.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxlayers-tests-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# (A worker that reads an entry another is still writing gets a truncated stream: jax warns
# "Error reading persistent compilation cache entry" and compiles it itself. A size limit
# would lock the cache, but its eviction scan of every entry on each write is far slower.)

import jax  # noqa: E402

# Silent broadcasting bugs in jaxlayers fail loudly. Keras itself relies on implicit
# rank promotion: compute Keras references inside `jax.numpy_rank_promotion("allow")`.
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
