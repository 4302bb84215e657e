"""Two processes on this machine, one jax program: `jax.distributed.initialize` with a
localhost coordinator, CPU collectives through gloo, 2 forced host devices each (a mesh of
4 devices over 2 processes). Each trains data-parallel and FSDP for a few steps; the losses
and final params equal a single-process run.

The same command by hand (two shells, or `&`):

    XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu python tests/test_multiprocess.py 0 2 12355 out.json &
    XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu python tests/test_multiprocess.py 1 2 12355 out.json

(arguments: process id, process count, coordinator port, the file process 0 writes).
"""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

TIMEOUT_S = 300


def _data():
    r = np.random.default_rng(0)
    x = r.normal(size=(32, 6)).astype(np.float32)
    return x, r.integers(0, 3, 32)


def _train(jl, optax, jax, mesh=None, layout=None):
    """The run both sides do: 2 epochs of 4 steps, Adam, dropout (keys do not depend on the
    layout)."""
    model = jl.serial(jl.Dense(32), jl.relu, jl.Dropout(0.1), jl.Dense(16), jl.relu,
                      jl.Dense(3))
    _, params = model.init(jax.random.key(0), (None, 6))
    x, y = _data()
    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    return jl.fit(model, params, optax.adam(0.01), loss, x, y, epochs=2, batch_size=8,
                  verbose=0, rng=1, mesh=mesh, layout=layout)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    import jax
    import optax

    import jaxlayers as jl
    port, out = _free_port(), tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=os.getcwd(), JAX_PLATFORMS="cpu",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "") +   # the suite's quick-compile flags
               " --xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen([sys.executable, __file__, str(i), "2", str(port), str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for i in range(2)]
    logs = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        for p in procs:
            logs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    finally:
        for p in procs:                  # never leave a worker behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"process {i} failed:\n{logs[i][-4000:]}"
    result = json.loads(out.read_text())
    assert result["process_count"] == 2 and result["device_count"] == 4
    ts1, h1 = _train(jl, optax, jax)
    for name in ("data_parallel", "fsdp"):
        run = result[name]
        np.testing.assert_allclose(run["loss"], h1["loss"], rtol=1e-5, atol=1e-6)
        for got, want in zip(run["params"], jax.tree.leaves(ts1.params)):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5)
    assert result["fsdp"]["split"] and not result["data_parallel"]["split"]


def _worker(process_id, count, port, out):
    """One process of the run: join the coordinator, train under each layout, and (process
    0) write the losses and the gathered final params to `out`."""
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=count,
                               process_id=process_id, initialization_timeout=120)
    import optax
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh

    import jaxlayers as jl
    mesh = Mesh(np.array(jax.devices()), ("data",))
    result = {"process_count": jax.process_count(), "device_count": jax.device_count()}
    for name, layout in (("data_parallel", jl.DataParallel()), ("fsdp", jl.FSDP(min_size=0))):
        ts, history = _train(jl, optax, jax, mesh, layout)
        leaves = jax.tree.leaves(ts.params)
        full = multihost_utils.process_allgather(leaves, tiled=True)
        result[name] = {"loss": history["loss"],
                        "params": [np.asarray(a).tolist() for a in full],
                        "split": any(not a.sharding.is_fully_replicated for a in leaves)}
    if process_id == 0:
        with open(out, "w") as f:
            json.dump(result, f)
    jax.distributed.shutdown()


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
