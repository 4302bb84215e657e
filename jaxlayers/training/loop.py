"""`fit`, `evaluate` and `predict`: a jit-compiled training loop over the layer contract.

One training step (DESIGN.md section 2) runs the model in the stateful form with
``train=True`` and a fresh key per step (``fold_in(rng, step)``), adds ``model.penalty``
and the activity-regularizer losses found in the new state to the data loss, applies the
optax update, then ``model.constrain``. The step is compiled once and donates the
training state and metric accumulators.

Batching: every batch has the same shape. The last partial batch of an epoch is filled up
with rows taken from the start of the epoch (or, for an iterable of batches, repeated
from the batch itself) whose weight is 0, so it counts exactly its real rows in the loss,
the gradient and every metric, and never triggers a new compilation.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..core import as_layer, with_state
from ..regularizers import activity_loss
from . import callbacks as _callbacks
from . import losses as _losses
from . import metrics as _metrics
from .ensemble import Ensemble


# --------------------------------------------------------------------------- state


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """Everything training carries from step to step (a pytree).

    Attributes: ``params``, ``state`` (non-trainable state, ``()`` if none), ``opt_state``,
    ``step`` (int32), ``rng`` (raw key data, uint32; the key of step ``i`` is
    ``fold_in(wrap_key_data(rng), i)``).
    """

    params: Any
    state: Any
    opt_state: Any
    step: Any
    rng: Any


@dataclasses.dataclass
class History:
    """Per-epoch logs, as Keras' History: ``history.history["val_loss"][-1]``.

    Values are floats, or arrays of shape (n,) for an ensemble of n members.
    """

    history: dict = dataclasses.field(default_factory=dict)
    epoch: list = dataclasses.field(default_factory=list)

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
        if _is_stateful(model):
            raise ValueError(f"{_name(model)} is stateful: pass its state "
                             f"(state=... from init)")
        state = ()
    return params, state


def _is_stateful(model):
    return model.member.stateful if isinstance(model, Ensemble) else as_layer(model).stateful


def _name(model):
    return model.name if hasattr(model, "name") else repr(model)


# --------------------------------------------------------------------------- batching


def _leading(tree):
    sizes = {np.shape(a)[0] for a in jax.tree_util.tree_leaves(tree)}
    if len(sizes) != 1:
        raise ValueError(f"all inputs must have the same number of samples, received "
                         f"leading sizes {sorted(sizes)}")
    return sizes.pop()


def _take(tree, idx):
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[idx], tree)


def _array_batches(arrays, batch_size, order):
    """``(batch_arrays, valid)`` per batch; the last one padded with rows of weight 0."""
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        real = len(idx)
        if real < batch_size:
            idx = np.concatenate([idx, np.resize(order, batch_size - real)])
        valid = np.zeros(batch_size, np.float32)
        valid[:real] = 1.0
        yield _take(arrays, idx), valid


def _pad_batch(batch, size):
    real = _leading(batch)
    valid = np.zeros(size, np.float32)
    valid[:real] = 1.0
    if real == size:
        return jax.tree_util.tree_map(np.asarray, batch), valid
    idx = np.resize(np.arange(real), size)
    return _take(batch, idx), valid


def _iterable_batches(data, expect):
    """Pad each batch of an iterable to the size of the largest one seen so far."""
    it = data() if callable(data) else data
    size = 0
    count = 0
    for item in it:
        if expect == "xy":
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise ValueError("each batch of `data` must be a tuple (x, y) or "
                                 "(x, y, sample_weight)")
            item = tuple(item) if len(item) == 3 else (item[0], item[1], None)
            if item[2] is None:
                item = (item[0], item[1], np.ones(_leading(item[0]), np.float32))
        size = max(size, _leading(item))
        count += 1
        yield _pad_batch(item, size)
    if count == 0:
        raise ValueError("`data` yielded no batches (a one-shot iterator is exhausted after the "
                         "first epoch: pass a list, a re-iterable, or a function returning a "
                         "fresh iterator)")


def _batches(x, y, sample_weight, data, batch_size, order_rng=None, expect="xy"):
    """Yield ``((x, y, w), valid)`` (or ``(x, valid)`` for ``expect="x"``) host batches."""
    if data is not None:
        if x is not None:
            raise ValueError("pass either x (and y) or data, not both")
        yield from _iterable_batches(data, expect)
        return
    if x is None:
        raise ValueError("no data: pass x (and y) arrays or data=<iterable of batches>")
    if expect == "x":
        n = _leading(x)
        yield from _array_batches(x, batch_size, np.arange(n))
        return
    if y is None:
        raise ValueError("y is missing: pass labels y with x")
    w = np.ones(_leading(x), np.float32) if sample_weight is None else np.asarray(
        sample_weight, np.float32)
    arrays = (x, y, w)
    n = _leading(arrays)
    order = order_rng.permutation(n) if order_rng is not None else np.arange(n)
    yield from _array_batches(arrays, batch_size, order)


def _num_batches(x, data, batch_size):
    if data is not None:
        try:
            return len(data)
        except TypeError:
            return None
    return math.ceil(_leading(x) / batch_size)


# --------------------------------------------------------------------------- steps


def _per_sample(loss, y, y_pred):
    per = loss.per_sample(y, y_pred)
    if per.ndim > 1:
        per = jnp.mean(per, axis=tuple(range(1, per.ndim)))
    return per.astype(jnp.float32)


def _loss_meter():
    return jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)


def _mean(meter):
    return meter[0] / jnp.maximum(meter[1], 1.0)


def _train_step(model, tx, loss, metrics):
    def step(ts, meters, batch, valid):
        x, y, w = batch
        w = w * valid
        rng = jax.random.fold_in(jax.random.wrap_key_data(ts.rng), ts.step)
        n = jnp.maximum(jnp.sum(valid), 1.0)

        def loss_fn(params):
            y_pred, state = model.apply(params, ts.state, x, rng=rng, train=True)
            data = jnp.sum(_per_sample(loss, y, y_pred) * w) / n
            total = data + model.penalty(params) + activity_loss(state)
            return total, (state, y_pred)

        (total, (state, y_pred)), grads = jax.value_and_grad(loss_fn, has_aux=True)(ts.params)
        updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
        params = model.constrain(optax.apply_updates(ts.params, updates))
        meters = {"loss": (meters["loss"][0] + total * jnp.sum(valid),
                           meters["loss"][1] + jnp.sum(valid)),
                  **{m.name: m.update(meters[m.name], y, y_pred, w) for m in metrics}}
        return TrainState(params, state, opt_state, ts.step + 1, ts.rng), meters
    return step


def _eval_step(model, loss, metrics):
    def step(params, state, meters, batch, valid):
        x, y, w = batch
        w = w * valid
        y_pred, _ = model.apply(params, state, x, train=False)
        out = {m.name: m.update(meters[m.name], y, y_pred, w) for m in metrics}
        if loss is not None:
            out["loss"] = (meters["loss"][0] + jnp.sum(_per_sample(loss, y, y_pred) * w),
                           meters["loss"][1] + jnp.sum(valid))
        return out
    return step


def _results(meters, metrics, model, params):
    out = {}
    if "loss" in meters:
        out["loss"] = _mean(meters["loss"]) + (model.penalty(params) if params is not None else 0)
    for m in metrics:
        out[m.name] = m.result(meters[m.name])
    return out


def _init_meters(metrics, with_loss=True):
    meters = {m.name: m.init() for m in metrics}
    if with_loss:
        meters["loss"] = _loss_meter()
    return meters


def _check_metric_names(metrics):
    names = [m.name for m in metrics]
    dup = {n for n in names if names.count(n) > 1 or n == "loss"}
    if dup:
        raise ValueError(f"metric names must be unique and not 'loss', got {sorted(dup)}")


# --------------------------------------------------------------------------- placement


class _Placement:
    """Where arrays live: the default device, or a `Mesh` (batch split over its first axis,
    everything else replicated unless it already has a `NamedSharding` on the mesh)."""

    def __init__(self, mesh=None, batch_size=None):
        self.mesh = mesh
        if mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec as P
            self.axis = mesh.axis_names[0]
            self.data = NamedSharding(mesh, P(self.axis))
            self.replicated = NamedSharding(mesh, P())
            n = mesh.shape[self.axis]
            if batch_size is not None and batch_size % n:
                raise ValueError(f"batch_size {batch_size} must be divisible by the {n} "
                                 f"devices of mesh axis {self.axis!r}")

    def batch(self, tree):
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, self.data)

    def state(self, tree, like=None):
        if self.mesh is None:
            return jax.device_put(tree)
        from jax.sharding import NamedSharding

        def place(a, ref):
            s = getattr(ref, "sharding", None)
            if isinstance(s, NamedSharding) and s.mesh.shape == self.mesh.shape:
                return jax.device_put(a, s)
            return jax.device_put(a, self.replicated)
        return jax.tree_util.tree_map(place, tree, tree if like is None else like)


# --------------------------------------------------------------------------- progress


class _Progress:
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
                self.bar.set_postfix_str(_fmt(logs), refresh=False)

    def end(self, epoch, logs):
        if self.bar is not None:
            self.bar.set_postfix_str(_fmt(logs))
            self.bar.close()
        elif self.verbose:
            print(f"Epoch {epoch + 1}/{self.epochs} - {time.perf_counter() - self.t0:.1f}s - "
                  f"{_fmt(logs)}", flush=True)


def _fmt(logs):
    return " - ".join(f"{k}: {np.mean(v):.4f}" for k, v in logs.items())


def _host(logs):
    out = {}
    for k, v in jax.device_get(logs).items():
        v = np.asarray(v)
        out[k] = float(v) if v.ndim == 0 else v
    return out


# --------------------------------------------------------------------------- public API


def _member_model(model):
    if isinstance(model, Ensemble):
        return with_state(model.member), model.n
    return with_state(as_layer(model)), None


def _vmap_if(fn, n, in_axes):
    return jax.vmap(fn, in_axes=in_axes) if n else fn


def fit(model, params, optimizer, loss, x=None, y=None, *, state=None, data=None, epochs=1,
        batch_size=32, validation_data=None, metrics=(), callbacks=(), rng=None, shuffle=True,
        sample_weight=None, verbose=1, mesh=None, initial_epoch=0):
    """Train `model` and return ``(train_state, history)``.

    Args:
      model: a Layer (or an `Ensemble`, whose members are trained at once in one vmapped step).
      params: the params from ``init`` (they are copied, never donated), or a `TrainState`
        to resume from (its optimizer state is kept).
      optimizer: an optax ``GradientTransformation`` (learning-rate schedules go inside it).
      loss: a Keras loss name, a `Loss`, or ``(y_true, y_pred) -> per-sample loss``.
      x, y: arrays (or pytrees of arrays) with the samples first; or
      data: an iterable of ``(x, y)`` / ``(x, y, sample_weight)`` batches (a list, a
        re-iterable, or a function returning a fresh iterator each epoch).
      state: the model's non-trainable state (required when the model is stateful).
      epochs, batch_size, shuffle, sample_weight, initial_epoch: as in Keras.
      validation_data: ``(x_val, y_val)`` or an iterable of batches, evaluated each epoch.
      metrics: names (``"accuracy"``), `Metric`s or per-sample functions.
      callbacks: `EarlyStopping`, `ModelCheckpoint`, `LambdaCallback`, functions.
      rng: a key or int seed for dropout and shuffling (default 0).
      verbose: 0 silent, 1 progress bar (tqdm if installed, else one line per epoch),
        2 one line per epoch.
      mesh: a `jax.sharding.Mesh` for data-parallel training (batch split over its first
        axis; params replicated unless already placed with a `NamedSharding` on it).

    Returns: ``(TrainState, History)``.
    """
    member, n_members = _member_model(model)
    loss = _losses.get(loss)
    metrics = [_metrics.get(m) for m in metrics]
    _check_metric_names(metrics)
    cbs = [_callbacks.as_callback(c) for c in callbacks]
    place = _Placement(mesh, batch_size if data is None else None)

    key_data = _key_data(rng)
    seed = np.asarray(jax.device_get(key_data)).ravel().tolist()
    if isinstance(params, TrainState):
        ts = params
        seed.append(int(np.max(jax.device_get(ts.step))))   # resuming: a new shuffle order
    else:
        p, s = _unpack_params(model, params, state)
        opt_state = (jax.vmap(optimizer.init) if n_members else optimizer.init)(p)
        member_keys = key_data if not n_members else jax.vmap(
            lambda i: jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(
                key_data), i)))(jnp.arange(n_members))
        step0 = jnp.zeros((n_members,) if n_members else (), jnp.int32)
        ts = TrainState(p, s, opt_state, step0, member_keys)
    np_rng = np.random.default_rng(seed)
    ts = place.state(_copy(ts), like=ts)
    ts_sharding = jax.tree_util.tree_map(lambda a: a.sharding, ts)

    step = _vmap_if(_train_step(member, optimizer, loss, metrics), n_members, (0, 0, None, None))
    meter_axes = 0 if n_members else None
    jit_kwargs = {}
    if mesh is not None:
        jit_kwargs["out_shardings"] = (ts_sharding, place.replicated)
    train_step = jax.jit(step, donate_argnums=(0, 1), **jit_kwargs)
    init_meters = jax.jit(_vmap_if(lambda _: _init_meters(metrics), n_members, 0))
    # the train loss meter already holds the penalty of each step
    results = jax.jit(_vmap_if(lambda mt, p: _results(mt, metrics, member, None), n_members,
                               (0, 0)))
    members_arg = jnp.zeros((n_members or 1,))
    evaluator = _Evaluator(member, n_members, loss, metrics, place) if validation_data is not None else None

    history = History()
    run = _callbacks.Run(model, ts, history, epochs, verbose=verbose,
                         _place=lambda host: place.state(jax.device_put(host), like=ts))
    progress = _Progress(verbose, epochs)
    for cb in cbs:
        getattr(cb, "on_train_begin", lambda r: None)(run)

    total = _num_batches(x, data, batch_size)
    for epoch in range(initial_epoch, epochs):
        meters = init_meters(members_arg if n_members else None)
        if mesh is not None:
            meters = jax.device_put(meters, place.replicated)
        progress.start(epoch, total)
        every = max(1, (total or 50) // 20)
        ts = run.state
        for i, (batch, valid) in enumerate(_batches(
                x, y, sample_weight, data, batch_size, np_rng if shuffle else None)):
            ts, meters = train_step(ts, meters, place.batch(batch), place.batch(valid))
            if progress.bar is not None:
                progress.update(1, _host(results(meters, ts.params))
                                if (i + 1) % every == 0 else None)
        logs = _host(results(meters, ts.params))
        run.state = ts
        if evaluator is not None:
            vx, vy, vdata = _split_validation(validation_data)
            val = evaluator(ts.params, ts.state, vx, vy, vdata, batch_size)
            logs.update({f"val_{k}": v for k, v in val.items()})
        lr = _learning_rate(ts.opt_state)
        if lr is not None:
            logs["learning_rate"] = lr
        history.append(epoch, logs)
        progress.end(epoch, logs)
        for cb in cbs:
            getattr(cb, "on_epoch_end", lambda r, e, l: None)(run, epoch, logs)
        if run.stop_training:
            break
    for cb in cbs:
        getattr(cb, "on_train_end", lambda r: None)(run)
    return run.state, history


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


def _split_validation(validation_data):
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and not callable(
            validation_data):
        return validation_data[0], validation_data[1], None
    return None, None, validation_data


class _Evaluator:
    """A compiled evaluation pass (one compilation per batch shape)."""

    def __init__(self, member, n_members, loss, metrics, place):
        self.member, self.n, self.loss, self.metrics, self.place = (member, n_members, loss,
                                                                    metrics, place)
        step = _eval_step(member, loss, metrics)
        self.step = jax.jit(_vmap_if(step, n_members, (0, 0, 0, None, None)),
                            donate_argnums=(2,))
        self.init = jax.jit(_vmap_if(lambda _: _init_meters(metrics, loss is not None),
                                     n_members, 0))
        self.results = jax.jit(_vmap_if(lambda mt, p: _results(mt, metrics, member, p),
                                        n_members, (0, 0)))

    def __call__(self, params, state, x, y, data, batch_size, sample_weight=None):
        meters = self.init(jnp.zeros((self.n,)) if self.n else None)
        for batch, valid in _batches(x, y, sample_weight, data, batch_size):
            meters = self.step(params, state, meters, self.place.batch(batch),
                               self.place.batch(valid))
        return _host(self.results(meters, params))


def evaluate(model, params, x=None, y=None, *, loss=None, metrics=(), state=None, data=None,
             batch_size=32, sample_weight=None, mesh=None):
    """Evaluate in inference mode (``train=False``); returns ``{"loss": ..., name: ...}``.

    `params` may be a `TrainState`. Every sample counts exactly once (the last partial
    batch is padded with weight-0 rows). The loss includes ``model.penalty(params)``, as
    Keras' evaluate includes weight-regularization losses. For an `Ensemble` each value is
    an array with one entry per member.
    """
    member, n = _member_model(model)
    params, state = _unpack_params(model, params, state)
    loss = None if loss is None else _losses.get(loss)
    metrics = [_metrics.get(m) for m in metrics]
    _check_metric_names(metrics)
    ev = _Evaluator(member, n, loss, metrics, _Placement(mesh, batch_size if data is None
                                                         else None))
    return ev(params, state, x, y, data, batch_size, sample_weight)


def predict(model, params, x=None, *, state=None, data=None, batch_size=32, mesh=None):
    """Outputs of `model` in inference mode for every sample of `x` (or of each batch of
    `data`, an iterable of x batches), as numpy; for an `Ensemble` shaped
    ``(members, samples, ...)``. `params` may be a `TrainState`."""
    member, n = _member_model(model)
    params, state = _unpack_params(model, params, state)
    place = _Placement(mesh, batch_size if data is None else None)

    def fwd(p, s, xb):
        return member.apply(p, s, xb, train=False)[0]
    fwd = jax.jit(_vmap_if(fwd, n, (0, 0, None)))
    outs = []
    for xb, valid in _batches(x, None, None, data, batch_size, expect="x"):
        real = int(valid.sum())
        yb = jax.device_get(fwd(params, state, place.batch(xb)))
        outs.append(jax.tree_util.tree_map(
            lambda a: a[:, :real] if n else a[:real], yb))
    axis = 1 if n else 0
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=axis), *outs)
