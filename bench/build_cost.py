"""Python-time costs: `init` of the MLP, and building + initialising a 200-layer chain of
Dense(16, relu) layers (the cost of the model object and of creating its params, eagerly,
as a user's script pays it once). Medians of a few runs, milliseconds.
"""
from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp

from .common import peer
from .timing import LoadProbe, Unavailable

NAME = "build_cost"
DEPTH, WIDTH = 200, 16
FIELDS = ["impl", "mlp_init_ms", "chain200_build_ms", "chain200_first_init_ms",
          "chain200_init_ms", "others_cores", "note"]


def _median_ms(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1e3


def _libs():
    """name -> (build(sizes) -> model, init(model, n_in) -> params)."""
    key = jax.random.key(0)

    def jaxlayers():
        import jaxlayers as jl
        build = lambda sizes: jl.serial(*[jl.Dense(s, activation="relu") for s in sizes])
        return build, lambda m, n: m.init(key, (None, n))[1]

    def stax():
        s = peer("jax.example_libraries.stax")

        def build(sizes):
            layers = []
            for h in sizes:
                layers += [s.Dense(h), s.Relu]
            return s.serial(*layers)
        return build, lambda m, n: m[0](key, (-1, n))[1]

    def linen():
        nn = peer("flax.linen")

        def build(sizes):
            class Chain(nn.Module):
                @nn.compact
                def __call__(self, x):
                    for h in sizes:
                        x = nn.relu(nn.Dense(h)(x))
                    return x
            return Chain()
        return build, lambda m, n: m.init(key, jnp.zeros((1, n)))

    def nnx():
        x = peer("flax.nnx")

        def build(sizes):
            dims = [None] + list(sizes)
            return dims
        # NNX creates the params when the module is built: time construction as init.
        def init(dims, n):
            dims = [n] + dims[1:]
            return x.state(x.Sequential(*[y for a, b in zip(dims[:-1], dims[1:])
                                          for y in (x.Linear(a, b, rngs=x.Rngs(0)), x.relu)]))
        return build, init

    def equinox():
        eqx = peer("equinox")

        def build(sizes):
            return list(sizes)

        def init(sizes, n):   # Equinox creates the params when the module is built
            dims = [n] + sizes
            keys = jax.random.split(key, len(sizes))
            return eqx.nn.Sequential([y for a, b, k in zip(dims[:-1], dims[1:], keys)
                                      for y in (eqx.nn.Linear(a, b, key=k),
                                                eqx.nn.Lambda(jax.nn.relu))])
        return build, init

    def haiku():
        hk = peer("haiku")

        def build(sizes):
            return hk.transform(lambda x: hk.Sequential(
                [y for h in sizes for y in (hk.Linear(h), jax.nn.relu)])(x))
        return build, lambda t, n: t.init(key, jnp.zeros((1, n)))

    def keras():
        k = peer("keras")

        def build(sizes):
            return [k.layers.Dense(h, activation="relu") for h in sizes]

        def init(layers, n):
            m = k.Sequential([k.Input((n,))] + layers)
            return [v.value for v in m.weights]
        return build, init

    return {"jaxlayers": jaxlayers, "stax": stax, "linen": linen, "nnx": nnx,
            "equinox": equinox, "haiku": haiku, "keras": keras}


def run(quick=False):
    n = 1 if quick else 5
    rows = []
    for name, make in _libs().items():
        try:
            build, init = make()
        except Unavailable as e:
            rows.append({"impl": name, "note": str(e)})
            continue
        mlp_build = lambda: build([512, 512, 10])
        init(mlp_build(), 784)                       # warm-up: eager ops compile once
        init(build([WIDTH] * 2), WIDTH)
        with LoadProbe() as probe:
            mlp_init = _median_ms(lambda: init(mlp_build(), 784), n)
            chain_build = _median_ms(lambda: (build([WIDTH] * DEPTH), 0)[1], n)
            # the first init of a new model size pays any compilation that depends on it
            chain_first = _median_ms(lambda: init(build([WIDTH] * DEPTH), WIDTH), 1)
            chain_init = _median_ms(lambda: init(build([WIDTH] * DEPTH), WIDTH), max(1, n // 2))
        note = "params are created when the model is built: build time is in init" \
            if name in ("nnx", "equinox") else ""
        if name == "keras":
            note = "layers built and weights created by Sequential(Input, ...): in init"
        rows.append({"impl": name, "mlp_init_ms": f"{mlp_init:.1f}",
                     "chain200_build_ms": f"{chain_build:.2f}",
                     "chain200_first_init_ms": f"{chain_first:.1f}",
                     "chain200_init_ms": f"{chain_init:.1f}",
                     "others_cores": f"{probe.others:.2f}", "note": note})
        print(f"    {name:<10} mlp init {mlp_init:8.1f} ms  200-layer build {chain_build:8.2f} ms"
              f"  first init {chain_first:8.1f} ms  init {chain_init:8.1f} ms")
    return rows
