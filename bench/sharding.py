"""Layouts on 1, 2, 4, 8 devices: per-device bytes of params + optimizer state, and step time.

    python -m bench.sharding                      # forced host devices, CPU
    python -m bench.sharding --platform gpu       # the accelerators present (bench/gpu.sh)

Each device count runs in its own process (on CPU with
XLA_FLAGS=--xla_force_host_platform_device_count=N, fixed when jax starts). Workloads: the
MLP 784-512-512-10 (batch 128) and a small transformer (Embedding, 2 blocks of
MultiHeadAttention + a Dense 4x feed-forward, sequence 64, batch 32). Layouts: data
parallel, FSDP over the data axis, tensor parallel over a "model" axis of 2, and tensor
parallel + FSDP on a (N/2, 2) mesh. The memory column is the largest, over devices, of the
bytes of the params and Adam's state held on one device: under FSDP it falls as 1/N. On a
2-core CPU the forced devices share the cores, so step times are reported, not targets.
Results: bench/results/sharding.csv (bench/results/gpu/sharding.csv with --platform gpu).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

COUNTS = (1, 2, 4, 8)
FIELDS = ["workload", "devices", "layout", "mesh", "param_opt_bytes_per_device",
          "fraction_of_one_device", "step_ms"]


def _workloads(jl):
    mlp = jl.serial(jl.Dense(512, activation="relu"), jl.Dense(512, activation="relu"),
                    jl.Dense(10))
    tokens = jl.Input((64,), dtype="int32")
    h = jl.Embedding(1024, 128)(tokens)
    for _ in range(2):
        a = jl.MultiHeadAttention(8, 16)([h, h])
        h = jl.LayerNormalization()(jl.Add()([h, a]))
        f = jl.Dense(128)(jl.Dense(512, activation="relu")(h))
        h = jl.LayerNormalization()(jl.Add()([h, f]))
    transformer = jl.Model(tokens, jl.Dense(10)(jl.GlobalAveragePooling1D()(h)))
    return {"mlp": (mlp, (None, 784), 128, "float"),
            "transformer": (transformer, None, 32, "tokens")}


def _layouts(jl, n):
    import jax
    import numpy as np
    from jax.sharding import Mesh
    devices = np.array(jax.devices()[:n])
    flat = Mesh(devices, ("data",))
    out = {"data_parallel": (flat, jl.DataParallel()), "fsdp": (flat, jl.FSDP())}
    if n >= 2:
        grid = Mesh(devices.reshape(n // 2, 2), ("data", "model"))
        out["tensor_parallel"] = (grid, jl.TensorParallel())
        out["tp+fsdp"] = (grid, jl.TensorParallel() + jl.FSDP())
    return out


def _per_device_bytes(tree):
    held = {}
    for a in __import__("jax").tree.leaves(tree):
        for shard in a.addressable_shards:
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return max(held.values())


def _measure(n, reps):
    """Run in the child: every workload under every layout on the first `n` devices."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import NamedSharding, PartitionSpec as P

    import jaxlayers as jl
    from jaxlayers.training.sharding import follow
    rows, key = [], jax.random.key(0)
    for wname, (model, shape, batch, kind) in _workloads(jl).items():
        r = np.random.default_rng(0)
        x = (r.normal(size=(batch, 784)).astype(np.float32) if kind == "float"
             else r.integers(0, 1024, (batch, 64)).astype(np.int32))
        y = r.integers(0, 10, batch).astype(np.int32)
        tx = optax.adam(1e-3)

        def loss_fn(p, xb, yb):
            return optax.softmax_cross_entropy_with_integer_labels(
                model.apply(p, xb), yb).mean()

        def step(p, o, xb, yb):
            loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
            u, o = tx.update(g, o, p)
            return optax.apply_updates(p, u), o, loss
        one_device = None
        for lname, (mesh, layout) in _layouts(jl, n).items():
            _, params = jl.sharded_init(model, key, shape, mesh, layout)
            p_sh = jax.tree.map(lambda a: a.sharding, params)
            o_sh = follow(jax.eval_shape(tx.init, params), params, p_sh, mesh)
            opt = jax.jit(tx.init, out_shardings=o_sh)(params)
            data = NamedSharding(mesh, P(mesh.axis_names[0]))
            xb, yb = jax.device_put(x, data), jax.device_put(y, data)
            fn = jax.jit(step, donate_argnums=(0, 1),
                         out_shardings=(p_sh, o_sh, NamedSharding(mesh, P())))
            held = _per_device_bytes((params, opt))
            params, opt, loss = fn(params, opt, xb, yb)            # compile
            jnp.asarray(loss).block_until_ready()
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                params, opt, loss = fn(params, opt, xb, yb)
                loss.block_until_ready()
                times.append(time.perf_counter() - t)
            if lname == "data_parallel":
                one_device = held
            rows.append({"workload": wname, "devices": n, "layout": lname,
                         "mesh": "x".join(str(v) for v in mesh.shape.values()),
                         "param_opt_bytes_per_device": held,
                         "fraction_of_one_device": round(held / one_device, 4),
                         "step_ms": round(1e3 * float(np.median(times)), 3)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--platform", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("ROWS" + json.dumps(_measure(args.child, args.reps)), flush=True)
        return
    rows = []
    for n in COUNTS:
        env = dict(os.environ)
        if args.platform == "cpu":
            env.update(JAX_PLATFORMS="cpu",
                       XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        else:
            have = int(subprocess.run([sys.executable, "-c", "import jax; print(jax.device_count())"
                                       ], capture_output=True, text=True, env=env).stdout or 0)
            if have < n:
                print(f"sharding bench: {have} accelerators, skipping {n}")
                continue
        proc = subprocess.run([sys.executable, "-m", "bench.sharding", "--child", str(n),
                               "--reps", str(args.reps)], capture_output=True, text=True,
                              env=env)
        if proc.returncode:
            raise SystemExit(f"sharding bench on {n} devices failed:\n{proc.stderr[-3000:]}")
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROWS")][-1]
        new = json.loads(line[4:])
        rows += new
        for row in new:
            print("  ".join(f"{row[k]}" for k in FIELDS), flush=True)
    out = args.out or ("bench/results/sharding.csv" if args.platform == "cpu"
                       else "bench/results/gpu/sharding.csv")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
