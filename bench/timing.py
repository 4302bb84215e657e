"""Timing: compile time, medians of many jitted calls, alternation, spread, a busy flag.

Every implementation of a workload is `build`-ed into a `Built`: an initial `carry`
(params + optimizer state, + model state / rng where the model has them), a jitted
`train(carry, x, y) -> (carry, loss)` that donates the carry, and a jitted
`infer(arg, x) -> y` with ``arg = infer_arg(carry)``. `measure` times them all in one
process: first calls (compile), a warm-up, then several passes in which the
implementations take turns call by call (round robin, rotated start each pass), each
pass timing `reps` single calls of each.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time
from typing import Any, Callable

import jax
import numpy as np


class Unavailable(Exception):
    """An implementation that cannot run here (a missing peer, a layer not merged yet)."""


@dataclasses.dataclass
class Built:
    carry: Any
    train: Callable            # (carry, x, y) -> (carry, loss); carry donated
    infer: Callable            # (infer_arg(carry), x) -> y
    infer_arg: Callable = lambda carry: carry[0]
    note: str = ""
    # Keras' fit: a callable n -> seconds for n training steps (replaces `train` timing).
    fit_steps: Callable | None = None


# --------------------------------------------------------------------------- CPU load


def _cpu_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _own_jiffies():
    """CPU time of this process (all threads), in jiffies."""
    t = os.times()
    return (t.user + t.system) * os.sysconf("SC_CLK_TCK")


class LoadProbe:
    """How much CPU *other* processes used while a block ran, in cores.

    ``others = (machine busy time - this process's CPU time) / wall time``; also the
    1-minute load average at the end.
    """

    def __enter__(self):
        self.m0, self.o0, self.t0 = _cpu_jiffies(), _own_jiffies(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        m1, o1, t1 = _cpu_jiffies(), _own_jiffies(), time.perf_counter()
        self.loadavg = os.getloadavg()[0]
        if self.m0 is None or m1 is None:
            self.others = float("nan")
            return False
        hz = os.sysconf("SC_CLK_TCK")
        busy = (m1[0] - self.m0[0]) - (o1 - self.o0)
        self.others = max(busy, 0) / hz / max(t1 - self.t0, 1e-9)
        return False


BUSY_CORES = 0.25   # others using more than a quarter of a core on average: flag it


# --------------------------------------------------------------------------- timing


def _block(x):
    jax.block_until_ready(x)
    return x


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@dataclasses.dataclass
class Runner:
    """One implementation being measured: its built functions and its samples."""

    name: str
    built: Built
    train_s: list = dataclasses.field(default_factory=list)
    infer_s: list = dataclasses.field(default_factory=list)
    pass_train: list = dataclasses.field(default_factory=list)
    pass_infer: list = dataclasses.field(default_factory=list)
    others: list = dataclasses.field(default_factory=list)
    loadavg: list = dataclasses.field(default_factory=list)
    compile_train_s: list = dataclasses.field(default_factory=list)   # first calls
    compile_infer_s: list = dataclasses.field(default_factory=list)
    loss0: float = float("nan")
    out0: float = float("nan")
    loss_last: float = float("nan")

    def train_once(self, x, y):
        b = self.built
        b.carry, loss = b.train(b.carry, x, y)
        jax.block_until_ready(loss)
        return loss

    def infer_once(self, x):
        b = self.built
        return _block(b.infer(b.infer_arg(b.carry), x))


def first_calls(r: Runner, x, y):
    """Compile (first call: trace + lower + compile + one run) and record the first loss."""
    out, t = _timed(lambda: r.infer_once(x))
    r.compile_infer_s.append(t)
    # a checksum of the first inference output (before any update): equal across
    # implementations that start from the same weights, even with dropout in training
    r.out0 = float(np.mean(np.abs(np.asarray(out, np.float32))))
    if r.built.fit_steps is not None:
        _, t = _timed(lambda: r.built.fit_steps(1))
    else:
        loss, t = _timed(lambda: r.train_once(x, y))
        r.loss0 = float(loss)
    r.compile_train_s.append(t)


def recompile(runners, x, y):
    """One more first call of every implementation, in turn, each after `jax.clear_caches()`
    (so each traces and compiles again): a single compile timing varies by 20-30% here."""
    for r in runners:
        jax.clear_caches()
        _, t = _timed(lambda: r.infer_once(x))
        r.compile_infer_s.append(t)
        jax.clear_caches()
        if r.built.fit_steps is not None:
            _, t = _timed(lambda: r.built.fit_steps(1))
        else:
            _, t = _timed(lambda: r.train_once(x, y))
        r.compile_train_s.append(t)


def warm_up(r: Runner, x, y, n: int):
    if r.built.fit_steps is not None:
        r.built.fit_steps(n)
    else:
        for _ in range(n):
            r.train_once(x, y)
    for _ in range(n):
        r.infer_once(x)


def one_pass(runners, x, y, reps: dict):
    """One pass: the implementations take turns call by call (round robin), `reps[name]`
    timed training calls each, then likewise for inference; one load probe for the pass.

    Interleaving single calls exposes every implementation to the same background load,
    which on a shared machine drifts on a scale of seconds.
    """
    tr = {r.name: [] for r in runners}
    inf = {r.name: [] for r in runners}
    with LoadProbe() as probe:
        for r in runners:                      # Keras' fit: one call for the pass
            if r.built.fit_steps is not None:
                tr[r.name].append(r.built.fit_steps(reps[r.name]) / reps[r.name])
        for i in range(max(reps.values(), default=0)):
            for r in runners:
                if r.built.fit_steps is None and i < reps[r.name]:
                    t0 = time.perf_counter()
                    loss = r.train_once(x, y)
                    tr[r.name].append(time.perf_counter() - t0)
                    r.loss_last = float(loss)
        for i in range(max(reps.values(), default=0)):
            for r in runners:
                if i < reps[r.name]:
                    t0 = time.perf_counter()
                    r.infer_once(x)
                    inf[r.name].append(time.perf_counter() - t0)
    for r in runners:
        r.train_s += tr[r.name]
        r.infer_s += inf[r.name]
        r.pass_train.append(statistics.median(tr[r.name]))
        r.pass_infer.append(statistics.median(inf[r.name]))
        r.others.append(probe.others)
        r.loadavg.append(probe.loadavg)


def reps_for(r: Runner, x, y, budget_s: float, lo: int = 3, hi: int = 200) -> int:
    """How many single calls fill about `budget_s` seconds (train + infer)."""
    if r.built.fit_steps is not None:
        per = r.built.fit_steps(2) / 2
    else:
        t0 = time.perf_counter()
        r.train_once(x, y)
        per = time.perf_counter() - t0
    t0 = time.perf_counter()
    r.infer_once(x)
    per += time.perf_counter() - t0
    return int(min(hi, max(lo, budget_s / max(per, 1e-7))))


def temp_memory(r: Runner, x, y):
    """Temporary (scratch) bytes of the compiled training step and inference, in MB, from
    XLA's own memory analysis of the compiled programs (`None` where a step is not a
    plain `jax.jit` function, e.g. `nnx.jit`, `eqx.filter_jit`, Keras' fit)."""
    b = r.built

    def mb(fn, *args):
        try:
            stats = fn.lower(*args).compile().memory_analysis()
        except Exception:          # a wrapper without `lower`, or a backend without stats
            return None
        return None if stats is None else stats.temp_size_in_bytes / 2**20
    return mb(b.train, b.carry, x, y), mb(b.infer, b.infer_arg(b.carry), x)


def measure(builders: dict, x, y, *, passes: int = 5, budget_s: float = 0.4, warmup: int = 3,
            compiles: int = 1, memory: bool = False, log=print):
    """Build every implementation, then time them alternately; returns a list of rows.

    `builders` maps a name to a zero-argument callable returning a `Built` (or raising
    `Unavailable`). Each pass runs the implementations in a rotated order. The compile
    time is the median of `compiles` first calls (the extra ones after the passes, in
    rotated order, each after clearing jax's caches). With `memory`, each row also gets
    the compiled steps' temporary memory (`temp_memory`).
    """
    runners, skipped = [], []
    for name, build in builders.items():
        try:
            built = build()
        except Unavailable as e:
            skipped.append({"impl": name, "note": f"skipped: {e}"})
            log(f"    {name:<18} skipped: {e}")
            continue
        except Exception as e:  # e.g. a newly merged layer whose params differ from Keras'
            msg = f"failed to build: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            skipped.append({"impl": name, "note": msg})
            log(f"    {name:<18} {msg}")
            continue
        r = Runner(name, built)
        try:
            first_calls(r, x, y)
            warm_up(r, x, y, warmup)
        except Exception as e:  # a broken implementation must not stop the others
            msg = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            skipped.append({"impl": name, "note": msg})
            log(f"    {name:<18} {msg}")
            continue
        runners.append(r)
    reps = {r.name: reps_for(r, x, y, budget_s) for r in runners}
    for p in range(passes):
        k = p % max(len(runners), 1)
        one_pass(runners[k:] + runners[:k], x, y, reps)
    for c in range(compiles - 1):
        k = (c + 1) % max(len(runners), 1)
        recompile(runners[k:] + runners[:k], x, y)
    rows = [summarize(r, reps[r.name]) for r in runners]
    if memory:
        for r, row in zip(runners, rows):
            row["train_temp_mb"], row["infer_temp_mb"] = temp_memory(r, x, y)
    for row in rows:
        log(f"    {row['impl']:<18} train {row['train_ms']:9.3f} ms  infer {row['infer_ms']:9.3f} ms"
            f"  compile {row['compile_s']:6.2f} s  loss0 {row['loss0']:.6f}  out0 {row['out0']:.6f}"
            f"{'  BUSY' if row['busy'] else ''}")
    return rows + skipped


def summarize(r: Runner, reps: int) -> dict:
    def q(xs, p):
        return float(np.percentile(xs, p)) * 1e3 if xs else float("nan")
    train_med = statistics.median(r.train_s) * 1e3
    infer_med = statistics.median(r.infer_s) * 1e3
    others = max(r.others) if r.others else float("nan")
    return {
        "impl": r.name,
        "train_ms": train_med, "train_p25": q(r.train_s, 25), "train_p75": q(r.train_s, 75),
        "train_pass_min": min(r.pass_train) * 1e3, "train_pass_max": max(r.pass_train) * 1e3,
        "infer_ms": infer_med, "infer_p25": q(r.infer_s, 25), "infer_p75": q(r.infer_s, 75),
        "infer_pass_min": min(r.pass_infer) * 1e3, "infer_pass_max": max(r.pass_infer) * 1e3,
        # compile: the median first call less one steady-state call
        "compile_s": max(statistics.median(r.compile_train_s) - train_med / 1e3, 0.0),
        "compile_infer_s": max(statistics.median(r.compile_infer_s) - infer_med / 1e3, 0.0),
        "compiles": len(r.compile_train_s),
        "loss0": r.loss0, "out0": r.out0, "loss_last": r.loss_last,
        "reps": reps, "passes": len(r.pass_train),
        "others_cores": others, "loadavg": max(r.loadavg) if r.loadavg else float("nan"),
        "busy": bool(others > BUSY_CORES),
        "note": r.built.note,
    }
