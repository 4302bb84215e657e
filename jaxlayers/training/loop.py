"""`fit`, `evaluate` and `predict`: a jit-compiled training loop over the layer contract.

The data are checked on the host first (`data.py`), the step is compiled once per model,
optimizer, loss and metrics and reused by later calls (`steps.py`). A Ctrl-C (or a
KeyboardInterrupt raised by a callback) ends training at the end of the current step and
`fit` returns what it has, marked ``history.interrupted``; any other exception leaves `fit`
with the latest `TrainState` attached as ``exc.train_state``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np

from ..core import as_layer, with_state
from . import callbacks as _callbacks
from . import data as _data
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import sharding as _sharding
from . import steps as _steps
from .devices import Placement
from .ensemble import Ensemble
from .progress import Progress, host
from .steps import TrainState

__all__ = ["History", "TrainState", "fit", "evaluate", "predict"]


@dataclasses.dataclass
class History:
    """Per-epoch logs, as Keras' History: ``history.history["val_loss"][-1]``.

    Values are floats, or arrays of shape (n,) for an ensemble of n members.
    ``interrupted`` is True when a KeyboardInterrupt ended training early.
    """

    history: dict = dataclasses.field(default_factory=dict)
    epoch: list = dataclasses.field(default_factory=list)
    interrupted: bool = False

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]


def _key_data(rng):
    if rng is None:
        rng = jax.random.key(0)
    elif isinstance(rng, int):
        rng = jax.random.key(rng)
    if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(rng)
    return jnp.asarray(rng)


def _copy(tree):
    """Fresh device buffers (the step donates its inputs; the caller's arrays stay valid)."""
    return jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), tree)


def _unpack_params(model, params, state):
    if isinstance(params, TrainState):
        return params.params, params.state
    if state is None:
        if _member_of(model).stateful:
            raise ValueError(f"{getattr(model, 'name', model)} is stateful: pass its state "
                             f"(state=... from init)")
        state = ()
    return params, state


def _member_of(model):
    return model.member if isinstance(model, Ensemble) else as_layer(model)


def _member_model(model):
    return with_state(_member_of(model)), (model.n if isinstance(model, Ensemble) else None)


# --------------------------------------------------------------------------- interrupts


class _StopFlag:
    """Set by Ctrl-C while `fit` runs (in the main thread), read after each step."""

    requested = False


@contextlib.contextmanager
def _stop_on_sigint():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread() or (
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield flag                       # a KeyboardInterrupt is still caught by fit
        return

    def handler(signum, frame):
        if flag.requested:               # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        flag.requested = True
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _alive(ts):
    return not any(getattr(a, "is_deleted", lambda: False)()
                   for a in jax.tree_util.tree_leaves(ts))


def _log_names(metrics, validating, opt_state):
    names = ["loss"] + [m.name for m in metrics]
    names += [f"val_{n}" for n in names] if validating else []
    return names + (["learning_rate"] if _learning_rate(opt_state) is not None else [])


# --------------------------------------------------------------------------- public API


def fit(model, params, optimizer, loss, x=None, y=None, *, state=None, data=None, epochs=1,
        batch_size=32, validation_data=None, validation_split=0.0, class_weight=None,
        metrics=(), callbacks=(), rng=None, shuffle=True, sample_weight=None, verbose=1,
        mesh=None, layout=None, initial_epoch=0):
    """Train `model` and return ``(train_state, history)``.

    Args:
      model: a Layer (or an `Ensemble`, whose members are trained at once in one vmapped step).
      params: the params from ``init`` (they are copied, never donated), or a `TrainState`
        to resume from (its optimizer state is kept).
      optimizer: an optax ``GradientTransformation`` (learning-rate schedules go inside it)
        or a Keras name (``"adam"``, ``"sgd"``, ...) with Keras' default hyperparameters.
      loss: a Keras loss name, a `Loss`, or ``(y_true, y_pred) -> per-sample loss``.
      x, y: arrays (or pytrees of arrays) with the samples first; or
      data: an iterable of ``(x, y)`` / ``(x, y, sample_weight)`` batches (a list, a
        re-iterable, or a function returning a fresh iterator each epoch).
      state: the model's non-trainable state (required when the model is stateful).
      epochs, shuffle, sample_weight, initial_epoch: as in Keras.
      batch_size: a positive int; None means 32 (Keras' default). Ignored with `data`.
      validation_data: ``(x_val, y_val[, w_val])`` or an iterable of batches, evaluated
        each epoch.
      validation_split: a fraction in (0, 1): the last samples of x / y (before
        shuffling) are held out as validation data, as in Keras.
      class_weight: ``{class index: weight}``; each sample's weight is multiplied by the
        weight of its class (integer label, or argmax of a one-hot row).
      metrics: names (``"accuracy"``), `Metric`s or per-sample functions.
      callbacks: `EarlyStopping`, `ModelCheckpoint`, `LambdaCallback`, functions.
      rng: a key or int seed for dropout and shuffling (default 0).
      verbose: 0 silent, 1 progress bar (tqdm if installed, else one line per epoch),
        2 one line per epoch.
      mesh: a `jax.sharding.Mesh` for data-parallel training (batch split over its first
        axis; params replicated unless already placed with a `NamedSharding` on it).
      layout: with `mesh`, how params are split: a `jl.Layout` (`DataParallel`, `FSDP`,
        `TensorParallel`, `LayoutMap`, or a sum) or a list of ``(regex, spec)`` rules over
        weight paths; the optimizer state follows the params. Kept across steps.

    Returns: ``(TrainState, History)``; ``history.interrupted`` is True when a
    KeyboardInterrupt stopped training (at the end of a step). Any other exception is
    raised with the latest `TrainState` as its ``train_state`` attribute.
    """
    member, n_members = _member_model(model)
    loss_fn = _losses.get(loss)
    tx = _optimizers.get(optimizer)
    metric_objs = [_metrics.get(m) for m in metrics]
    _steps.check_metric_names(metric_objs)
    cbs = [_callbacks.as_callback(c) for c in callbacks]
    batch_size = _data.batch_size_or_default("fit", batch_size)
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"fit: {name} must be a non-negative int, received {value!r}")
    if validation_split:
        if validation_data is not None or data is not None:
            raise ValueError("fit: validation_split needs x and y arrays and no "
                             "validation_data (pass one or the other)")
        if x is None or y is None:
            raise ValueError("fit: validation_split needs x and y arrays")
        (x, y, sample_weight), (vx, vy, vw) = _data.validation_split_arrays(
            x, y, sample_weight, validation_split)
        validation_data = (vx, vy) if vw is None else (vx, vy, vw)
    train = _data.Source("fit", x, y, sample_weight, data, batch_size, class_weight=class_weight)
    val = None if validation_data is None else _data.validation_source(validation_data, batch_size)
    place = Placement(mesh, batch_size if data is None else None)
    _check_layout("fit", mesh, layout)

    key_data = _key_data(rng)
    seed = np.asarray(jax.device_get(key_data)).ravel().tolist()
    if isinstance(params, TrainState):
        ts = params
        seed.append(int(np.max(jax.device_get(ts.step))))   # resuming: a new shuffle order
    else:
        p, s = _unpack_params(model, params, state)
        if layout is not None:           # the optimizer state is then created sharded too
            p = _sharding.shard(p, mesh, layout, leading=1 if n_members else 0)
        opt_state = (jax.vmap(tx.init) if n_members else tx.init)(p)
        member_keys = key_data if not n_members else jax.vmap(
            lambda i: jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(
                key_data), i)))(jnp.arange(n_members))
        step0 = jnp.zeros((n_members,) if n_members else (), jnp.int32)
        ts = TrainState(p, s, opt_state, step0, member_keys)
    if layout is not None:
        ts = _sharding.shard(ts, mesh, layout, leading=1 if n_members else 0)
    _data.check_sparse_labels([train] + ([val] if val else []), loss_fn, member, n_members,
                              ts.params, ts.state)
    np_rng = np.random.default_rng(seed)
    ts = place.state(_copy(ts), like=ts)
    ts_sharding = jax.tree_util.tree_map(lambda a: a.sharding, ts)

    def build():
        step = _steps.vmap_if(_steps.train_step(member, tx, loss_fn, metric_objs), n_members,
                              (0, 0, None, None))
        jit_kwargs = {}
        if mesh is not None:
            jit_kwargs["out_shardings"] = (ts_sharding, place.replicated)
        # the train loss meter already holds the penalty of each step
        return (jax.jit(step, donate_argnums=(0, 1), **jit_kwargs),
                jax.jit(_steps.vmap_if(lambda _: _steps.init_meters(metric_objs), n_members, 0)),
                jax.jit(_steps.vmap_if(lambda mt, p: _steps.results(mt, metric_objs, member,
                                                                    None), n_members, (0, 0))))
    sharding_key = None if mesh is None else tuple(jax.tree_util.tree_leaves(ts_sharding))
    train_step, init_meters, results = _steps.cached(
        ("fit", model, tx, _steps.loss_key(loss), _steps.metrics_key(metrics), mesh,
         sharding_key), build)
    evaluator = None if val is None else _evaluator(model, member, n_members, loss, loss_fn,
                                                    metrics, metric_objs, place, mesh)
    members_arg = jnp.zeros((n_members or 1,))

    history = History()
    run = _callbacks.Run(model, ts, history, epochs, verbose=verbose,
                         _place=lambda host_state: place.state(jax.device_put(host_state),
                                                               like=ts),
                         log_names=_log_names(metric_objs, val is not None, ts.opt_state))
    progress = Progress(verbose, epochs)
    total = _data.num_batches(x, data, batch_size)
    for cb in cbs:                       # checks (monitors that will never be logged) first
        getattr(cb, "on_train_begin", lambda r: None)(run)
    try:
        with _stop_on_sigint() as stop:
            for epoch in range(initial_epoch, epochs):
                meters = init_meters(members_arg if n_members else None)
                if mesh is not None:
                    meters = jax.device_put(meters, place.replicated)
                progress.start(epoch, total)
                every = max(1, (total or 50) // 20)
                for i, (batch, valid) in enumerate(train.batches(np_rng if shuffle else None)):
                    run.state, meters = train_step(run.state, meters, place.batch(batch),
                                                   place.batch(valid))
                    if stop.requested:
                        raise KeyboardInterrupt
                    if progress.bar is not None:
                        progress.update(1, host(results(meters, run.state.params))
                                        if (i + 1) % every == 0 else None)
                logs = host(results(meters, run.state.params))
                if evaluator is not None:
                    val_logs = host(evaluator(run.state.params, run.state.state, val.batches()))
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                lr = _learning_rate(run.state.opt_state)
                if lr is not None:
                    logs["learning_rate"] = lr
                history.append(epoch, logs)
                progress.end(epoch, logs)
                for cb in cbs:
                    getattr(cb, "on_epoch_end", lambda r, e, l: None)(run, epoch, logs)
                if run.stop_training or stop.requested:
                    if stop.requested:
                        raise KeyboardInterrupt
                    break
    except KeyboardInterrupt:
        progress.close()
        if not _alive(run.state):
            raise
        history.interrupted = True
        if verbose:
            print(f"Training interrupted after step {int(np.max(jax.device_get(run.state.step)))}"
                  f"; returning the state reached", flush=True)
    except Exception as exc:
        progress.close()
        _attach(exc, run.state)
        raise
    try:
        for cb in cbs:
            getattr(cb, "on_train_end", lambda r: None)(run)
    except Exception as exc:
        _attach(exc, run.state)
        raise
    return run.state, history


def _check_layout(who, mesh, layout):
    if layout is not None and mesh is None:
        raise ValueError(f"{who}: layout= places params on a mesh: pass mesh= too")


def _attach(exc, ts):
    """Hand the caller the training state reached (None if the failing step consumed it)."""
    exc.train_state = ts if _alive(ts) else None
    exc.add_note("jl.fit: the training state reached so far is attached to this exception "
                 "as `exc.train_state` (a jl.TrainState)" if _alive(ts) else
                 "jl.fit: the failing step consumed the training state (exc.train_state is "
                 "None)")


def _evaluator(model, member, n, loss, loss_fn, metrics, metric_objs, place, mesh):
    return _steps.cached(("eval", model, None if loss is None else _steps.loss_key(loss),
                          _steps.metrics_key(metrics), mesh),
                         lambda: _steps.Evaluator(member, n, loss_fn, metric_objs, place))


def _laid_out(who, params, mesh, layout, n_members):
    _check_layout(who, mesh, layout)
    if layout is None:
        return params
    return _sharding.shard(params, mesh, layout, leading=1 if n_members else 0)


def _learning_rate(opt_state):
    """The current learning rate when the optimizer was built with optax.inject_hyperparams."""
    found = []

    def visit(node):
        hp = getattr(node, "hyperparams", None)
        if isinstance(hp, dict) and "learning_rate" in hp:
            found.append(hp["learning_rate"])
        return node
    jax.tree_util.tree_map(visit, opt_state,
                           is_leaf=lambda n: hasattr(n, "hyperparams"))
    if not found:
        return None
    v = np.asarray(jax.device_get(found[0]))
    return float(v) if v.ndim == 0 else v


def evaluate(model, params, x=None, y=None, *, loss=None, metrics=(), state=None, data=None,
             batch_size=32, sample_weight=None, mesh=None, layout=None):
    """Evaluate in inference mode (``train=False``); returns ``{"loss": ..., name: ...}``.

    `params` may be a `TrainState`. Every sample counts exactly once (the last partial
    batch is padded with weight-0 rows). The loss includes ``model.penalty(params)``, as
    Keras' evaluate includes weight-regularization losses. For an `Ensemble` each value is
    an array with one entry per member. `batch_size` None means 32. `mesh` and `layout`
    are as in `fit`.
    """
    member, n = _member_model(model)
    params, state = _unpack_params(model, params, state)
    params = _laid_out("evaluate", params, mesh, layout, n)
    loss_fn = None if loss is None else _losses.get(loss)
    metric_objs = [_metrics.get(m) for m in metrics]
    _steps.check_metric_names(metric_objs)
    batch_size = _data.batch_size_or_default("evaluate", batch_size)
    source = _data.Source("evaluate", x, y, sample_weight, data, batch_size)
    if loss_fn is not None:
        _data.check_sparse_labels([source], loss_fn, member, n, params, state)
    place = Placement(mesh, batch_size if data is None else None)
    ev = _evaluator(model, member, n, loss, loss_fn, metrics, metric_objs, place, mesh)
    return host(ev(params, state, source.batches()))


def predict(model, params, x=None, *, state=None, data=None, batch_size=32, mesh=None,
            layout=None):
    """Outputs of `model` in inference mode for every sample of `x` (or of each batch of
    `data`, an iterable of x batches), as numpy; for an `Ensemble` shaped
    ``(members, samples, ...)``. `params` may be a `TrainState`. `batch_size` None
    means 32. `mesh` and `layout` are as in `fit`."""
    member, n = _member_model(model)
    params, state = _unpack_params(model, params, state)
    params = _laid_out("predict", params, mesh, layout, n)
    batch_size = _data.batch_size_or_default("predict", batch_size)
    place = Placement(mesh, batch_size if data is None else None)
    if data is not None:
        if x is not None:
            raise ValueError("predict: pass either x or data, not both")
        batches = _data.iterable_batches("predict", data, "x")
    elif x is None:
        raise ValueError("predict: no data: pass x or data=<iterable of x batches>")
    else:
        count = _data.check_arrays("predict", x)
        batches = _data.array_batches(x, batch_size, np.arange(count))

    def fwd(p, s, xb):
        return member.apply(p, s, xb, train=False)[0]
    fwd = _steps.cached(("predict", model, mesh),
                        lambda: jax.jit(_steps.vmap_if(fwd, n, (0, 0, None))))
    outs = []
    for xb, valid in batches:
        real = int(valid.sum())
        yb = jax.device_get(fwd(params, state, place.batch(xb)))
        outs.append(jax.tree_util.tree_map(
            lambda a: a[:, :real] if n else a[:real], yb))
    axis = 1 if n else 0
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=axis), *outs)

