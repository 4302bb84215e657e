"""SpectralNormalization: a layer whose kernel is divided by its largest singular value.

Keras 3's wrapper (Miyato et al., 2018): the wrapped layer's ``kernel`` (or ``embeddings``),
reshaped to ``(-1, out)``, is divided by ``sigma``, its spectral norm estimated by power
iteration from a vector ``u`` (1, out) kept between calls. Here ``u`` lives in the state
channel under ``"vector_u"`` (the layer is stateful) and the params are the wrapped layer's,
unchanged, so a Keras model's weights load as they are.

Training (``train=True``) runs `power_iterations` steps from the kept ``u`` exactly as Keras
does, uses ``kernel / sigma`` and returns the new ``u``. Keras then *overwrites* its kernel
variable with ``kernel / sigma``; a pure layer cannot (the optimizer owns the params), so
inference uses ``kernel / sigma`` as well, with ``sigma = ||kernel @ u.T||`` from the kept
``u`` (the power-iteration estimate, exact once ``u`` has converged) and leaves ``u`` as it is.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, ShapeError, as_layer, stateful_init
from .args import keras_layer, positive_int

__all__ = ["SpectralNormalization"]

STATE_KEY = "vector_u"


def _normalize(v):
    """`v` divided by its Euclidean norm (Keras' ``normalize(axis=None)``: eps 1e-12)."""
    return v / jnp.sqrt(jnp.maximum(jnp.sum(v * v), 1e-12))


def power_iteration(kernel, u, iterations: int):
    """``(new_u, sigma)``: `iterations` power-iteration steps on `kernel` reshaped to
    ``(-1, out)`` from `u` (1, out), and the spectral norm estimate ``v @ W @ u.T``, as
    Keras computes them (u and v without gradient)."""
    w = kernel.reshape((-1, kernel.shape[-1]))
    for _ in range(iterations):
        v = _normalize(u @ w.T)
        u = _normalize(v @ w)
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    return u, (v @ w @ u.T)[0, 0]


def kept_sigma(kernel, u):
    """The spectral norm estimate from a kept `u`, without iterating: ``||W @ u.T||``."""
    w = kernel.reshape((-1, kernel.shape[-1]))
    return jnp.sqrt(jnp.sum(jnp.square(w @ jax.lax.stop_gradient(u).T)))


@keras_layer
def SpectralNormalization(layer, power_iterations=1) -> Layer:
    """Divide a layer's kernel by its spectral norm, estimated by power iteration.

    Keeps the Lipschitz constant of the wrapped layer near 1 (stabilises GAN training).
    The layer is stateful: ``init -> (shape, params, state)``, ``apply(params, state, x,
    train=...) -> (y, state)``; ``state["vector_u"]`` (1, out) is the power-iteration vector,
    updated only with ``train=True``. A kernel that is all zeros is used as it is and
    leaves ``u`` unchanged (Keras' guard). Params: the wrapped layer's.

    Args:
      layer: a layer with a ``kernel`` param (Dense, Conv*, ...) or an ``embeddings``
        param (Embedding).
      power_iterations: the number of power-iteration steps per training call, a
        positive int.

    Input shape: the wrapped layer's. Output shape: the wrapped layer's.
    """
    iterations = positive_int("SpectralNormalization", "power_iterations", power_iterations)
    inner = as_layer(layer)
    name = f"SpectralNormalization({inner.name}" + (
        f", power_iterations={iterations})" if iterations != 1 else ")")

    def weight_name(params):
        for key in ("kernel", "embeddings"):
            if isinstance(params, dict) and key in params:
                return key
        raise ShapeError(f"the wrapped layer {inner.name} has no 'kernel' nor 'embeddings' "
                         f"param (its params: {jax.tree_util.tree_structure(params)})", name)

    def init(key, input_shape):
        k_layer, k_u = jax.random.split(key)
        out, params, inner_state = stateful_init(inner, k_layer, input_shape)
        units = params[weight_name(params)].shape[-1]
        u = jax.random.truncated_normal(k_u, -2.0, 2.0, (1, units), jnp.float32) * 0.02
        state = {STATE_KEY: u}
        if inner.stateful:
            state["layer"] = inner_state
        return out, params, state

    def apply(params, state, x, *, rng=None, train=False, **kwargs):
        key = weight_name(params)
        kernel, u = params[key], state[STATE_KEY]
        if u.shape != (1, kernel.shape[-1]):
            raise ShapeError(f"state['{STATE_KEY}'] has shape {tuple(u.shape)}, expected "
                             f"{(1, kernel.shape[-1])} for a {key} of shape "
                             f"{tuple(kernel.shape)}", name)
        zero = jnp.all(kernel == 0)
        if train:
            new_u, sigma = power_iteration(kernel, u.astype(kernel.dtype), iterations)
            new_u = jnp.where(zero, u, new_u.astype(u.dtype))
        else:
            new_u, sigma = u, kept_sigma(kernel, u.astype(kernel.dtype))
        used = jnp.where(zero, kernel, kernel / jnp.where(zero, 1, sigma))
        inner_params = dict(params, **{key: used})
        if inner.stateful:
            y, inner_state = inner.apply(inner_params, state["layer"], x, rng=rng, train=train,
                                         **kwargs)
            return y, {STATE_KEY: new_u, "layer": inner_state}
        y = inner.apply(inner_params, x, rng=rng, train=train, **kwargs)
        return y, {STATE_KEY: new_u}

    return Layer(init, apply, name=name, stateful=True, penalty=inner.penalty,
                 constrain=inner.constrain, masking=inner.masking)
