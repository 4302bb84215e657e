"""BatchNormalization (stateful), with Keras' batch renormalization (`renorm=True`).

Keras' names, arguments, defaults and arithmetic (Keras 3, JAX backend); the axis, shape and
dtype helpers are the other normalizations' (`layers.norm_axes`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import consumes_mask
from ..core import Layer, describe
from .args import ArgumentTypeError, boolean, fraction, keras_layer, number
from .core import _initializer
from .norm_axes import (_apply_axes, _axes_arg, _broadcast_to_axes, _check_apply,
                        _check_norm_args, _compute_dtype, _gamma_beta, _normalize, _param_shape)

__all__ = ["BatchNormalization"]


@keras_layer
def BatchNormalization(axis=-1, momentum: float = 0.99, epsilon: float = 1e-3,
                       center: bool = True, scale: bool = True,
                       beta_initializer="zeros", gamma_initializer="ones",
                       moving_mean_initializer="zeros", moving_variance_initializer="ones",
                       beta_regularizer=None, gamma_regularizer=None,
                       beta_constraint=None, gamma_constraint=None, synchronized: bool = False,
                       renorm: bool = False, renorm_clipping=None,
                       renorm_momentum: float = 0.99) -> Layer:
    """Normalize with batch statistics in training and moving statistics in inference.

    A stateful layer:
    ``init(key, input_shape) -> (output_shape, params, state)`` and
    ``apply(params, state, x, *, train=False) -> (y, new_state)``.

    - params: ``gamma`` (when `scale`) and ``beta`` (when `center`), shaped ``(C,)``;
    - state: ``{"moving_mean", "moving_variance"}``, ``(C,)``, float32 whatever the input dtype.

    With ``train=True`` the input is normalized with the mean and the biased variance over
    every axis but `axis`, and the moving statistics are updated as
    ``moving * momentum + batch * (1 - momentum)``; with ``train=False`` the moving
    statistics are used and the state is returned unchanged. ``y = (x - mean) *
    rsqrt(var + epsilon) * gamma + beta``, computed in float32 for bfloat16 inputs.

    `axis` is the feature axis: -1 for channels-last, 1 for channels-first; a list of
    axes (an extension: Keras 3 takes one int) keeps one statistic per position on those
    axes, with params and state shaped like them (in increasing axis order).
    `penalty(params)` only includes gamma/beta when `gamma_regularizer` /
    `beta_regularizer` is given.

    ``apply(..., mask=None)``: a boolean time-step mask shaped like the input without its
    last axis (e.g. (batch, time) from Embedding(mask_zero=True) in a `serial`) makes the
    training statistics those of the real steps only, as Keras computes them (the sums
    over the mask divided by its count + 1e-7); for channels-last inputs, ignored
    otherwise and in inference. The mask passes on.

    With ``renorm=True`` (batch renormalization, as Keras): training normalizes with the
    batch statistics corrected by ``r = clip(std / renorm_std)`` and ``d = clip((mean -
    renorm_mean) / renorm_std)`` (no gradient through r, d); the state also holds
    ``moving_stddev``, ``renorm_mean`` and ``renorm_stddev``, and ``moving_variance`` is
    derived from ``moving_stddev`` after each update.

    Args:
      axis: the feature axis (an int; a list is an extension, see above).
      momentum: the moving statistics' momentum, in [0, 1].
      epsilon: added to the variance, a positive number.
      center, scale: whether to learn ``beta`` / ``gamma``.
      beta_initializer, gamma_initializer: the params' initializers.
      moving_mean_initializer, moving_variance_initializer: the state's initializers.
      beta_regularizer, gamma_regularizer: weight regularizers (``layer.penalty``).
      beta_constraint, gamma_constraint: constraints (``layer.constrain``).
      synchronized: a bool; statistics over a batch sharded across devices under `jit`
        are already the global batch's, so both values compute the same.
      renorm: whether to use batch renormalization.
      renorm_clipping: None or a dict with optional keys ``rmin``, ``rmax``, ``dmax``
        bounding ``r`` to [rmin, rmax] and ``d`` to [-dmax, dmax].
      renorm_momentum: the momentum of ``renorm_mean`` / ``renorm_stddev``, in [0, 1].

    Input shape: any rank >= 2 with a known size on `axis`. Output shape: the same.
    """
    kind = "BatchNormalization"
    axes = _axes_arg(kind, axis)
    number(kind, "momentum", momentum, minimum=0, maximum=1)
    _check_norm_args(kind, epsilon, center, scale)
    boolean(kind, "synchronized", synchronized)
    renorm = boolean(kind, "renorm", renorm)
    fraction(kind, "renorm_momentum", renorm_momentum)
    clip = _renorm_clipping(renorm_clipping)
    name = describe(kind,
                    **({"axis": axis} if axis != -1 else {}),
                    **({"momentum": momentum} if momentum != 0.99 else {}),
                    **({"epsilon": epsilon} if epsilon != 1e-3 else {}),
                    **({"center": center} if not center else {}),
                    **({"scale": scale} if not scale else {}),
                    **({"renorm": True} if renorm else {}))
    init_params, penalty, constrain = _gamma_beta(
        name, gamma_initializer, beta_initializer, gamma_regularizer, beta_regularizer,
        gamma_constraint, beta_constraint)
    minit = _initializer(name, moving_mean_initializer)
    vinit = _initializer(name, moving_variance_initializer)

    def init(key, input_shape):
        shape, pshape = _param_shape(name, axes, input_shape)
        kg, kb, km, kv = jax.random.split(key, 4)
        params = init_params(kg, kb, pshape, scale, center)
        state = {"moving_mean": minit(km, pshape, jnp.float32),
                 "moving_variance": vinit(kv, pshape, jnp.float32)}
        if renorm:
            stddev = jnp.sqrt(state["moving_variance"])
            state.update(moving_stddev=stddev, renorm_mean=state["moving_mean"],
                         renorm_stddev=stddev)
        return shape, params, state

    def apply(params, state, x, *, rng=None, train=False, mask=None):
        moving_mean, moving_var = state["moving_mean"], state["moving_variance"]
        rank = x.ndim
        pos = _apply_axes(name, axis, axes, x)
        _check_apply(name, x, rank, pos, moving_mean.shape)
        cdt = _compute_dtype(x)
        xc = x.astype(cdt)
        gamma = params["gamma"].astype(cdt) if "gamma" in params else None
        beta = params["beta"].astype(cdt) if "beta" in params else None
        if train:
            reduce = tuple(a for a in range(rank) if a not in pos)
            if (mask is not None and pos == (rank - 1,)
                    and tuple(jnp.shape(mask)) == tuple(x.shape[:-1])):
                mean, var = _masked_moments(xc, jnp.asarray(mask), reduce)
            else:
                mean = jnp.mean(xc, axis=reduce)
                var = jnp.var(xc, axis=reduce)
            if renorm:
                gamma, beta, new_state = _renormalize(state, mean, var, gamma, beta, cdt)
            else:
                new_state = {k: _moving(state[k], v, momentum)
                             for k, v in (("moving_mean", mean), ("moving_variance", var))}
        else:
            mean, var, new_state = moving_mean.astype(cdt), moving_var.astype(cdt), state
        gamma, beta, mean, var = (None if v is None else _broadcast_to_axes(v, rank, pos)
                                  for v in (gamma, beta, mean, var))
        y = _normalize(xc, mean, var, jnp.asarray(epsilon, cdt), gamma, beta)
        return y.astype(x.dtype), new_state

    def _renormalize(state, mean, var, gamma, beta, cdt):
        """Keras' renorm: the corrected ``(gamma, beta)`` and the updated state."""
        stddev = jnp.sqrt(var + epsilon)
        renorm_mean = state["renorm_mean"].astype(cdt)
        renorm_std = jnp.maximum(state["renorm_stddev"].astype(cdt), jnp.sqrt(epsilon))
        r, d = stddev / renorm_std, (mean - renorm_mean) / renorm_std
        if "rmin" in clip:
            r = jnp.maximum(r, clip["rmin"])
        if "rmax" in clip:
            r = jnp.minimum(r, clip["rmax"])
        if "dmax" in clip:
            d = jnp.clip(d, -clip["dmax"], clip["dmax"])
        r, d = jax.lax.stop_gradient(r), jax.lax.stop_gradient(d)
        new_beta = d if gamma is None else d * gamma
        new_beta = new_beta if beta is None else new_beta + beta
        new_gamma = r if gamma is None else r * gamma
        moving_std = _moving(state["moving_stddev"], stddev, momentum)
        new_state = {
            "moving_mean": _moving(state["moving_mean"], mean, momentum),
            "moving_variance": jax.nn.relu(jnp.square(moving_std) - epsilon),
            "moving_stddev": moving_std,
            "renorm_mean": _moving(state["renorm_mean"], mean, renorm_momentum),
            "renorm_stddev": _moving(state["renorm_stddev"], stddev, renorm_momentum)}
        return new_gamma, new_beta, new_state

    return Layer(init, apply, name=name, stateful=True, penalty=penalty, constrain=constrain,
                 masking=consumes_mask("pass"))


def _moving(old, batch, momentum):
    """``old * momentum + batch * (1 - momentum)``, in `old`'s dtype."""
    return (old.astype(batch.dtype) * momentum + batch * (1.0 - momentum)).astype(old.dtype)


def _renorm_clipping(clipping) -> dict:
    """Keras' `renorm_clipping` (None or a dict of rmin / rmax / dmax) as a dict of floats."""
    kind = "BatchNormalization"
    if clipping is None:
        return {}
    if not isinstance(clipping, dict):
        raise ArgumentTypeError(f"{kind}: renorm_clipping must be None or a dict with keys "
                                f"rmin, rmax, dmax, received {clipping!r}")
    unknown = set(clipping) - {"rmin", "rmax", "dmax"}
    if unknown:
        raise ValueError(f"{kind}: renorm_clipping takes the keys rmin, rmax, dmax, received "
                         f"{sorted(unknown)}")
    out = {k: number(kind, f"renorm_clipping[{k!r}]", v) for k, v in clipping.items()
           if v is not None}
    if out.get("rmax", float("inf")) < out.get("rmin", -float("inf")):
        raise ValueError(f"{kind}: renorm_clipping needs rmax >= rmin, received {clipping!r}")
    if out.get("dmax", 0.0) < 0:
        raise ValueError(f"{kind}: renorm_clipping needs dmax >= 0, received {clipping!r}")
    return out


def _masked_moments(x, mask, reduce):
    """Keras' masked batch moments: mean and biased variance over the steps where `mask`
    (shaped ``x.shape[:-1]``) is True; returns two ``(C,)`` arrays."""
    keep = jnp.broadcast_to(jnp.expand_dims(mask.astype(bool), -1), x.shape)
    count = jnp.sum(keep, axis=reduce, keepdims=True, dtype=x.dtype) + 1e-7
    zero = jnp.zeros((), x.dtype)
    mean = jnp.sum(jnp.where(keep, x, zero), axis=reduce, keepdims=True) / count
    var = jnp.sum(jnp.where(keep, jnp.square(x - mean), zero), axis=reduce, keepdims=True)
    return jnp.squeeze(mean, reduce), jnp.squeeze(var / count, reduce)
