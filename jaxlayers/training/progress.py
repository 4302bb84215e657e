"""What `fit` prints, and logs brought back to the host as Python floats."""
from __future__ import annotations

import sys
import time

import jax
import numpy as np


class Progress:
    """tqdm bar per epoch when tqdm is installed and verbose=1; plain lines otherwise."""

    def __init__(self, verbose, epochs):
        self.verbose, self.epochs = verbose, epochs
        self.tqdm = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
                self.tqdm = tqdm
            except ImportError:
                pass
        self.bar = None

    def start(self, epoch, total):
        self.t0 = time.perf_counter()
        if self.tqdm is not None:
            self.bar = self.tqdm(total=total, desc=f"Epoch {epoch + 1}/{self.epochs}",
                                 unit="step", leave=True, file=sys.stdout)

    def update(self, n, logs=None):
        if self.bar is not None:
            self.bar.update(n)
            if logs:
                self.bar.set_postfix_str(fmt(logs), refresh=False)

    def end(self, epoch, logs):
        if self.bar is not None:
            self.bar.set_postfix_str(fmt(logs))
            self.bar.close()
            self.bar = None
        elif self.verbose:
            print(f"Epoch {epoch + 1}/{self.epochs} - {time.perf_counter() - self.t0:.1f}s - "
                  f"{fmt(logs)}", flush=True)

    def close(self):
        """Close an open bar (training stopped inside an epoch)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def fmt(logs):
    return " - ".join(f"{k}: {np.mean(v):.4f}" for k, v in logs.items())


def host(logs):
    """Device logs as floats (arrays of shape (n,) for an ensemble)."""
    out = {}
    for k, v in jax.device_get(logs).items():
        v = np.asarray(v)
        out[k] = float(v) if v.ndim == 0 else v
    return out
