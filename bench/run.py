"""Run the benchmark suite: ``python -m bench [--quick] [--workloads mlp,cnn] ...``.

Writes one CSV per workload to the output folder (default bench/results), then the
markdown table and the scaling plot (`bench.report`).
"""
from __future__ import annotations

import argparse
import csv
import importlib
import math
import os
import sys
import time

WORKLOADS = ["tiny_mlp", "mlp", "cnn", "lstm", "gru", "simple_rnn", "bn_dropout_cnn", "residual",
             "depthwise", "mobilenetv2", "transformer", "resnet50", "efficientnetb0",
             "convnexttiny"]
# Dispatch-heavy paths only matter at small sizes: leave them out of the scaling sweeps.
NOT_IN_SCALING = {"keras_fit"}
FIELDS = ["workload", "config", "dtype", "impl", "train_ms", "train_p25", "train_p75",
          "train_pass_min", "train_pass_max", "ratio_train", "infer_ms", "infer_p25",
          "infer_p75", "infer_pass_min", "infer_pass_max", "ratio_infer", "compile_s",
          "lower_s", "xla_s", "compile_cpu_s", "compile_infer_s", "first_call_s", "compiles",
          "train_temp_mb", "infer_temp_mb", "loss0", "out0", "loss_last", "reps", "passes",
          "others_cores", "loadavg", "busy", "note"]


def config_label(cfg):
    return " ".join(f"{k}={v}" for k, v in cfg.items())


def with_ratios(rows, reference="hand"):
    """Each row's times over the `reference` row's (a workload's REFERENCE, else hand)."""
    hand = next((r for r in rows if r["impl"] == reference and "train_ms" in r), None)
    for r in rows:
        if hand and "train_ms" in r:
            r["ratio_train"] = r["train_ms"] / hand["train_ms"]
            r["ratio_infer"] = r["infer_ms"] / hand["infer_ms"]
    return rows


def run_config(mod, cfg, dtype, args, impls=None, compiles=1, log=print):
    from .timing import measure
    x, y = mod.data(cfg)
    kw = {} if dtype == "float32" else {"dtype": dtype}
    try:
        builders = mod.builders(cfg, x, y, **kw)
    except TypeError:
        log(f"  {mod.NAME} has no {dtype} path")
        return []
    if args.impls:
        keep = {"hand", getattr(mod, "REFERENCE", "hand")}
        builders = {k: v for k, v in builders.items() if k in args.impls or k in keep}
    if impls is not None:
        builders = {k: v for k, v in builders.items() if impls(k)}
    log(f"  {mod.NAME} {config_label(cfg)} {dtype}")
    rows = measure(builders, x, y, passes=args.passes, budget_s=args.budget, warmup=args.warmup,
                   compiles=compiles, memory=getattr(mod, "MEMORY", False), log=log)
    for r in rows:
        r.update(workload=mod.NAME, config=config_label(cfg), dtype=dtype)
    return with_ratios(rows, getattr(mod, "REFERENCE", "hand"))


def write_csv(path, rows, fields=FIELDS):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and not math.isnan(v) else
                            ("" if isinstance(v, float) else v)) for k, v in r.items()})


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: base configs only, 1 pass, few reps, into results/raw/quick")
    p.add_argument("--workloads", default=",".join(WORKLOADS + ["build_cost"]))
    p.add_argument("--impls", default="", help="comma list (hand is always kept)")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--budget", type=float, default=0.4, help="seconds per impl per pass")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compiles", type=int, default=3,
                   help="ahead-of-time compiles per implementation (base configs): the "
                        "compile time is their median")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--device", default="", help="label for the results (e.g. the GPU's name)")
    args = p.parse_args(argv)
    if args.quick:
        args.passes, args.budget, args.warmup, args.no_scaling = 1, 0.02, 1, True
        args.compiles = 1
        if args.out == p.get_default("out"):
            args.out = os.path.join(args.out, "raw", "quick")
    args.impls = [s for s in args.impls.split(",") if s]
    dtypes = [d for d in args.dtypes.split(",") if d]

    t0 = time.time()
    for name in [w for w in args.workloads.split(",") if w]:
        print(f"== {name}", flush=True)
        mod = importlib.import_module(f"bench.{name}")
        if hasattr(mod, "run"):          # Python-time measurements (build_cost)
            rows = mod.run(quick=args.quick)
        else:
            rows = []
            for dtype in dtypes:
                rows += run_config(mod, mod.BASE, dtype, args, compiles=args.compiles)
            if not args.no_scaling:
                for cfg in mod.SCALING:
                    if cfg != mod.BASE:
                        rows += run_config(mod, cfg, "float32", args,
                                           impls=lambda k: k not in NOT_IN_SCALING)
        write_csv(os.path.join(args.out, f"{name}.csv"), rows, getattr(mod, "FIELDS", FIELDS))
    from . import report
    report.write(args.out, device=args.device, quick=args.quick)
    print(f"done in {time.time() - t0:.0f} s; results in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
