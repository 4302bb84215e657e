"""Keras' metrics as pure, accumulating functions.

A per-sample metric function (``sparse_categorical_accuracy(y_true, y_pred)``, ...) has
Keras' name and returns one value per sample. A `Metric` accumulates over batches with
pure functions, so it runs inside a jitted step:

    state = metric.init()
    state = metric.update(state, y_true, y_pred, sample_weight)   # per batch
    value = metric.result(state)

``metric(y_true, y_pred)`` does all three on one batch. Padded rows get weight 0.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp

from . import losses as _losses

EPSILON = 1e-7


# --------------------------------------------------------------------------- per-sample


def accuracy(y_true, y_pred):
    """1.0 where ``y_true == y_pred`` (elementwise, ranks aligned), else 0.0."""
    y_pred = jnp.asarray(y_pred)
    y_true = jnp.asarray(y_true).astype(y_pred.dtype)
    y_true, y_pred = _losses._same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(jnp.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over the last axis of ``y_true == (y_pred > threshold)``."""
    y_pred = jnp.asarray(y_pred)
    y_true = jnp.asarray(y_true)
    y_true, y_pred = _losses._same_rank(y_true, y_pred)
    hit = (y_true.astype(jnp.float32) == (y_pred > threshold).astype(jnp.float32))
    return jnp.mean(hit.astype(jnp.float32), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` along the last axis."""
    return (jnp.argmax(y_true, -1) == jnp.argmax(y_pred, -1)).astype(jnp.float32)


def _sparse_labels(y_true, y_pred):
    y_true = jnp.asarray(y_true)
    if y_true.ndim == jnp.ndim(y_pred) and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label equals ``argmax(y_pred)``."""
    y_true = _sparse_labels(y_true, y_pred)
    return (y_true.astype(jnp.int32) == jnp.argmax(y_pred, -1)).astype(jnp.float32)


def _in_top_k(labels, y_pred, k):
    at_label = jnp.take_along_axis(y_pred, labels[..., None].astype(jnp.int32), axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    rank = 1 + jnp.sum(y_pred > at_label, axis=-1)
    return (rank <= k).astype(jnp.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot label's class is among the `k` highest scores."""
    return _in_top_k(jnp.argmax(y_true, -1), jnp.asarray(y_pred), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label is among the `k` highest scores."""
    return _in_top_k(_sparse_labels(y_true, y_pred), jnp.asarray(y_pred), k)


def _auto_accuracy(y_true, y_pred):
    """Keras' ``"accuracy"``: binary, sparse or categorical, chosen from the shapes."""
    y_pred = jnp.asarray(y_pred)
    y_true = jnp.asarray(y_true)
    if y_pred.shape[-1] == 1 or (y_pred.ndim == 1):
        return binary_accuracy(y_true, y_pred)
    if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


# --------------------------------------------------------------------------- Metric


@dataclasses.dataclass(frozen=True)
class Metric:
    """An accumulating metric: ``init() -> s``, ``update(s, y_true, y_pred, w) -> s``,
    ``result(s) -> scalar``; `w` is a per-sample weight (0 for padded rows) or None."""

    name: str
    init: Callable
    update: Callable
    result: Callable

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.result(self.update(self.init(), y_true, y_pred, sample_weight))


def _broadcast_weight(w, values):
    if w is None:
        return jnp.ones_like(values)
    w = jnp.asarray(w, values.dtype)
    w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
    return jnp.broadcast_to(w, values.shape)


def MeanMetricWrapper(fn: Callable, name: str | None = None, **kwargs) -> Metric:
    """The weighted mean of ``fn(y_true, y_pred, **kwargs)`` over every sample seen."""
    f = functools.partial(fn, **kwargs) if kwargs else fn
    name = name or getattr(fn, "__name__", "metric")

    def init():
        return jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)

    def update(state, y_true, y_pred, sample_weight=None):
        values = jnp.asarray(f(y_true, y_pred), jnp.float32)
        w = _broadcast_weight(sample_weight, values)
        return state[0] + jnp.sum(values * w), state[1] + jnp.sum(w)

    def result(state):
        return jnp.where(state[1] > 0, state[0] / jnp.where(state[1] > 0, state[1], 1.0), 0.0)

    return Metric(name, init, update, result)


def Accuracy(name="accuracy"):
    """How often predictions equal labels."""
    return MeanMetricWrapper(accuracy, name)


def BinaryAccuracy(name="binary_accuracy", threshold=0.5):
    """How often ``y_pred > threshold`` matches binary labels."""
    return MeanMetricWrapper(binary_accuracy, name, threshold=threshold)


def CategoricalAccuracy(name="categorical_accuracy"):
    """How often ``argmax(y_pred)`` matches one-hot labels."""
    return MeanMetricWrapper(categorical_accuracy, name)


def SparseCategoricalAccuracy(name="sparse_categorical_accuracy"):
    """How often ``argmax(y_pred)`` matches integer labels."""
    return MeanMetricWrapper(sparse_categorical_accuracy, name)


def TopKCategoricalAccuracy(k=5, name="top_k_categorical_accuracy"):
    """How often the one-hot label is among the top `k` scores."""
    return MeanMetricWrapper(top_k_categorical_accuracy, name, k=k)


def SparseTopKCategoricalAccuracy(k=5, name="sparse_top_k_categorical_accuracy"):
    """How often the integer label is among the top `k` scores."""
    return MeanMetricWrapper(sparse_top_k_categorical_accuracy, name, k=k)


def AUC(num_thresholds=200, curve="ROC", from_logits=False, name="auc"):
    """Area under the ROC curve from confusion counts at `num_thresholds` thresholds,
    summed with Keras' "interpolation" (trapezoid) rule; predictions are flattened.

    Only ``curve="ROC"`` is implemented (Keras' default).
    """
    if curve != "ROC":
        raise ValueError(f"AUC: only curve='ROC' is implemented, got {curve!r}")
    if not isinstance(num_thresholds, int) or num_thresholds <= 1:
        raise ValueError(f"AUC: num_thresholds must be an int > 1, got {num_thresholds!r}")
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    thresholds = jnp.asarray([0.0 - EPSILON] + inner + [1.0 + EPSILON], jnp.float32)

    def init():
        z = jnp.zeros((num_thresholds,), jnp.float32)
        return {"tp": z, "fp": z, "tn": z, "fn": z}

    def update(state, y_true, y_pred, sample_weight=None):
        y_pred = jnp.asarray(y_pred, jnp.float32)
        if from_logits:
            y_pred = jax.nn.sigmoid(y_pred)
        y_true = jnp.asarray(y_true, jnp.float32).reshape(y_pred.shape)
        w = _broadcast_weight(sample_weight, y_pred).reshape(-1)
        p, t = y_pred.reshape(-1), y_true.reshape(-1)
        above = (p[None, :] > thresholds[:, None]).astype(jnp.float32)
        pos, neg = (t * w)[None, :], ((1.0 - t) * w)[None, :]
        return {"tp": state["tp"] + jnp.sum(above * pos, 1),
                "fp": state["fp"] + jnp.sum(above * neg, 1),
                "tn": state["tn"] + jnp.sum((1 - above) * neg, 1),
                "fn": state["fn"] + jnp.sum((1 - above) * pos, 1)}

    def result(s):
        def ratio(a, b):
            return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)
        tpr = ratio(s["tp"], s["tp"] + s["fn"])
        fpr = ratio(s["fp"], s["fp"] + s["tn"])
        return jnp.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2.0)

    return Metric(name, init, update, result)


_BY_NAME = {
    "accuracy": lambda: MeanMetricWrapper(_auto_accuracy, "accuracy"),
    "acc": lambda: MeanMetricWrapper(_auto_accuracy, "acc"),
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "auc": AUC,
}


def get(identifier) -> Metric:
    """A `Metric` from a Keras name (``"accuracy"``, ``"auc"``, any loss name such as
    ``"mae"``), a `Metric`, or a per-sample function ``(y_true, y_pred) -> values``."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]()
        if identifier in _losses._BY_NAME:
            return MeanMetricWrapper(_losses._BY_NAME[identifier], identifier)
        raise ValueError(f"unknown metric {identifier!r}; valid names: "
                         f"{', '.join(sorted(_BY_NAME))}, any loss name, or a function "
                         f"(y_true, y_pred) -> per-sample values")
    if isinstance(identifier, _losses.Loss):
        return MeanMetricWrapper(identifier.per_sample, identifier.name)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"expected a metric name, a Metric or a function, got {identifier!r}")
