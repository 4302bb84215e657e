"""Normalization layers: BatchNormalization (stateful), LayerNormalization, RMSNormalization,
GroupNormalization, UnitNormalization (`jl.inference` in core.py freezes their statistics).

Keras' names, arguments, defaults and arithmetic (Keras 3, JAX backend). Statistics are
computed in at least float32 (bfloat16 inputs are upcast, as Keras does) and the output is
cast back to the input's dtype.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp

from ..core import PASS, consumes_mask
from ..core import Layer, Shape, ShapeError, as_layer, as_shape, describe, is_free
from .checks import check_rank
from .weights import weight_hooks
from .core import _initializer


def _axes_arg(layer, axis):
    """`axis` as a tuple of ints (an int, list or tuple), or a ValueError naming `layer`."""
    axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if not isinstance(axes, (list, tuple)) or not axes or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise ValueError(f"{layer}: axis must be an int or a non-empty list of ints, got {axis!r}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"{layer}: axis has repeated entries: {axis!r}")
    return tuple(axes)


def _resolve_axes(name, axes, shape, need_known=True):
    """`axes` made non-negative and sorted for an input of `shape` (ShapeError if out of range
    or, with `need_known`, if a normalized axis has a free size)."""
    rank = len(shape)
    if any(not -rank <= a < rank for a in axes):
        raise ShapeError(f"axis {axes if len(axes) > 1 else axes[0]} is out of range for an "
                         f"input of shape {shape!r}", name)
    pos = tuple(sorted({a % rank for a in axes}))
    if len(pos) != len(axes):
        raise ShapeError(f"axis {axes} names the same input axis twice for shape {shape!r}", name)
    if 0 in pos:
        raise ShapeError(f"cannot normalize along the batch axis 0 (axis={axes}) of an input of "
                         f"shape {shape!r}", name)
    if need_known and any(is_free(shape[a]) for a in pos):
        raise ShapeError(f"the normalized axes {pos} of the input must have known sizes, "
                         f"received shape {shape!r}", name)
    return pos


def _broadcast_to_axes(v, ndim, pos):
    """A param shaped like the normalized axes `pos`, reshaped to broadcast against rank `ndim`."""
    shape = [1] * ndim
    for a, d in zip(pos, v.shape):
        shape[a] = d
    return v.reshape(shape)


def _compute_dtype(x):
    return jnp.promote_types(x.dtype, jnp.float32)


def _check_apply(name, x, rank, pos, param_shape):
    if x.ndim != rank or tuple(x.shape[a] for a in pos) != tuple(param_shape):
        expected = ["?"] * rank
        for a, d in zip(pos, param_shape):
            expected[a] = str(d)
        raise ShapeError(f"expected an input of shape ({', '.join(expected)}) (? = any size), "
                         f"received {Shape(x.shape)!r}", name)


# --------------------------------------------------------------------------- BatchNormalization


def BatchNormalization(axis=-1, momentum: float = 0.99, epsilon: float = 1e-3,
                       center: bool = True, scale: bool = True,
                       beta_initializer="zeros", gamma_initializer="ones",
                       moving_mean_initializer="zeros", moving_variance_initializer="ones",
                       beta_regularizer=None, gamma_regularizer=None,
                       beta_constraint=None, gamma_constraint=None) -> Layer:
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

    Input shape: any rank >= 2 with a known size on `axis`. Output shape: the same.
    """
    axes = _axes_arg("BatchNormalization", axis)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
    if not epsilon > 0:
        raise ValueError(f"BatchNormalization: epsilon must be positive, got {epsilon!r}")
    name = describe("BatchNormalization",
                    **({"axis": axis} if axis != -1 else {}),
                    **({"momentum": momentum} if momentum != 0.99 else {}),
                    **({"epsilon": epsilon} if epsilon != 1e-3 else {}),
                    **({"center": center} if not center else {}),
                    **({"scale": scale} if not scale else {}))
    ginit = _initializer(name, gamma_initializer)
    binit = _initializer(name, beta_initializer)
    minit = _initializer(name, moving_mean_initializer)
    vinit = _initializer(name, moving_variance_initializer)
    penalty, constrain = weight_hooks(name, gamma=(gamma_regularizer, gamma_constraint),
                                      beta=(beta_regularizer, beta_constraint))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        pos = _resolve_axes(name, axes, shape)
        pshape = tuple(shape[a] for a in pos)
        kg, kb, km, kv = jax.random.split(key, 4)
        params = {}
        if scale:
            params["gamma"] = ginit(kg, pshape, jnp.float32)
        if center:
            params["beta"] = binit(kb, pshape, jnp.float32)
        state = {"moving_mean": minit(km, pshape, jnp.float32),
                 "moving_variance": vinit(kv, pshape, jnp.float32)}
        return shape, params, state

    def apply(params, state, x, *, rng=None, train=False, mask=None):
        moving_mean, moving_var = state["moving_mean"], state["moving_variance"]
        rank = x.ndim
        if rank < 2 or any(not -rank <= a < rank for a in axes):
            raise ShapeError(f"axis {axis} does not fit an input of shape {Shape(x.shape)!r}",
                             name)
        pos = tuple(sorted(a % rank for a in axes))
        _check_apply(name, x, rank, pos, moving_mean.shape)
        cdt = _compute_dtype(x)
        xc = x.astype(cdt)
        if train:
            reduce = tuple(a for a in range(rank) if a not in pos)
            if (mask is not None and pos == (rank - 1,)
                    and tuple(jnp.shape(mask)) == tuple(x.shape[:-1])):
                mean, var = _masked_moments(xc, jnp.asarray(mask), reduce)
            else:
                mean = jnp.mean(xc, axis=reduce)
                var = jnp.var(xc, axis=reduce)
            new_state = {
                "moving_mean": (moving_mean.astype(cdt) * momentum
                                + mean * (1.0 - momentum)).astype(moving_mean.dtype),
                "moving_variance": (moving_var.astype(cdt) * momentum
                                    + var * (1.0 - momentum)).astype(moving_var.dtype),
            }
        else:
            mean, var, new_state = moving_mean.astype(cdt), moving_var.astype(cdt), state
        # Keras' arithmetic: y = x * inv + (beta - mean * inv), inv = rsqrt(var + eps) * gamma.
        inv = jax.lax.rsqrt(_broadcast_to_axes(var, rank, pos) + jnp.asarray(epsilon, cdt))
        if "gamma" in params:
            inv = inv * _broadcast_to_axes(params["gamma"].astype(cdt), rank, pos)
        res = -_broadcast_to_axes(mean, rank, pos) * inv
        if "beta" in params:
            res = res + _broadcast_to_axes(params["beta"].astype(cdt), rank, pos)
        return (xc * inv + res).astype(x.dtype), new_state

    return Layer(init, apply, name=name, stateful=True, penalty=penalty, constrain=constrain,
                 masking=consumes_mask("pass"))


def _masked_moments(x, mask, reduce):
    """Keras' masked batch moments: mean and biased variance over the steps where `mask`
    (shaped ``x.shape[:-1]``) is True; returns two ``(C,)`` arrays."""
    keep = jnp.broadcast_to(jnp.expand_dims(mask.astype(bool), -1), x.shape)
    count = jnp.sum(keep, axis=reduce, keepdims=True, dtype=x.dtype) + 1e-7
    zero = jnp.zeros((), x.dtype)
    mean = jnp.sum(jnp.where(keep, x, zero), axis=reduce, keepdims=True) / count
    var = jnp.sum(jnp.where(keep, jnp.square(x - mean), zero), axis=reduce, keepdims=True)
    return jnp.squeeze(mean, reduce), jnp.squeeze(var / count, reduce)


# --------------------------------------------------------------------------- per-example norms


def LayerNormalization(axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                       rms_scaling: bool = False, beta_initializer="zeros",
                       gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                       beta_constraint=None, gamma_constraint=None) -> Layer:
    """Normalize each example over `axis` (an int or a list): ``(x - mean) / sqrt(var + eps)
    * gamma + beta`` with the biased variance.

    Params: ``gamma`` (when `scale` or `rms_scaling`) and ``beta`` (when `center` and not
    `rms_scaling`), shaped like the normalized axes in increasing order (e.g. ``(3, 6)`` for
    ``axis=[-2, -1]`` on ``(batch, 3, 6)``). `rms_scaling=True` reproduces Keras' deprecated
    option exactly: ``x * rsqrt(var + eps) * gamma`` (no centering; note it divides by the
    standard deviation, not the RMS; use RMSNormalization for RMS norm).

    Input shape: any rank >= 2. Output shape: the same.
    """
    axes = _axes_arg("LayerNormalization", axis)
    name = describe("LayerNormalization", **({"axis": axis} if axis != -1 else {}),
                    **({"rms_scaling": True} if rms_scaling else {}))
    has_gamma, has_beta = scale or rms_scaling, center and not rms_scaling
    ginit = _initializer(name, gamma_initializer)
    binit = _initializer(name, beta_initializer)
    penalty, constrain = weight_hooks(name, gamma=(gamma_regularizer, gamma_constraint),
                                      beta=(beta_regularizer, beta_constraint))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        pos = _resolve_axes(name, axes, shape)
        pshape = tuple(shape[a] for a in pos)
        kg, kb = jax.random.split(key)
        params = {}
        if has_gamma:
            params["gamma"] = ginit(kg, pshape, jnp.float32)
        if has_beta:
            params["beta"] = binit(kb, pshape, jnp.float32)
        return shape, params

    def apply(params, x, *, rng=None, train=False):
        rank = x.ndim
        if rank < 2 or any(not -rank <= a < rank for a in axes):
            raise ShapeError(f"axis {axis} does not fit an input of shape {Shape(x.shape)!r}",
                             name)
        pos = tuple(sorted(a % rank for a in axes))
        ref = params.get("gamma", params.get("beta"))
        if ref is not None:
            _check_apply(name, x, rank, pos, ref.shape)
        cdt = _compute_dtype(x)
        xc = x.astype(cdt)
        gamma = params.get("gamma")
        gamma = None if gamma is None else _broadcast_to_axes(gamma.astype(cdt), rank, pos)
        if rms_scaling:
            y = xc * jax.lax.rsqrt(jnp.var(xc, axis=pos, keepdims=True) + epsilon)
            if gamma is not None:
                y = y * gamma
            return y.astype(x.dtype)
        mean = jnp.mean(xc, axis=pos, keepdims=True)
        var = jnp.var(xc, axis=pos, keepdims=True)
        inv = jax.lax.rsqrt(var + epsilon)
        if gamma is not None:
            inv = inv * gamma
        res = -mean * inv
        if "beta" in params:
            res = res + _broadcast_to_axes(params["beta"].astype(cdt), rank, pos)
        return (xc * inv + res).astype(x.dtype)

    return Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                 masking=PASS)


def RMSNormalization(axis=-1, epsilon: float = 1e-6) -> Layer:
    """Root-mean-square normalization: ``x * rsqrt(mean(x**2, axis) + epsilon) * scale``.

    Params: ``scale`` (ones), shaped like the normalized axes.

    Input shape: any rank >= 2. Output shape: the same.
    """
    axes = _axes_arg("RMSNormalization", axis)
    name = describe("RMSNormalization", **({"axis": axis} if axis != -1 else {}),
                    **({"epsilon": epsilon} if epsilon != 1e-6 else {}))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        pos = _resolve_axes(name, axes, shape)
        return shape, {"scale": jnp.ones(tuple(shape[a] for a in pos), jnp.float32)}

    def apply(params, x, *, rng=None, train=False):
        rank = x.ndim
        if rank < 2 or any(not -rank <= a < rank for a in axes):
            raise ShapeError(f"axis {axis} does not fit an input of shape {Shape(x.shape)!r}",
                             name)
        pos = tuple(sorted(a % rank for a in axes))
        _check_apply(name, x, rank, pos, params["scale"].shape)
        cdt = _compute_dtype(x)
        xc = x.astype(cdt)
        rrms = jax.lax.rsqrt(jnp.mean(jnp.square(xc), axis=pos, keepdims=True) + epsilon)
        y = xc * rrms * _broadcast_to_axes(params["scale"].astype(cdt), rank, pos)
        return y.astype(x.dtype)

    return Layer(init, apply, name=name)


def GroupNormalization(groups: int = 32, axis: int = -1, epsilon: float = 1e-3,
                       center: bool = True, scale: bool = True, beta_initializer="zeros",
                       gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                       beta_constraint=None, gamma_constraint=None) -> Layer:
    """Normalize each example over groups of channels (and every non-batch axis).

    The `axis` channels are split into `groups` contiguous groups; each group is
    normalized with its own mean and biased variance over the group's channels and all
    other non-batch axes, then scaled by ``gamma`` and shifted by ``beta`` (per channel).
    ``groups=-1`` means one group per channel (instance normalization); ``groups=1`` is
    layer normalization over all axes.

    Params: ``gamma``, ``beta`` shaped ``(C,)`` (when `scale` / `center`).

    Input shape: any rank >= 2, C divisible by `groups`. Output shape: the same.
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or (groups <= 0 and groups != -1):
        raise ValueError(f"GroupNormalization: groups must be a positive int (or -1 for "
                         f"instance normalization), got {groups!r}")
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"GroupNormalization: axis must be an int, got {axis!r}")
    name = describe("GroupNormalization", groups, **({"axis": axis} if axis != -1 else {}))
    ginit = _initializer(name, gamma_initializer)
    binit = _initializer(name, beta_initializer)
    penalty, constrain = weight_hooks(name, gamma=(gamma_regularizer, gamma_constraint),
                                      beta=(beta_regularizer, beta_constraint))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        (a,) = _resolve_axes(name, (axis,), shape)
        dim = shape[a]
        g = dim if groups == -1 else groups
        if dim < g:
            raise ShapeError(f"groups ({g}) cannot be more than the number of channels ({dim}) "
                             f"of input shape {shape!r}", name)
        if dim % g:
            raise ShapeError(f"the number of channels ({dim}) of input shape {shape!r} must be "
                             f"a multiple of groups ({g})", name)
        kg, kb = jax.random.split(key)
        params = {}
        if scale:
            params["gamma"] = ginit(kg, (dim,), jnp.float32)
        if center:
            params["beta"] = binit(kb, (dim,), jnp.float32)
        return shape, params

    def apply(params, x, *, rng=None, train=False):
        rank = x.ndim
        if rank < 2 or not -rank <= axis < rank or axis % rank == 0:
            raise ShapeError(f"axis {axis} does not fit an input of shape {Shape(x.shape)!r}",
                             name)
        a = axis % rank
        dim = x.shape[a]
        g = dim if groups == -1 else groups
        ref = params.get("gamma", params.get("beta"))
        if (ref is not None and ref.shape[0] != dim) or dim % g:
            want = ref.shape[0] if ref is not None else f"a multiple of {g}"
            raise ShapeError(f"expected {want} channels on axis {axis}, received input shape "
                             f"{Shape(x.shape)!r}", name)
        cdt = _compute_dtype(x)
        grouped = x.astype(cdt).reshape(x.shape[:a] + (g, dim // g) + x.shape[a + 1:])
        reduce = tuple(i for i in range(1, rank + 1) if i != a)
        mean = jnp.mean(grouped, axis=reduce, keepdims=True)
        var = jnp.var(grouped, axis=reduce, keepdims=True)
        bshape = (1,) * a + (g, dim // g) + (1,) * (rank - a - 1)
        inv = jax.lax.rsqrt(var + epsilon)
        if "gamma" in params:
            inv = inv * params["gamma"].astype(cdt).reshape(bshape)
        res = -mean * inv
        if "beta" in params:
            res = res + params["beta"].astype(cdt).reshape(bshape)
        return (grouped * inv + res).reshape(x.shape).astype(x.dtype)

    return Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                 masking=PASS)


def UnitNormalization(axis=-1) -> Layer:
    """Scale each example to unit L2 norm over `axis` (an int or a list):
    ``x * min(rsqrt(sum(x**2)), 1e12)`` (Keras' epsilon 1e-12, so a zero vector stays 0).

    Input shape: any rank >= 2. Output shape: the same.
    """
    axes = _axes_arg("UnitNormalization", axis)
    name = describe("UnitNormalization", **({"axis": axis} if axis != -1 else {}))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        _resolve_axes(name, axes, shape, need_known=False)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        rank = x.ndim
        if rank < 2 or any(not -rank <= a < rank for a in axes):
            raise ShapeError(f"axis {axis} does not fit an input of shape {Shape(x.shape)!r}",
                             name)
        pos = tuple(sorted(a % rank for a in axes))
        square_sum = jnp.sum(jnp.square(x), axis=pos, keepdims=True)
        # min(rsqrt(s), 1 / 1e-12) == rsqrt(max(s, 1e-24)), whose gradient stays finite at 0.
        return x * jax.lax.rsqrt(jnp.maximum(square_sum, jnp.asarray(1e-24, square_sum.dtype)))

    return Layer(init, apply, name=name, masking=PASS)
