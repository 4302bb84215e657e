"""Keras' weight constraints: callables ``array -> array`` (projections), by name or object.

Applied after each optimizer update by ``model.constrain(params)``.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from .lookup import get_by_name
from .layers.args import fraction, int_or_ints, number

__all__ = ["MaxNorm", "MinMaxNorm", "UnitNorm", "NonNeg", "max_norm", "min_max_norm",
           "unit_norm", "non_neg", "get", "constrain_updates"]

_EPSILON = 1e-7


def _norms(w, axis):
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))


@dataclasses.dataclass(frozen=True)
class MaxNorm:
    """Rescale weights so the norm over `axis` is at most `max_value`."""
    max_value: float = 2.0
    axis: int | tuple = 0

    def __post_init__(self):
        number("MaxNorm", "max_value", self.max_value, minimum=0)
        int_or_ints("MaxNorm", "axis", self.axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        return w * (jnp.clip(norms, 0, self.max_value) / (_EPSILON + norms))


@dataclasses.dataclass(frozen=True)
class MinMaxNorm:
    """Move the norm over `axis` towards [min_value, max_value] at `rate` (1 = project)."""
    min_value: float = 0.0
    max_value: float = 1.0
    rate: float = 1.0
    axis: int | tuple = 0

    def __post_init__(self):
        low = number("MinMaxNorm", "min_value", self.min_value, minimum=0)
        number("MinMaxNorm", "max_value", self.max_value, minimum=low)
        fraction("MinMaxNorm", "rate", self.rate)
        int_or_ints("MinMaxNorm", "axis", self.axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * jnp.clip(norms, self.min_value, self.max_value) + (
            1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))


@dataclasses.dataclass(frozen=True)
class UnitNorm:
    """Scale weights to unit norm over `axis`."""
    axis: int | tuple = 0

    def __post_init__(self):
        int_or_ints("UnitNorm", "axis", self.axis)

    def __call__(self, w):
        return w / (_EPSILON + _norms(w, self.axis))


@dataclasses.dataclass(frozen=True)
class NonNeg:
    """Set negative weights to zero."""

    def __call__(self, w):
        return jnp.maximum(w, jnp.zeros((), w.dtype))


max_norm, min_max_norm, unit_norm, non_neg = MaxNorm, MinMaxNorm, UnitNorm, NonNeg

_BY_NAME = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "unit_norm": UnitNorm,
            "non_neg": NonNeg, "MaxNorm": MaxNorm, "MinMaxNorm": MinMaxNorm,
            "UnitNorm": UnitNorm, "NonNeg": NonNeg}


def get(identifier):
    """A constraint from a name (``"max_norm"``, Keras' defaults), an object, or None."""
    return get_by_name(identifier, _BY_NAME, "constraint", "array -> array")


def constrain_updates(model):
    """An optax ``GradientTransformation`` that makes an update land on `model.constrain`.

    Chain it last, ``tx = optax.chain(optax.adam(1e-3), jl.constrain_updates(model))``;
    its ``update(updates, state, params)`` needs `params` and returns
    ``model.constrain(params + updates) - params``, so that
    ``optax.apply_updates(params, updates)`` gives the projected weights (up to one
    rounding of the subtraction). The plain one-liner it replaces, exact and
    equivalent, is ``params = model.constrain(optax.apply_updates(params, updates))``.

    `model` is a Layer or any callable ``params -> params``.
    """
    import jax
    import optax

    project = model.constrain if hasattr(model, "constrain") else model
    if not callable(project):
        raise ValueError(f"constrain_updates: expected a Layer or a function params -> params, "
                         f"got {model!r}")

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("constrain_updates: update(updates, state, params) needs params "
                             "(pass them to tx.update)")
        target = project(optax.apply_updates(params, updates))
        return jax.tree_util.tree_map(
            lambda t, p: (t - p).astype(jnp.result_type(p)), target, params), state

    return optax.GradientTransformation(init, update)
