"""The compiled pieces of `fit` / `evaluate`: the training step, the evaluation step,
metric accumulators, and a small cache so that a second `fit` of the same model,
optimizer, loss and metrics reuses the compiled step instead of compiling it again.

One training step (the training step) runs the model in the stateful form with
``train=True`` and a fresh key per step (``fold_in(rng, step)``), adds ``model.penalty``
and the activity-regularizer losses found in the new state to the data loss, applies the
optax update, then ``model.constrain``. It donates the training state and accumulators.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ..regularizers import activity_loss


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


def per_sample_loss(loss, y, y_pred):
    """The loss of each sample, shape (batch,), float32. A label of shape (n,) against an
    output of shape (n, 1) is given the output's rank first (Keras accepts both)."""
    if hasattr(y, "ndim") and hasattr(y_pred, "ndim"):
        if y.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y = y[..., None]
        elif y_pred.ndim == y.ndim - 1 and y.shape[-1] == 1:
            y = y[..., 0]
    per = loss.per_sample(y, y_pred)
    if per.ndim > 1:
        per = jnp.mean(per, axis=tuple(range(1, per.ndim)))
    return per.astype(jnp.float32)


def _loss_meter():
    return jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)


def _mean(meter):
    return meter[0] / jnp.maximum(meter[1], 1.0)


def train_step(model, tx, loss, metrics):
    """``(ts, meters, (x, y, w), valid) -> (ts, meters)``: one optimizer step."""
    def step(ts, meters, batch, valid):
        x, y, w = batch
        w = w * valid
        rng = jax.random.fold_in(jax.random.wrap_key_data(ts.rng), ts.step)
        n = jnp.maximum(jnp.sum(valid), 1.0)

        def loss_fn(params):
            y_pred, state = model.apply(params, ts.state, x, rng=rng, train=True)
            data = jnp.sum(per_sample_loss(loss, y, y_pred) * w) / n
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
            out["loss"] = (meters["loss"][0] + jnp.sum(per_sample_loss(loss, y, y_pred) * w),
                           meters["loss"][1] + jnp.sum(valid))
        return out
    return step


def results(meters, metrics, model, params):
    """The epoch's values from the accumulators (the loss plus the penalty of `params`)."""
    out = {}
    if "loss" in meters:
        out["loss"] = _mean(meters["loss"]) + (model.penalty(params) if params is not None else 0)
    for m in metrics:
        out[m.name] = m.result(meters[m.name])
    return out


def init_meters(metrics, with_loss=True):
    """Fresh accumulators for `metrics` (and the loss)."""
    meters = {m.name: m.init() for m in metrics}
    if with_loss:
        meters["loss"] = _loss_meter()
    return meters


def check_metric_names(metrics):
    names = [m.name for m in metrics]
    dup = {n for n in names if names.count(n) > 1 or n == "loss"}
    if dup:
        raise ValueError(f"metric names must be unique and not 'loss', got {sorted(dup)}")


def vmap_if(fn, n, in_axes):
    return jax.vmap(fn, in_axes=in_axes) if n else fn


class Evaluator:
    """A compiled evaluation pass (one compilation per batch shape).

    Called with ``(params, state, batches)`` (an iterable of ``((x, y, w), valid)``), it
    returns the device values of the loss and metrics."""

    def __init__(self, member, n_members, loss, metrics, place):
        self.n, self.place = n_members, place
        step = _eval_step(member, loss, metrics)
        self.step = jax.jit(vmap_if(step, n_members, (0, 0, 0, None, None)),
                            donate_argnums=(2,))
        self.init = jax.jit(vmap_if(lambda _: init_meters(metrics, loss is not None),
                                    n_members, 0))
        self.results = jax.jit(vmap_if(lambda mt, p: results(mt, metrics, member, p),
                                       n_members, (0, 0)))

    def __call__(self, params, state, batches):
        meters = self.init(jnp.zeros((self.n,)) if self.n else None)
        for batch, valid in batches:
            meters = self.step(params, state, meters, self.place.batch(batch),
                               self.place.batch(valid))
        return self.results(meters, params)


# --------------------------------------------------------------------------- compile cache

_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 16


def _identity(obj):
    """A hashable stand-in for `obj`: itself when hashable, else its id."""
    try:
        hash(obj)
        return obj
    except TypeError:
        return ("id", id(obj))


def cached(key_parts, build):
    """``build()`` once per key: the compiled functions of one (model, optimizer, loss,
    metrics, placement). The key holds the caller's objects themselves (layers and
    optimizers compare by identity), so a later call with the same objects reuses the
    functions jax has already compiled. The last `_CACHE_SIZE` keys are kept."""
    key = tuple(_identity(k) for k in key_parts)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key][1]
    value = build()
    _CACHE[key] = (key_parts, value)     # key_parts keeps the id'd objects alive
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def metrics_key(identifiers):
    """The cache key of the metrics as the caller gave them (names, objects)."""
    return tuple(_identity(m) for m in identifiers)


def loss_key(identifier):
    return _identity(identifier if not isinstance(identifier, str) else ("loss", identifier))

