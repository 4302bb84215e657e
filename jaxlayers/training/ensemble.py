"""Ensembles: n independently initialised copies of a model, trained in one vmapped step."""
from __future__ import annotations

import dataclasses

import jax

from ..core import Layer, as_layer, as_shape


@dataclasses.dataclass(frozen=True, eq=False)
class Ensemble:
    """`n` members of the same architecture with stacked params (leading axis n).

    ``init(key, input_shape)`` gives each member its own key (``split(key, n)``) and
    returns ``(output_shape, params[, state])`` with every leaf stacked on axis 0.
    ``apply`` runs all members on the same input (``jax.vmap``) and returns outputs shaped
    ``(n, batch, ...)``; with ``train=True`` each member gets its own dropout key.
    `fit`, `evaluate` and `predict` accept an Ensemble and vmap the whole step, so every
    member has its own optimizer state and its own metrics.
    """

    member: Layer
    n: int

    @property
    def name(self):
        return f"ensemble({self.member.name}, {self.n})"

    @property
    def stateful(self):
        return self.member.stateful

    def init(self, key, input_shape):
        keys = jax.random.split(key, self.n)
        return jax.vmap(self.member.init, in_axes=(0, None))(keys, as_shape(input_shape))

    def apply(self, params, *args, rng=None, train=False):
        member = self.member
        rngs = None if rng is None else jax.random.split(rng, self.n)
        if member.stateful:
            state, x = args

            def one(p, s, r):
                return member.apply(p, s, x, rng=r, train=train)
            return jax.vmap(one)(params, state, rngs)
        (x,) = args

        def one(p, r):
            return member.apply(p, x, rng=r, train=train)
        return jax.vmap(one)(params, rngs)

    def __iter__(self):
        yield self.init
        yield self.apply

    def __repr__(self):
        return self.name


def ensemble(model, n: int) -> Ensemble:
    """An `Ensemble` of `n` copies of `model`, each initialised with a distinct key."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"ensemble: n must be a positive int, got {n!r}")
    return Ensemble(as_layer(model), n)
