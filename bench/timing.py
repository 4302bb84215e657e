"""Timing: compile time, medians of many jitted calls, alternation, spread, a busy flag.

Every implementation of a workload is `build`-ed into a `Built`: an initial `carry`
(params + optimizer state, + model state / rng where the model has them), a jitted
`train(carry, x, y) -> (carry, loss)` that donates the carry, and a jitted
`infer(arg, x) -> y` with ``arg = infer_arg(carry)``. `measure` times them all in one
process: first calls, a warm-up, then several passes in which the implementations take
turns call by call (round robin, rotated start each pass), each pass timing `reps` single
calls of each; then the compile time ahead of time (`aot_rounds`: trace + lower, and XLA's
compile, separately, implementations in turn).
"""
from __future__ import annotations

import dataclasses
import gc
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
    # ahead of time, one entry per round: (trace + lower s, XLA compile s, CPU s of both)
    aot_train: list = dataclasses.field(default_factory=list)
    aot_infer: list = dataclasses.field(default_factory=list)
    compiled: dict = dataclasses.field(default_factory=dict)   # the last compiled steps
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


def aot_seconds(fn, *args):
    """``(trace + lower s, compile s, CPU s of both, compiled)`` of the jitted `fn` on
    `args`, ahead of time (`fn.lower(*args)`, then `.compile()`), after `jax.clear_caches()`
    so that nothing is reused; None where `fn` is not a plain `jax.jit` function (no
    `lower`: `nnx.jit`, `eqx.filter_jit`, Keras' fit).

    Python's garbage is collected first: a full collection triggered by the previous
    implementation's garbage would otherwise land on this one's lowering (60-90 ms here, on
    whichever implementation happened to trigger it). Nothing runs, so the timing holds no
    step time; the CPU seconds (this process, all
    threads) are what the work cost, less sensitive to other processes than wall time.
    """
    lower = getattr(fn, "lower", None)
    if lower is None:
        return None
    jax.clear_caches()
    gc.collect()      # else a full collection (~0.1 s here) lands on whoever triggers it
    c0, t0 = time.process_time(), time.perf_counter()
    lowered = lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2, c2 = time.perf_counter(), time.process_time()
    return t1 - t0, t2 - t1, c2 - c0, compiled


def recompile(r: Runner, x, y):
    """One more first call of `r`'s steps after `jax.clear_caches()`: the compile time of
    a step that cannot be lowered ahead of time."""
    jax.clear_caches()
    _, t = _timed(lambda: r.infer_once(x))
    r.compile_infer_s.append(t)
    jax.clear_caches()
    if r.built.fit_steps is not None:
        _, t = _timed(lambda: r.built.fit_steps(1))
    else:
        _, t = _timed(lambda: r.train_once(x, y))
    r.compile_train_s.append(t)


def aot_rounds(runners, x, y, rounds: int):
    """`rounds` ahead-of-time compiles of every implementation's training step and
    inference, implementations in turn (rotated start each round) so that a drift in the
    machine's load touches all alike. A step without `lower` gets one more first call
    (`recompile`) per round after the first instead."""
    for c in range(rounds):
        k = c % max(len(runners), 1)
        for r in runners[k:] + runners[:k]:
            b = r.built
            train = None if b.fit_steps is not None else aot_seconds(b.train, b.carry, x, y)
            infer = aot_seconds(b.infer, b.infer_arg(b.carry), x)
            if train is None or infer is None:
                if c:
                    recompile(r, x, y)
                continue
            r.aot_train.append(train[:3])
            r.aot_infer.append(infer[:3])
            r.compiled = {"train": train[3], "infer": infer[3]}


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
    XLA's own memory analysis of the compiled programs (those `aot_rounds` compiled, else
    compiled here; `None` where a step is not a plain `jax.jit` function, e.g. `nnx.jit`,
    `eqx.filter_jit`, Keras' fit)."""
    b = r.built

    def mb(which, fn, *args):
        try:
            compiled = r.compiled.get(which) or fn.lower(*args).compile()
            stats = compiled.memory_analysis()
        except Exception:          # a wrapper without `lower`, or a backend without stats
            return None
        return None if stats is None else stats.temp_size_in_bytes / 2**20
    return mb("train", b.train, b.carry, x, y), mb("infer", b.infer, b.infer_arg(b.carry), x)


def measure(builders: dict, x, y, *, passes: int = 5, budget_s: float = 0.4, warmup: int = 3,
            compiles: int = 1, memory: bool = False, log=print):
    """Build every implementation, then time them alternately; returns a list of rows.

    `builders` maps a name to a zero-argument callable returning a `Built` (or raising
    `Unavailable`). Each pass runs the implementations in a rotated order. The compile
    time is measured ahead of time after the passes, the median of `compiles` rounds
    (`aot_rounds`). With `memory`, each row also gets the compiled steps' temporary memory
    (`temp_memory`).
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
    aot_rounds(runners, x, y, max(compiles, 1))
    rows = [summarize(r, reps[r.name]) for r in runners]
    if memory:
        for r, row in zip(runners, rows):
            row["train_temp_mb"], row["infer_temp_mb"] = temp_memory(r, x, y)
    for row in rows:
        log(f"    {row['impl']:<18} train {row['train_ms']:9.3f} ms  infer {row['infer_ms']:9.3f} ms"
            f"  compile {row['compile_s']:6.2f} s ({row['lower_s']:.2f} + {row['xla_s']:.2f})"
            f"  loss0 {row['loss0']:.6f}  out0 {row['out0']:.6f}"
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
        **_compile_columns(r, train_med / 1e3, infer_med / 1e3),
        "loss0": r.loss0, "out0": r.out0, "loss_last": r.loss_last,
        "reps": reps, "passes": len(r.pass_train),
        "others_cores": others, "loadavg": max(r.loadavg) if r.loadavg else float("nan"),
        "busy": bool(others > BUSY_CORES),
        "note": r.built.note,
    }


def _compile_columns(r: Runner, train_s: float, infer_s: float) -> dict:
    """The compile columns of a row, in seconds.

    ``compile_s`` / ``compile_infer_s``: trace + lower + XLA compile of the training step /
    inference, ahead of time, the median of the rounds (``lower_s`` and ``xla_s`` the
    medians of the two parts, ``compile_cpu_s`` the CPU time of both). ``first_call_s``:
    the first call of the training step less one steady-state call (trace, compile and
    one-off Python costs such as imports, one sample). A step that cannot be lowered ahead
    of time reports the median of its first calls as ``compile_s`` and leaves the parts
    blank.
    """
    nan = float("nan")
    first = max(statistics.median(r.compile_train_s) - train_s, 0.0)
    first_infer = max(statistics.median(r.compile_infer_s) - infer_s, 0.0)
    out = {"first_call_s": max(r.compile_train_s[0] - train_s, 0.0)}
    if not r.aot_train:
        return dict(out, compile_s=first, compile_infer_s=first_infer, lower_s=nan, xla_s=nan,
                    compile_cpu_s=nan, compiles=len(r.compile_train_s))

    def med(rows, i):
        return statistics.median(row[i] for row in rows)
    return dict(out, compile_s=statistics.median(a + b for a, b, _ in r.aot_train),
                compile_infer_s=statistics.median(a + b for a, b, _ in r.aot_infer),
                lower_s=med(r.aot_train, 0), xla_s=med(r.aot_train, 1),
                compile_cpu_s=med(r.aot_train, 2), compiles=len(r.aot_train))
