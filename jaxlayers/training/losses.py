"""Keras' losses as pure functions, built on optax where optax has them.

Each lower-case function (``binary_crossentropy``, ``mean_squared_error``, ...) has Keras'
name, arguments and defaults and returns the *per-sample* loss (the last axis reduced),
exactly like ``keras.losses.<name>``. The CamelCase constructors (``BinaryCrossentropy(
from_logits=True)``, ...) return a `Loss`: calling it gives Keras' default reduction
("sum_over_batch_size", the mean over every remaining entry), and `fit` uses its
``per_sample`` function to mask padded rows.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

EPSILON = 1e-7  # keras.backend.epsilon()


def _float(y_true, y_pred):
    y_pred = jnp.asarray(y_pred)
    if not jnp.issubdtype(y_pred.dtype, jnp.floating):
        y_pred = y_pred.astype(jnp.float32)
    return jnp.asarray(y_true).astype(y_pred.dtype), y_pred


def _same_rank(y_true, y_pred):
    """Keras' squeeze_or_expand_to_same_rank: drop/add a trailing 1 so ranks agree."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    return y_true, y_pred


def _check_same_shape(name, y_true, y_pred):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: y_true and y_pred must have the same shape, received "
                         f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}")


# --------------------------------------------------------------------------- crossentropies


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy, averaged over `axis`; labels are smoothed towards 0.5.

    Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does; logits go through
    `optax.sigmoid_binary_cross_entropy`. Returns one value per sample.
    """
    y_true, y_pred = _float(y_true, y_pred)
    _check_same_shape("binary_crossentropy", y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        per = optax.sigmoid_binary_cross_entropy(y_pred, y_true)
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        per = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log(1.0 - p))
    return jnp.mean(per, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Crossentropy between one-hot (or soft) labels and class scores along `axis`.

    Probabilities are renormalised and clipped as in Keras; logits go through
    `optax.softmax_cross_entropy`. Returns one value per sample.
    """
    y_true, y_pred = _float(y_true, y_pred)
    _check_same_shape("categorical_crossentropy", y_true, y_pred)
    if label_smoothing:
        n = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    if from_logits:
        return optax.softmax_cross_entropy(y_pred, y_true, axis=axis)
    p = y_pred / jnp.sum(y_pred, axis=axis, keepdims=True)
    p = jnp.clip(p, EPSILON, 1.0 - EPSILON)
    return -jnp.sum(y_true * jnp.log(p), axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Crossentropy between integer labels and class scores along `axis`.

    `y_true` has the shape of `y_pred` without `axis` (a trailing 1 is squeezed).
    Entries equal to `ignore_class` give 0. As in Keras 3, a label outside
    ``[0, classes)`` (e.g. -1, or `classes`) has an all-zero one-hot row and gives 0 (`fit`
    and `evaluate` refuse such labels before training). Returns one value per sample.
    """
    y_pred = jnp.asarray(y_pred)
    y_true = jnp.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = jnp.squeeze(y_true, axis=axis)
    y_true = y_true.astype(jnp.int32)
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != axis % y_pred.ndim)
    if y_true.shape != expected:
        raise ValueError(f"sparse_categorical_crossentropy: y_true must have the shape of y_pred "
                         f"without the class axis, received y_true.shape={y_true.shape}, "
                         f"y_pred.shape={y_pred.shape}")
    valid = None
    if ignore_class is not None:
        valid = y_true != ignore_class
        y_true = jnp.where(valid, y_true, 0)
    if from_logits:
        log_p = jax.nn.log_softmax(y_pred, axis=axis)
    else:
        p = y_pred / jnp.sum(y_pred, axis=axis, keepdims=True)
        log_p = jnp.log(jnp.clip(p, EPSILON, 1.0 - EPSILON))
    onehot = jax.nn.one_hot(y_true, y_pred.shape[axis], axis=axis, dtype=log_p.dtype)
    res = -jnp.sum(onehot * log_p, axis=axis)
    if valid is not None:
        res = jnp.where(valid, res, 0.0)
    return res


def sparse_label_spec(loss):
    """``(axis, ignore_class)`` when `loss` is a sparse categorical crossentropy (whose
    integer labels index the model's classes), else None."""
    fn = getattr(loss, "per_sample", loss)
    keywords = {}
    if isinstance(fn, functools.partial):
        fn, keywords = fn.func, fn.keywords
    if fn is not sparse_categorical_crossentropy:
        return None
    return keywords.get("axis", -1), keywords.get("ignore_class")


# --------------------------------------------------------------------------- regression


def mean_squared_error(y_true, y_pred):
    """``mean((y_true - y_pred) ** 2, axis=-1)`` (via `optax.squared_error`)."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    return jnp.mean(optax.squared_error(y_pred, y_true), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(|y_true - y_pred|, axis=-1)``."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)``."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    return 100.0 * jnp.mean(jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON)),
                            axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)) ** 2, axis=-1)``."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    a = jnp.log(jnp.maximum(y_pred, EPSILON) + 1.0)
    b = jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    return jnp.mean(jnp.square(a - b), axis=-1)


def huber(y_true, y_pred, delta=1.0):
    """Huber loss (quadratic below `delta`, linear above), averaged over the last axis
    (via `optax.huber_loss`)."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    return jnp.mean(optax.huber_loss(y_pred, y_true, delta=delta), axis=-1)


def log_cosh(y_true, y_pred):
    """``mean(log(cosh(y_pred - y_true)), axis=-1)`` (via `optax.log_cosh`)."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    return jnp.mean(optax.log_cosh(y_pred, y_true), axis=-1)


def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``."""
    y_true, y_pred = _float(y_true, y_pred)
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1)


def kl_divergence(y_true, y_pred):
    """``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to [1e-7, 1]
    (via `optax.kl_divergence`)."""
    y_true, y_pred = _float(y_true, y_pred)
    t = jnp.clip(y_true, EPSILON, 1.0)
    p = jnp.clip(y_pred, EPSILON, 1.0)
    return optax.kl_divergence(jnp.log(p), t, axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """The *negative* cosine similarity along `axis` (-1 = same direction), as Keras' loss
    (via `optax.cosine_similarity`)."""
    y_true, y_pred = _same_rank(*_float(y_true, y_pred))
    return -optax.cosine_similarity(y_pred, y_true, epsilon=1e-6, axis=axis)


# --------------------------------------------------------------------------- hinge


def _hinge_labels(y_true):
    """Keras: labels that are all 0/1 are mapped to -1/1; others are kept."""
    binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    """``mean(max(1 - y_true * y_pred, 0), axis=-1)``; 0/1 labels become -1/1
    (via `optax.hinge_loss`)."""
    y_true, y_pred = _float(y_true, y_pred)
    return jnp.mean(optax.hinge_loss(y_pred, _hinge_labels(y_true)), axis=-1)


def squared_hinge(y_true, y_pred):
    """``mean(max(1 - y_true * y_pred, 0) ** 2, axis=-1)``; 0/1 labels become -1/1."""
    y_true, y_pred = _float(y_true, y_pred)
    return jnp.mean(jnp.square(optax.hinge_loss(y_pred, _hinge_labels(y_true))), axis=-1)


def categorical_hinge(y_true, y_pred):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` per sample."""
    y_true, y_pred = _float(y_true, y_pred)
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(neg - pos + 1.0, 0.0)


# --------------------------------------------------------------------------- Loss objects


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss with Keras' default reduction.

    ``loss(y_true, y_pred, sample_weight=None)`` returns the mean of
    ``per_sample(y_true, y_pred) * sample_weight`` over every entry (Keras'
    "sum_over_batch_size"). `fit` / `evaluate` call `per_sample` and mask padded rows.
    """

    per_sample: Callable
    name: str

    def __call__(self, y_true, y_pred, sample_weight=None):
        values = self.per_sample(y_true, y_pred)
        if sample_weight is not None:
            w = jnp.asarray(sample_weight, values.dtype)
            w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
            values = values * w
        return jnp.mean(values)


def _loss_class(fn, name):
    def make(**kwargs):
        return Loss(functools.partial(fn, **kwargs) if kwargs else fn, name)
    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"A `Loss` computing `{fn.__name__}` with these keyword arguments."
    return make


BinaryCrossentropy = _loss_class(binary_crossentropy, "BinaryCrossentropy")
CategoricalCrossentropy = _loss_class(categorical_crossentropy, "CategoricalCrossentropy")
SparseCategoricalCrossentropy = _loss_class(sparse_categorical_crossentropy,
                                            "SparseCategoricalCrossentropy")
MeanSquaredError = _loss_class(mean_squared_error, "MeanSquaredError")
MeanAbsoluteError = _loss_class(mean_absolute_error, "MeanAbsoluteError")
MeanAbsolutePercentageError = _loss_class(mean_absolute_percentage_error,
                                          "MeanAbsolutePercentageError")
MeanSquaredLogarithmicError = _loss_class(mean_squared_logarithmic_error,
                                          "MeanSquaredLogarithmicError")
Huber = _loss_class(huber, "Huber")
LogCosh = _loss_class(log_cosh, "LogCosh")
Poisson = _loss_class(poisson, "Poisson")
KLDivergence = _loss_class(kl_divergence, "KLDivergence")
CosineSimilarity = _loss_class(cosine_similarity, "CosineSimilarity")
Hinge = _loss_class(hinge, "Hinge")
SquaredHinge = _loss_class(squared_hinge, "SquaredHinge")
CategoricalHinge = _loss_class(categorical_hinge, "CategoricalHinge")

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence

_BY_NAME = {
    f.__name__: f for f in (
        binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy,
        mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
        mean_squared_logarithmic_error, huber, log_cosh, poisson, kl_divergence,
        cosine_similarity, hinge, squared_hinge, categorical_hinge)}
_BY_NAME.update(mse=mean_squared_error, mae=mean_absolute_error,
                mape=mean_absolute_percentage_error, msle=mean_squared_logarithmic_error,
                kld=kl_divergence, huber_loss=huber)


def get(identifier) -> Loss:
    """A `Loss` from a Keras name (``"sparse_categorical_crossentropy"``, ``"mse"``), a `Loss`,
    or a function ``(y_true, y_pred) -> per-sample loss``."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown loss {identifier!r}; valid names: "
                             f"{', '.join(sorted(_BY_NAME))}, or a function "
                             f"(y_true, y_pred) -> per-sample loss")
        fn = _BY_NAME[identifier]
        return Loss(fn, identifier)
    if callable(identifier):
        return Loss(identifier, getattr(identifier, "__name__", "loss"))
    raise ValueError(f"expected a loss name, a Loss or a function, got {identifier!r}")
