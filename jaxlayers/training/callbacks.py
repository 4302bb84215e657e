"""Callbacks for `fit`: early stopping, periodic checkpoints, and a user hook.

A callback is any object with some of these methods (all optional):

    on_train_begin(run)            run: the `Run` (state, history, stop_training, ...)
    on_epoch_end(run, epoch, logs) logs: {"loss": ..., "val_loss": ..., ...} for the epoch
    on_train_end(run)

A plain function is taken as ``on_epoch_end(run, epoch, logs)``. Set
``run.stop_training = True`` to stop after the current epoch; replace ``run.state`` (a
`TrainState`) to change what training continues from. Learning-rate schedules are optax
schedules given to the optimizer (``optax.adam(optax.cosine_decay_schedule(1e-3, 1000))``).
"""
from __future__ import annotations

import dataclasses
import numbers
import os
import string
from typing import Any, Callable

import jax
import numpy as np


@dataclasses.dataclass
class Run:
    """What callbacks see and may change during `fit`."""

    model: Any
    state: Any                      # the current TrainState
    history: Any                    # the History being filled
    epochs: int
    stop_training: bool = False
    verbose: int = 1
    _place: Callable = None         # puts host arrays back where the state lives
    log_names: tuple = ()           # the names fit logs each epoch ("loss", "val_loss", ...)

    def set_state(self, host_state):
        """Replace the training state with `host_state` (e.g. numpy copies)."""
        self.state = self._place(host_state) if self._place else host_state


def _check_type(owner, name, value, kinds, what):
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise TypeError(f"{owner}: {name} must be {what}, received {value!r}")


def _check_monitor(owner, argument, monitor, run):
    """A monitored value that fit will never log is an error at the start of training."""
    if run.log_names and monitor not in run.log_names:
        hint = " (val_* values need validation_data or validation_split)" if (
            monitor.startswith("val_")) else ""
        raise ValueError(f"{owner}: {argument}={monitor!r} is never logged by this fit call; "
                         f"it logs {', '.join(run.log_names)}{hint}")


def _scalar(v):
    v = np.asarray(v)
    return float(v.mean()) if v.ndim else float(v)


class EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs (Keras).

    With `restore_best_weights`, the params and state of the best epoch are restored at the
    end of training (a host copy is kept, since `fit` donates device buffers). For an
    ensemble the mean over members is monitored.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        owner = "EarlyStopping"
        _check_type(owner, "monitor", monitor, (str,), "a logged name such as 'val_loss'")
        _check_type(owner, "min_delta", min_delta, (numbers.Real,), "a number")
        _check_type(owner, "patience", patience, (numbers.Integral,), "an int")
        _check_type(owner, "verbose", verbose, (numbers.Integral, bool), "an int")
        _check_type(owner, "restore_best_weights", restore_best_weights, (bool,), "a bool")
        _check_type(owner, "start_from_epoch", start_from_epoch, (numbers.Integral,), "an int")
        if baseline is not None:
            _check_type(owner, "baseline", baseline, (numbers.Real,), "a number or None")
        if patience < 0 or start_from_epoch < 0:
            raise ValueError(f"{owner}: patience and start_from_epoch must be >= 0, received "
                             f"patience={patience!r}, start_from_epoch={start_from_epoch!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc")) else "min"
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.mode, self.baseline = verbose, mode, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def _improves(self, current, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def _snapshot(self, run):
        return jax.device_get((run.state.params, run.state.state))

    def on_train_begin(self, run):
        _check_monitor("EarlyStopping", "monitor", self.monitor, run)
        self.wait, self.stopped_epoch, self.best = 0, 0, None
        self.best_weights, self.best_epoch = None, 0

    def on_epoch_end(self, run, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: monitor {self.monitor!r} is not among the logged "
                           f"values {sorted(logs)} (val_* needs validation_data)")
        current = _scalar(logs[self.monitor])
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self._snapshot(run), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self._snapshot(run)
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            run.stop_training = True

    def on_train_end(self, run):
        if self.stopped_epoch > 0 and (self.verbose or run.verbose):
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            params, state = self.best_weights
            run.set_state(dataclasses.replace(jax.device_get(run.state), params=params,
                                              state=state))
            if self.verbose or run.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")


class ModelCheckpoint:
    """Save params, state and optimizer state with `jl.save` every `every_n_epochs` epochs.

    `filepath` may hold ``{epoch}`` and any logged value (``"ckpt-{epoch:03d}.safetensors"``,
    epochs counted from 1 as in Keras). With `save_best_only`, only an epoch whose `monitor`
    improved is written. The metadata records the epoch, the step and the logs.
    """

    def __init__(self, filepath, every_n_epochs=1, monitor="val_loss", mode="auto",
                 save_best_only=False, save_optimizer=True):
        owner = "ModelCheckpoint"
        _check_type(owner, "filepath", filepath, (str, os.PathLike), "a str or path")
        _check_type(owner, "monitor", monitor, (str,), "a logged name such as 'val_loss'")
        _check_type(owner, "save_best_only", save_best_only, (bool,), "a bool")
        _check_type(owner, "save_optimizer", save_optimizer, (bool,), "a bool")
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or (
                every_n_epochs < 1):
            raise ValueError(f"ModelCheckpoint: every_n_epochs must be a positive int, got "
                             f"{every_n_epochs!r}")
        if not str(filepath):
            raise ValueError("ModelCheckpoint: filepath is empty")
        self.filepath, self.every_n_epochs = str(filepath), every_n_epochs
        self.save_best_only, self.save_optimizer = save_best_only, save_optimizer
        self._best = EarlyStopping(monitor=monitor, mode=mode)
        self.saved = []

    def on_train_begin(self, run):
        if self.save_best_only:
            _check_monitor("ModelCheckpoint(save_best_only=True)", "monitor",
                           self._best.monitor, run)
        self._best.on_train_begin(dataclasses.replace(run, log_names=()))
        fields = {f for _, f, _, _ in string.Formatter().parse(self.filepath) if f}
        for field in sorted(fields - {"epoch"}):
            _check_monitor("ModelCheckpoint", "filepath field", field.split(".")[0].split(
                "[")[0], run)

    def on_epoch_end(self, run, epoch, logs):
        from ..io.checkpoint import save
        if (epoch + 1) % self.every_n_epochs:
            return
        if self.save_best_only:
            current = _scalar(logs[self._best.monitor])
            if not self._best._improves(current, self._best.best):
                return
            self._best.best = current
        scalars = {k: _scalar(v) for k, v in logs.items()}
        path = os.path.expanduser(self.filepath.format(epoch=epoch + 1, **scalars))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)   # as Keras' does
        ts = run.state
        save(path, ts.params, ts.state, ts.opt_state if self.save_optimizer else None,
             metadata={"epoch": epoch + 1, "step": int(np.max(jax.device_get(ts.step))),
                       "logs": scalars})
        self.saved.append(path)


class LambdaCallback:
    """A callback from plain functions: ``on_epoch_end(run, epoch, logs)``,
    ``on_train_begin(run)``, ``on_train_end(run)`` (each optional)."""

    def __init__(self, on_epoch_end=None, on_train_begin=None, on_train_end=None):
        for name, fn in (("on_epoch_end", on_epoch_end), ("on_train_begin", on_train_begin),
                         ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be a function, received {fn!r}")
        if on_epoch_end:
            self.on_epoch_end = on_epoch_end
        if on_train_begin:
            self.on_train_begin = on_train_begin
        if on_train_end:
            self.on_train_end = on_train_end


def as_callback(obj):
    """`obj` if it has any callback method; a plain function becomes ``on_epoch_end``."""
    if any(hasattr(obj, m) for m in ("on_train_begin", "on_epoch_end", "on_train_end")):
        return obj
    if callable(obj):
        return LambdaCallback(on_epoch_end=obj)
    raise TypeError(f"expected a callback (an object with on_epoch_end / on_train_begin / "
                    f"on_train_end) or a function (run, epoch, logs), got {obj!r}")
