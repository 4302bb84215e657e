"""The shapes of Keras' attention: the masks (causal, sliding window, their combination into
one boolean (B, T, S) mask as Keras' `_compute_attention_mask`, and the checks that a mask
fits the scores), the einsum equations of the projections and of the attention, and the
attention axes."""
from __future__ import annotations

import string

import jax.numpy as jnp

from ..core import ShapeError


def causal_mask(query_length: int, value_length: int):
    """Keras' causal mask: ``(1, T, S)`` bool, True where key step <= query step."""
    return jnp.tril(jnp.ones((query_length, value_length), bool))[None]


def window_mask(query_length: int, value_length: int, window: int):
    """Keras' sliding window: ``(1, T, S)`` bool, True where ``|t - s| < window``."""
    t = jnp.arange(query_length)[:, None]
    s = jnp.arange(value_length)[None, :]
    return (jnp.abs(t - s) < window)[None]


def attention_mask(query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
                   use_causal_mask=False, *, lengths=None, sliding_window=None):
    """Keras' `_compute_attention_mask`: one boolean mask, or None when nothing masks.

    Args:
      query_mask: ``(B, T)``; a padded query step attends nowhere.
      value_mask, key_mask: ``(B, S)``; a padded key step is attended by no query.
      attention_mask: ``(B, T, S)`` (True = may attend).
      use_causal_mask: query step t sees key steps s <= t.
      lengths: ``(T, S)``, needed for the causal and window masks.
      sliding_window: query step t sees key steps with ``|t - s| < sliding_window``.

    Returns the AND of all given masks, ``(B, T, S)`` (``(1, T, S)`` when only the causal
    or window mask is given), or None.
    """
    parts = []
    if query_mask is not None:      # Keras' axes: a query mask (.., T) -> (.., T, 1)
        parts.append(jnp.expand_dims(jnp.asarray(query_mask).astype(bool), -1))
    for m in (value_mask, key_mask):
        if m is not None:           # and a value / key mask (.., S) -> (.., 1, S)
            parts.append(jnp.expand_dims(jnp.asarray(m).astype(bool), -2))
    if use_causal_mask:
        parts.append(causal_mask(*lengths))
    if sliding_window is not None:
        parts.append(window_mask(*lengths, sliding_window))
    if attention_mask is not None:
        parts.append(jnp.asarray(attention_mask).astype(bool))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def _fits(shape, target) -> bool:
    """Whether an array of `shape` broadcasts into `target` (same rank, each dim 1 or
    equal) without enlarging it."""
    return len(shape) == len(target) and all(
        d == 1 or d == t for d, t in zip(shape, target))


def check_masks(name, q_shape, v_shape, masks, attention_mask, scores_shape, n_axes):
    """A clear ShapeError naming layer `name` when a time-step mask does not fit its
    input (``masks``: (query_mask, value_mask, key_mask), each None or of the input's
    shape without its feature axis) or `attention_mask` does not broadcast into the
    attention scores of `scores_shape` (``(batch, heads, T, S)`` for one attention axis)
    after Keras' expansion (new axes before the `n_axes` query attention axes)."""
    for what, m, shape in zip(("query", "value", "key"), masks, (q_shape, v_shape, v_shape)):
        if m is not None and not _fits(jnp.shape(m), tuple(shape[:-1])):
            raise ShapeError(f"the {what} mask has shape {tuple(jnp.shape(m))}, expected "
                             f"{tuple(shape[:-1])} (the {what}'s shape {tuple(shape)} "
                             f"without its feature axis)", name)
    if attention_mask is not None:
        check_scores_mask(name, "attention_mask", attention_mask, scores_shape, n_axes)


def check_scores_mask(name, what, mask, scores_shape, n_axes):
    """A clear ShapeError unless `mask` broadcasts into the attention scores of
    `scores_shape` after Keras' expansion (new axes before the `n_axes` query attention
    axes)."""
    shape = list(jnp.shape(mask))
    while 2 * n_axes <= len(shape) < len(scores_shape):
        shape.insert(len(shape) - 2 * n_axes, 1)
    if not _fits(shape, tuple(scores_shape)):
        expected = tuple(scores_shape[:1]) + tuple(scores_shape[-2 * n_axes:])
        raise ShapeError(f"{what} of shape {tuple(jnp.shape(mask))} does not broadcast to "
                         f"{expected} (batch, query steps, key steps): the attention "
                         f"scores are {tuple(scores_shape)} (batch dims and heads, query "
                         f"steps, key steps)", name)


# --------------------------------------------------------------------------- equations


def projection_equation(free_dims: int, bound_dims: int, output_dims: int):
    """Keras' `_build_proj_equation`: ``(equation, bias_axes)`` of a projection."""
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims:free_dims + bound_dims]
    out = letters[free_dims + bound_dims:free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}", out


def attention_equations(rank: int, attn_axes: tuple):
    """Keras' `_build_attention_equation` for projected tensors of `rank` (heads at
    ``rank - 2``): ``(dot_product_equation, combine_equation)``; the scores are laid out
    as (batch dims and heads, query attention dims, key attention dims)."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    source, offset = "", rank
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes]
                      + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}"


def normalize_axes(name, attention_axes, rank: int) -> tuple:
    """The attention axes of projected tensors of `rank` (Keras: default all axes between
    the batch and the heads; negative axes count from ``rank - 1``)."""
    if attention_axes is None:
        return tuple(range(1, rank - 2))
    axes = tuple(a if a >= 0 else rank - 1 + a for a in attention_axes)
    if not axes or any(a < 1 or a >= rank - 2 for a in axes) or len(set(axes)) != len(axes):
        raise ShapeError(f"attention_axes {tuple(attention_axes)!r} must name distinct axes "
                         f"between the batch axis and the feature axis of an input of rank "
                         f"{rank - 1} (negative axes count as in Keras, from the projected "
                         f"heads axis: -1 would be the heads, -2 is the last axis before the "
                         f"features)", name)
    return axes


def expand_mask(mask, scores_rank: int, n_axes: int):
    """`mask` with Keras' new axes (before the query attention dims) up to the scores'
    rank, as Keras' `_masked_softmax` expands it."""
    while mask.ndim < scores_rank:
        mask = jnp.expand_dims(mask, -2 * n_axes - 1)
    return mask
