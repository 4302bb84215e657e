"""Probes behind the transformer section of docs/bench.md (run them on a quiet machine).

``python -m bench.transformer_probe compile [--rounds 7] [--impls hand,jaxlayers,...]``
    Where each implementation's compile time goes, for the transformer workload's training
    step at the base configuration: tracing alone (`jax.make_jaxpr`), trace + lower
    (`jit(step).lower(...)`) and XLA's compile (`.compile()`), each after
    `jax.clear_caches()`, medians of `--rounds` rounds with the implementations in turn
    (rotated start each round), wall and CPU seconds; and the size of what is compiled:
    jaxpr equations (nested ones included), StableHLO ops, optimized HLO instructions,
    fusions, transposes and copies.

``python -m bench.transformer_probe variants [--rounds 7] [--impls haiku,floor,...]``
    The same breakdown for the floor written several ways, one difference at a time
    (`bench.transformer_variants`: einsum or 2-D matmul projections, the attention's
    softmax, the LayerNorm arithmetic, the params' layout), next to any implementation.

``python -m bench.transformer_probe core [--lengths 128,512,1024] [--reps 7]``
    The attention core alone, forward and gradient (causal, batch 4, 4 heads of 32,
    jitted): `jax.nn.dot_product_attention` (XLA implementation) against the einsum path,
    the measurement behind `EINSUM_FROM_KEYS_ON_CPU` in jaxlayers/layers/attention.py.

Each prints a markdown table with the 1-minute load average before and after.
"""
from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import time

import jax
import jax.numpy as jnp

from . import transformer, transformer_variants

VARIANTS = list(transformer_variants.VARIANTS)
IMPLS = ["hand", "jaxlayers", "jaxlayers_mha", "linen", "nnx_split", "eqx_jit", "haiku",
         "keras_stateless"]


def jaxpr_size(jaxpr) -> int:
    """Equations of `jaxpr`, those of nested jaxprs (jit, custom_jvp, scan) included."""
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    n += jaxpr_size(inner)
    return n


def program_size(lowered, compiled) -> dict:
    """StableHLO ops of the lowered program; instructions, fusions, transposes and copies
    of XLA's optimized HLO."""
    optimized = compiled.as_text()
    return {"stablehlo_ops": len(re.findall(r"stablehlo\.\w+", lowered.as_text())),
            "hlo_instructions": sum(" = " in line for line in optimized.splitlines()),
            **{k: len(re.findall(rf" {op}\(", optimized))
               for k, op in (("fusions", "fusion"), ("transposes", "transpose"),
                             ("copies", "copy"))}}


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def compile_breakdown(impls, rounds: int, cfg=None, log=print) -> list:
    """`impls` name implementations of the workload or variants of the floor."""
    cfg = cfg or transformer.BASE
    x, y = transformer.data(cfg)
    makers = transformer.builders(cfg, x, y)
    makers.update(transformer_variants.builders(
        [n for n in impls if n in transformer_variants.VARIANTS]))
    built = {n: makers[n]() for n in impls}
    for b in built.values():             # one-off costs (imports, the params check's cache)
        jax.make_jaxpr(b.train)(b.carry, x, y)
    samples = {n: {"trace": [], "trace_lower": [], "xla": [], "cpu": []} for n in impls}
    sizes = {}
    for r in range(rounds):
        k = r % len(impls)
        for n in impls[k:] + impls[:k]:
            b, s = built[n], samples[n]
            jax.clear_caches()
            gc.collect()
            jaxpr, t, _ = _timed(lambda: jax.make_jaxpr(b.train)(b.carry, x, y))
            s["trace"].append(t)
            jax.clear_caches()
            gc.collect()          # as bench.timing.aot_seconds: no stray full collection
            lowered, t_low, c_low = _timed(lambda: b.train.lower(b.carry, x, y))
            compiled, t_xla, c_xla = _timed(lowered.compile)
            s["trace_lower"].append(t_low)
            s["xla"].append(t_xla)
            s["cpu"].append(c_low + c_xla)
            if n not in sizes:
                sizes[n] = dict(program_size(lowered, compiled), eqns=jaxpr_size(jaxpr.jaxpr))
        log(f"  round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.1f}")
    rows = []
    for n in impls:
        s = samples[n]
        total = statistics.median(a + b for a, b in zip(s["trace_lower"], s["xla"]))
        rows.append(dict(impl=n, **{k: statistics.median(v) for k, v in s.items()},
                         total=total, **sizes[n]))
    return rows


def attention_core(lengths, reps: int, log=print) -> list:
    """Forward + gradient of the causal attention core: the fast path forced
    (``implementation="xla"``) against the einsum path (the CPU rule's threshold set to 0
    for the duration)."""
    from jaxlayers.layers import attention

    def step(implementation):
        def loss(q, k, v):
            y, _ = attention.dot_product_attention(q, k, v, scale=HEAD ** -0.5, is_causal=True,
                                                   implementation=implementation)
            return jnp.sum(y * y)
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    HEAD = 32
    rows = []
    saved = attention.EINSUM_FROM_KEYS_ON_CPU, attention.EINSUM_FROM_KEYS_ON_CPU_INFERENCE

    def threshold(keys):
        attention.EINSUM_FROM_KEYS_ON_CPU = attention.EINSUM_FROM_KEYS_ON_CPU_INFERENCE = keys

    try:
        for t in lengths:
            q, k, v = jax.random.normal(jax.random.key(t), (3, 4, t, 4, HEAD))
            fns = {"fast": step("xla")}
            threshold(0)
            fns["einsum"] = step(None)
            for f in fns.values():                    # compile (traced with the threshold 0)
                jax.block_until_ready(f(q, k, v))
            threshold(saved[0])
            attention.EINSUM_FROM_KEYS_ON_CPU_INFERENCE = saved[1]
            got = {n: [] for n in fns}
            for _ in range(reps):
                for n, f in fns.items():
                    _, dt, _ = _timed(lambda: jax.block_until_ready(f(q, k, v)))
                    got[n].append(dt)
            fast, einsum = (statistics.median(got[n]) * 1e3 for n in ("fast", "einsum"))
            rows.append({"T": t, "fast_ms": fast, "einsum_ms": einsum, "ratio": einsum / fast})
            log(f"  T={t}: fast {fast:.1f} ms, einsum {einsum:.1f} ms")
    finally:
        attention.EINSUM_FROM_KEYS_ON_CPU, attention.EINSUM_FROM_KEYS_ON_CPU_INFERENCE = saved
    return rows


def markdown(rows, columns, formats) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(formats.get(c, "{}").format(r[c]) for c in columns)
                     + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.transformer_probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("probe", choices=["compile", "variants", "core"])
    p.add_argument("--impls", default=None)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--lengths", default="128,512,1024")
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args(argv)
    before = os.getloadavg()[0]
    if args.probe in ("compile", "variants"):
        impls = args.impls or ",".join(
            IMPLS if args.probe == "compile" else ["haiku", "jaxlayers", *VARIANTS])
        rows = compile_breakdown([i for i in impls.split(",") if i], args.rounds)
        s = "{:.3f}"
        table = markdown(rows, ["impl", "trace", "trace_lower", "xla", "total", "cpu", "eqns",
                                "stablehlo_ops", "hlo_instructions", "fusions", "transposes",
                                "copies"],
                         {"trace": s, "trace_lower": s, "xla": s, "total": s, "cpu": s})
    else:
        rows = attention_core([int(t) for t in args.lengths.split(",")], args.reps)
        table = markdown(rows, ["T", "fast_ms", "einsum_ms", "ratio"],
                         {"fast_ms": "{:.1f}", "einsum_ms": "{:.1f}", "ratio": "{:.2f}"})
    print(f"load average (1 min): {before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(table)


if __name__ == "__main__":
    main()
