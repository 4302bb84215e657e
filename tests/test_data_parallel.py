"""Data-parallel fit over a jax.sharding Mesh of 4 CPU devices (in a subprocess, since
the device count is fixed when jax starts): same losses as on one device."""
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r'''
import json, os
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")   # the suite's quick compiles
                           + " --xla_force_host_platform_device_count=4")
import jax, numpy as np, optax
import jaxlayers as jl
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

assert len(jax.devices()) == 4
r = np.random.default_rng(0)
x = r.normal(size=(36, 5)).astype(np.float32)        # 36 = 4 full batches of 8 + 4 padded
y = (x[:, 0] > x[:, 1]).astype(np.int32)
loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
model = jl.serial(jl.Dense(16), jl.relu, jl.Dropout(0.2), jl.Dense(2))
_, params = model.init(jax.random.key(0), (None, 5))
kw = dict(epochs=3, batch_size=8, verbose=0, metrics=["accuracy"], validation_data=(x, y))
out = {}
ts1, h1 = jl.fit(model, params, optax.adam(0.01), loss, x, y, **kw)

mesh = Mesh(np.array(jax.devices()), ("data",))
ts4, h4 = jl.fit(model, params, optax.adam(0.01), loss, x, y, mesh=mesh, **kw)
out["single"] = h1.history
out["data4"] = h4.history
out["max_param_diff"] = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in
                            zip(jax.tree.leaves(ts1.params), jax.tree.leaves(ts4.params)))
k = ts4.params[0]["kernel"]
out["replicated"] = k.sharding.is_fully_replicated and len(k.sharding.device_set) == 4
out["eval4"] = jl.evaluate(model, ts4, x, y, loss=loss, mesh=mesh, batch_size=8)
out["eval1"] = jl.evaluate(model, ts1, x, y, loss=loss, batch_size=8)

# a large Dense kernel split over a "model" axis, the batch over "data"
big = jl.serial(jl.Dense(256), jl.relu, jl.Dense(2))
_, bp = big.init(jax.random.key(1), (None, 5))
mesh2 = Mesh(np.array(jax.devices()).reshape(2, 2), ("data", "model"))
sharded = (jax.device_put(bp[0], {"kernel": NamedSharding(mesh2, P(None, "model")),
                                   "bias": NamedSharding(mesh2, P("model"))}), (), bp[2])
tsb1, hb1 = jl.fit(big, bp, optax.sgd(0.1), loss, x, y, epochs=2, batch_size=8, verbose=0)
tsb, hb = jl.fit(big, sharded, optax.sgd(0.1), loss, x, y, epochs=2, batch_size=8, verbose=0,
                 mesh=mesh2)
kb = tsb.params[0]["kernel"]
out["kernel_spec"] = list(kb.sharding.spec)
out["kernel_shard_shape"] = list(kb.addressable_shards[0].data.shape)
out["big_single"] = hb1.history["loss"]
out["big_sharded"] = hb["loss"]
try:
    jl.fit(model, params, optax.sgd(0.1), loss, x, y, batch_size=6, mesh=mesh, verbose=0)
except ValueError as e:
    out["error"] = str(e)
print("RESULT" + json.dumps(out))
'''


@pytest.mark.slow
def test_data_parallel_matches_single_device(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd(), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    for key in out["single"]:
        assert abs(max(abs(a - b) for a, b in zip(out["single"][key], out["data4"][key]))) < 1e-5
    assert out["max_param_diff"] < 1e-5
    assert out["replicated"]
    assert abs(out["eval4"]["loss"] - out["eval1"]["loss"]) < 1e-5
    assert out["kernel_spec"] == [None, "model"]
    assert out["kernel_shard_shape"] == [5, 128]
    assert max(abs(a - b) for a, b in zip(out["big_single"], out["big_sharded"])) < 1e-5
    assert "batch_size 6 must be divisible by the 4 devices" in out["error"]
