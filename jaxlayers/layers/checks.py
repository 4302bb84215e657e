"""Checks and small array helpers every layer family shares: input shapes and ranks, the
rng rule, noise shapes, bias broadcasting, dtype following the input."""
from __future__ import annotations

import jax.numpy as jnp

from ..core import Shape, ShapeError, shape_matches

__all__ = ["bias_add", "cast_like", "check_input", "check_rank", "need_rng", "noise_shape_for"]


def check_input(layer_name: str, x, expected, what: str = "input"):
    """Raise a ShapeError naming `layer_name` if ``x.shape`` does not fit `expected`."""
    if not shape_matches(expected, x.shape):
        raise ShapeError(
            f"{what} shape {Shape(x.shape)!r} does not match the shape {Shape(expected)!r} "
            f"given to init", layer_name)


def need_rng(layer_name: str, rng):
    """Raise a ValueError naming `layer_name` when a random layer in training has no key."""
    if rng is None:
        raise ValueError(f"{layer_name}: apply(..., train=True) needs an rng key, e.g. "
                         f"apply(params, x, rng=jax.random.key(0), train=True)")


def noise_shape_for(layer_name: str, noise_shape, x) -> tuple:
    """The shape of a random mask for `x`: `noise_shape` (batch axis included, None entries
    taking x's size) or x's own shape; a ShapeError naming the layer on a rank mismatch."""
    if noise_shape is None:
        return x.shape
    if len(noise_shape) != x.ndim:
        raise ShapeError(f"noise_shape {tuple(noise_shape)!r} does not match input shape "
                         f"{Shape(x.shape)!r}", layer_name)
    return tuple(s if d is None else d for d, s in zip(noise_shape, x.shape))


def check_rank(layer_name: str, shape, min_rank: int = None, rank: int = None, what="input"):
    """Raise a ShapeError naming `layer_name` if `shape` has the wrong rank."""
    if shape is None:
        raise ShapeError(f"no {what} shape was given to init (pass one, or start the model "
                         f"with InputLayer)", layer_name)
    if not isinstance(shape, Shape):
        raise ShapeError(f"expected a single {what} shape, received {shape!r}", layer_name)
    n = len(shape)
    if rank is not None and n != rank:
        raise ShapeError(
            f"expected a rank-{rank} {what} (batch first), received shape {Shape(shape)!r}",
            layer_name)
    if min_rank is not None and n < min_rank:
        raise ShapeError(
            f"expected an {what} of rank >= {min_rank} (batch first), received shape "
            f"{Shape(shape)!r}", layer_name)


def bias_add(y, bias, axis: int = -1):
    """``y + bias`` with `bias` (C,) broadcast along `axis` of `y`, rank promotion explicit."""
    axis = axis % y.ndim
    return y + bias.reshape((1,) * axis + (-1,) + (1,) * (y.ndim - axis - 1))


def cast_like(x, *params):
    """`params` cast to `x`'s dtype when `x` is floating (bfloat16 in, bfloat16 compute)."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return tuple(None if p is None else p.astype(x.dtype) for p in params)
    return params
