"""Keras' weight regularizers: callables ``array -> scalar`` penalty, by name or object."""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from .lookup import get_by_name

__all__ = ["L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
           "orthogonal_regularizer", "get", "with_activity_regularizer", "activity_loss"]


def _check_factor(who, name, value):
    """Keras' rule: a factor is a finite non-negative float (ValueError naming `who`)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isinf(value)
            or math.isnan(value) or value < 0):
        raise ValueError(f"{who}: {name} must be a non-negative float, got {value!r}")


@dataclasses.dataclass(frozen=True)
class _FactorPenalty:
    """Keras' L1 / L2 penalties: ``l1 * sum(|x|) + l2 * sum(x ** 2)`` over the factors a
    subclass declares as fields. Keras' rules: a factor given as None takes its field's
    default; each is a finite non-negative float; a term with a zero factor is left out
    (L1L2), a lone factor's term always computed (L1, L2)."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is None:
                object.__setattr__(self, field.name, field.default)
            _check_factor(type(self).__name__, field.name, getattr(self, field.name))

    def __call__(self, x):
        terms = {"l1": jnp.abs, "l2": jnp.square}
        fields = dataclasses.fields(self)
        total = jnp.zeros((), x.dtype)
        for field in fields:
            factor = getattr(self, field.name)
            if factor or len(fields) == 1:
                total = total + factor * jnp.sum(terms[field.name](x))
        return total


@dataclasses.dataclass(frozen=True)
class L1(_FactorPenalty):
    """``l1 * sum(|x|)``."""
    l1: float = 0.01


@dataclasses.dataclass(frozen=True)
class L2(_FactorPenalty):
    """``l2 * sum(x ** 2)``."""
    l2: float = 0.01


@dataclasses.dataclass(frozen=True)
class L1L2(_FactorPenalty):
    """``l1 * sum(|x|) + l2 * sum(x ** 2)``."""
    l1: float = 0.0
    l2: float = 0.0


@dataclasses.dataclass(frozen=True)
class OrthogonalRegularizer:
    """Mean absolute cosine similarity between the rows (or columns) of a 2-D kernel,
    times ``factor / 2`` (Keras' definition)."""
    factor: float = 0.01
    mode: str = "rows"

    def __post_init__(self):
        _check_factor("OrthogonalRegularizer", "factor", self.factor)
        if self.mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', "
                             f"got {self.mode!r}")

    def __call__(self, x):
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: expected a rank-2 weight, received "
                             f"shape {x.shape}")
        axis = 1 if self.mode == "rows" else 0
        # Keras: x * min(rsqrt(sum x^2), 1 / 1e-7); the same value, with finite gradients
        # for an all-zero row.
        x = x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=axis, keepdims=True),
                                          1e-14))
        product = x @ x.T if self.mode == "rows" else x.T @ x
        size = product.shape[0]
        off_diagonal = product * (1.0 - jnp.eye(size, dtype=x.dtype))
        return self.factor * 0.5 * jnp.sum(jnp.abs(off_diagonal)) / (size * (size - 1.0) / 2.0)


l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer

_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2,
            "orthogonal_regularizer": OrthogonalRegularizer, "L1": L1, "L2": L2,
            "L1L2": L1L2, "OrthogonalRegularizer": OrthogonalRegularizer}


def get(identifier):
    """A regularizer from a name (``"l2"``, with Keras' default factor), an object, or None."""
    return get_by_name(identifier, _BY_NAME, "regularizer", "array -> scalar")


def with_activity_regularizer(layer, regularizer):
    """`layer` with Keras' activity regularizer on its output, reported through state.

    The result is stateful; its state is ``{"layer": inner_state, "activity_loss": ()}``
    where ``activity_loss`` is ``regularizer(y) / batch_size`` from the last
    ``train=True`` call (eval leaves it unchanged), summed over the outputs when the
    layer returns several (Keras' rule; a scalar output is not divided, an empty batch
    gives 0). `activity_loss(state)` sums them over a whole model.
    Returns `layer` unchanged when `regularizer` is None.
    """
    from .core import as_layer, with_state
    if regularizer is None:
        return layer
    reg = get(regularizer)
    inner = with_state(as_layer(layer))

    def init(key, input_shape):
        out_shape, params, state = inner.init(key, input_shape)
        return out_shape, params, {"layer": state, "activity_loss": jnp.zeros((), jnp.float32)}

    def apply(params, state, x, *, rng=None, train=False, **kwargs):
        y, inner_state = inner.apply(params, state["layer"], x, rng=rng, train=train, **kwargs)
        # a container (Bidirectional, TimeDistributed) asked for return_mask gives (y, mask)
        outputs = y[0] if kwargs.get("return_mask") else y
        loss = state["activity_loss"]
        if train:
            loss = activity_penalty(reg, outputs, loss)
        return y, {"layer": inner_state, "activity_loss": loss}

    return dataclasses.replace(inner, init=init, apply=apply, stateful=True)


def activity_penalty(regularizer, outputs, like):
    """Keras' activity loss of `outputs` (an array or a pytree of them): the sum of
    ``regularizer(out) / batch_size`` (a scalar output is not divided, an empty batch gives
    0), in float32, or float64 when `like` (the loss it replaces) is."""
    dtype = jnp.promote_types(jnp.result_type(like), jnp.float32)
    loss = jnp.zeros((), dtype)
    for out in jax.tree_util.tree_leaves(outputs):
        term = jnp.asarray(regularizer(out), dtype)
        if out.ndim > 0:
            term = term / out.shape[0] if out.shape[0] else jnp.zeros_like(term)
        loss = loss + term
    return loss


def activity_loss(state):
    """The sum of every activity regularizer's loss found in a model's `state` (0.0 if none).

    Add it to the loss inside the training step, after the ``train=True`` forward pass:
    ``loss = data_loss + model.penalty(params) + jl.activity_loss(new_state)``.
    """
    total = 0.0
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if path and getattr(path[-1], "key", None) == "activity_loss":
            total = total + leaf
    return total
