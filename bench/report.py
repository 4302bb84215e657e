"""Turn the CSVs of a run into README.md (machine, versions, date, tables) and scaling.png."""
from __future__ import annotations

import csv
import datetime
import glob
import importlib.metadata
import os
import platform

LIBS = ["jax", "jaxlib", "jaxlayers", "optax", "flax", "equinox", "dm-haiku", "keras", "numpy"]
ORDER = ["tiny_mlp", "mlp", "cnn", "lstm", "gru", "bn_dropout_cnn", "residual", "depthwise",
         "mobilenetv2", "resnet50", "efficientnetb0", "convnexttiny", "transformer", "build_cost"]


def machine(device=""):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import jax
        devs = jax.devices()
        backend = f"{devs[0].platform}: {devs[0].device_kind} x{len(devs)}"
    except Exception as e:  # pragma: no cover
        backend = f"? ({e})"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "backend": device or backend}


def versions():
    out = {}
    for lib in LIBS:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def read(folder):
    tables = {}
    for path in glob.glob(os.path.join(folder, "*.csv")):
        with open(path) as f:
            tables[os.path.basename(path)[:-4]] = list(csv.DictReader(f))
    return tables


def _f(v, fmt="{:.3f}"):
    try:
        return fmt.format(float(v))
    except (TypeError, ValueError):
        return ""


def table(rows):
    # the ratios are to `hand`, or to the reference row of a workload without one
    ref = "hand" if any(r["impl"] == "hand" for r in rows) else next(
        (r["impl"] for r in rows if _f(r.get("ratio_train")) == "1.000"), "hand")
    head = (f"| impl | train ms (p25-p75) | x {ref} | infer ms (p25-p75) | x {ref} "
            "| compile s (lower + XLA) | loss0 | out0 | others' CPU | note |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if _f(r.get("train_temp_mb")):      # workloads with MEMORY: XLA's planned scratch
            r = dict(r, note=f"temp MB train {_f(r['train_temp_mb'], '{:.1f}')} / infer "
                             f"{_f(r.get('infer_temp_mb'), '{:.1f}')} {r.get('note', '')}")
        if not r.get("train_ms"):
            lines.append(f"| {r['impl']} | | | | | | | | | {r.get('note', '')} |")
            continue
        busy = " **busy**" if r.get("busy") == "True" else ""
        lines.append(
            f"| {r['impl']} | {_f(r['train_ms'])} ({_f(r['train_p25'])}-{_f(r['train_p75'])}) "
            f"| {_f(r['ratio_train'], '{:.2f}')} "
            f"| {_f(r['infer_ms'])} ({_f(r['infer_p25'])}-{_f(r['infer_p75'])}) "
            f"| {_f(r['ratio_infer'], '{:.2f}')} | {_compile(r)} "
            f"| {_f(r['loss0'], '{:.5f}')} | {_f(r.get('out0'), '{:.5f}')} "
            f"| {_f(r['others_cores'], '{:.2f}')}{busy} "
            f"| {r.get('note', '')} |")
    return lines


def _compile(r):
    """``total (trace + lower + XLA compile)``, or the first-call total alone."""
    parts = _f(r.get("lower_s"), "{:.2f}"), _f(r.get("xla_s"), "{:.2f}")
    total = _f(r.get("compile_s"), "{:.2f}")
    return f"{total} ({parts[0]} + {parts[1]})" if all(parts) else total


def cost_table(rows):
    keys = [k for k in rows[0] if k != "impl"] if rows else []
    lines = ["| impl | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for r in rows:
        lines.append(f"| {r['impl']} | " + " | ".join(r.get(k) or "" for k in keys) + " |")
    return lines


def plot(tables, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [(w, key) for w, key in (("mlp", "batch"), ("cnn", "batch"), ("lstm", "seq"),
                                       ("gru", "seq")) if w in tables]
    panels = [(w, k) for w, k in panels
              if len({r["config"] for r in tables[w] if r["dtype"] == "float32"}) > 1]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (w, key) in zip(axes[0], panels):
        series = {}
        for r in tables[w]:
            if r["dtype"] != "float32" or not r.get("train_ms"):
                continue
            cfg = dict(kv.split("=") for kv in r["config"].split())
            series.setdefault(r["impl"], []).append((int(cfg[key]), float(r["train_ms"])))
        for impl, pts in sorted(series.items()):
            pts.sort()
            style = "-o" if impl in ("hand", "jaxlayers") else "--."
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=impl,
                    linewidth=2.5 if impl == "jaxlayers" else 1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size" if key == "batch" else "sequence length")
        ax.set_ylabel("train step, ms (median)")
        ax.set_title(w)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(folder, device="", quick=False):
    tables = read(folder)
    m, v = machine(device), versions()
    out = ["# Benchmark results", "",
           f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
           + ("  (quick smoke run: 1 pass, few reps: not for conclusions)" if quick else ""), "",
           f"Machine: {m['cpu']}, {m['cores']} cores; backend {m['backend']}; "
           f"Python {m['python']}", "",
           "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()), "",
           "Medians of single jitted calls after warm-up; implementations take turns call by "
           "call (round robin) over several passes. p25-p75 is the spread of all samples; 'x hand' is the ratio to the "
           "hand-written jax.numpy/lax floor measured in the same run; loss0 (the first training loss) and out0 (mean |output| of the first inference, before any update) agree across implementations that start from the same weights. 'others' CPU' is the "
           "largest average number of cores that *other* processes used during a pass; "
           "**busy** marks a pass where it exceeded 0.25 (the timing is suspect). compile s = "
           "the training step traced and lowered, then compiled by XLA, ahead of time "
           "(`jit(step).lower(...)`, `.compile()`, each after `jax.clear_caches()`, nothing "
           "run), the median of the `compiles` rounds, implementations in turn; in brackets "
           "the two parts. A step without `lower` (nnx.jit, eqx.filter_jit, Keras' fit) "
           "reports its first call less one steady-state call instead.", ""]
    if plot(tables, os.path.join(folder, "scaling.png")):
        out += ["![train step vs batch size / sequence length](scaling.png)", ""]
    for name in sorted(tables, key=lambda n: ORDER.index(n) if n in ORDER else 99):
        rows = tables[name]
        out += [f"## {name}", ""]
        if name == "build_cost":
            out += cost_table(rows) + [""]
            continue
        groups = {}
        for r in rows:
            groups.setdefault((r["config"], r["dtype"]), []).append(r)
        for (cfg, dtype), rs in groups.items():
            out += [f"### {cfg}, {dtype}", ""] + table(rs) + [""]
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("\n".join(out))
