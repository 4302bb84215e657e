#!/usr/bin/env bash
# The benchmark suite on a GPU machine, in one short command (a few minutes), float32 and
# bfloat16, results labelled with the GPU's name:
#
#     bash bench/gpu.sh                 # into bench/results/gpu/
#     bash bench/gpu.sh --no-scaling    # any `python -m bench` option is passed on
#     bash bench/gpu.sh --workloads depthwise,mobilenetv2   # the grouped-conv rule only
#
# Every workload runs, `depthwise` and `mobilenetv2` included: their jaxlayers_xla and
# jaxlayers_shifted rows check the rule that keeps cuDNN's grouped conv on GPU; so do
# `transformer` (where jax.nn.dot_product_attention may pick cuDNN flash attention; with
# bfloat16 rows for hand, jaxlayers and jaxlayers_mha; its sweep to T=2048 reports each
# step's temporary memory) and the keras.applications
# imports `resnet50`, `efficientnetb0`, `convnexttiny`.
#
# It needs a Python whose jax sees the GPU (jax[cuda12] or jax[cuda13]) plus the bench
# extra: it uses $PY, else .venv/bin/python, else python3, and installs the extra (and
# jax's CUDA plugin) only when they are missing and a package index is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

if ! "$PY" -c "import flax, equinox, haiku, keras" 2>/dev/null; then
  "$PY" -m pip install -q -e '.[bench]' || echo "gpu.sh: could not install the bench extra; missing peers are skipped"
fi
if ! "$PY" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
  "$PY" -m pip install -q "jax[cuda12]==$("$PY" -c 'import jax; print(jax.__version__)')" || true
fi
if ! "$PY" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')"; then
  echo "gpu.sh: jax does not see a GPU here (backend: $("$PY" -c 'import jax; print(jax.default_backend())'))" >&2
  exit 1
fi
GPU=$("$PY" -c "import jax; d = jax.devices(); print(f'{d[0].device_kind} x{len(d)}')")
echo "gpu.sh: running on $GPU"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# Multi-device section: with several accelerators, every layout (data parallel, FSDP,
# tensor parallel, both) on 1, 2, 4, 8 of them: per-device params + optimizer bytes, step time.
NDEV=$("$PY" -c "import jax; print(jax.device_count())")
if [ "$NDEV" -gt 1 ]; then
  echo "gpu.sh: $NDEV devices: layouts (bench/sharding.py)"
  "$PY" -m bench.sharding --platform gpu --out "${OUT:-bench/results/gpu}/sharding.csv"
fi
exec "$PY" -m bench --out "${OUT:-bench/results/gpu}" --device "gpu: $GPU" \
  --passes 3 --budget 0.15 --warmup 2 --compiles 1 --dtypes float32,bfloat16 "$@"
