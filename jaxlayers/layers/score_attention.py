"""Attention (Luong dot / concat scores) and AdditiveAttention (Bahdanau): Keras 3's
parameter-light attention layers on ``(query, value)`` or ``(query, value, key)``."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import makes_mask
from ..core import Layer, Shape, ShapeError, as_shape, describe
from .checks import need_rng
from .args import boolean, fraction, keras_layer, one_of
from .attention_shapes import causal_mask
from .core import seed_arg


def _inputs(name, x):
    if isinstance(x, Shape) or not isinstance(x, (tuple, list)) or len(x) not in (2, 3):
        n = f" of {len(x)}" if isinstance(x, (tuple, list)) else ""
        raise ShapeError(f"expected a tuple (query, value) or (query, value, key), received "
                         f"{type(x).__name__}{n}", name)
    return x[0], x[1], (x[2] if len(x) == 3 else x[1])


def _masks(name, mask):
    """``(query_mask, value_mask)`` from ``mask=`` (a tuple; a key mask is ignored, as
    in Keras)."""
    if mask is None:
        return None, None
    if hasattr(mask, "shape") or not isinstance(mask, (tuple, list)) or len(mask) not in (2, 3):
        raise ShapeError("mask= is a tuple (query_mask, value_mask) with None for an "
                         "unmasked input", name)
    return mask[0], mask[1]


def _check_call(name, q, v, k, q_mask, v_mask):
    """A clear ShapeError naming the layer when the inputs or masks of a call do not fit
    together (Keras fails inside its matmul or broadcast)."""
    shapes = f"query {Shape(q.shape)!r}, value {Shape(v.shape)!r}, key {Shape(k.shape)!r}"
    if not q.ndim == v.ndim == k.ndim or q.ndim < 3:
        raise ShapeError(f"query, value and key must have the same rank (at least 3: "
                         f"batch, time, dim), received {shapes}", name)
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"query and key must have the same last dim, received {shapes}",
                         name)
    if v.shape[:-1] != k.shape[:-1] or q.shape[:-2] != k.shape[:-2]:
        raise ShapeError(f"value and key must have the same shape but for the last dim, and "
                         f"the query the same batch dims, received {shapes}", name)
    for what, m, t in (("query", q_mask, q), ("value", v_mask, v)):
        if m is not None and tuple(jnp.shape(m)) != t.shape[:-1]:
            raise ShapeError(f"the {what} mask has shape {tuple(jnp.shape(m))}, expected "
                             f"{t.shape[:-1]} (the {what}'s shape {t.shape} without its "
                             f"feature axis)", name)


def _check_options(kind, use_scale, dropout, seed, use_causal_mask, return_attention_scores):
    """``(use_scale, dropout, use_causal_mask, return_attention_scores)`` checked (errors name
    `kind` and the argument); `seed` is checked and dropped (keys come from `rng`)."""
    seed_arg(kind, seed)
    return (boolean(kind, "use_scale", use_scale),
            fraction(kind, "dropout", dropout, include_one=False),
            boolean(kind, "use_causal_mask", use_causal_mask),
            boolean(kind, "return_attention_scores", return_attention_scores))


def _score_attention(kind, name, make_params, scores_fn, dropout, use_causal_mask,
                     return_attention_scores):
    """A Keras `Attention`-style layer: `scores_fn(params, query, key)` -> (B, Tq, Tv),
    then masking, softmax, dropout on the weights, and the weighted sum of the values."""

    def init(key, input_shape):
        shapes = as_shape(input_shape)
        q, v, k = _inputs(name, shapes)
        for what, s in (("query", q), ("value", v), ("key", k)):
            if not isinstance(s, Shape) or len(s) < 3:
                raise ShapeError(f"expected a {what} of shape (batch, time, dim), received "
                                 f"{s!r}", name)
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ShapeError(f"query and key must have the same last dim, received "
                             f"{Shape(q)!r} and {Shape(k)!r}", name)
        out = Shape(q[:-1] + (v[-1],))
        params = make_params(key, q)
        if return_attention_scores:
            return (out, Shape(q[:-1] + (k[-2],))), params
        return out, params

    def apply(params, x, *, rng=None, train=False, mask=None,
              use_causal_mask=use_causal_mask,
              return_attention_scores=return_attention_scores):
        q, v, k = _inputs(name, x)
        q_mask, v_mask = _masks(name, mask)
        _check_call(name, q, v, k, q_mask, v_mask)
        scores = scores_fn(params, q, k)
        keep = None if v_mask is None else jnp.asarray(v_mask, bool)[..., None, :]
        if use_causal_mask:
            cm = causal_mask(scores.shape[-2], scores.shape[-1])
            keep = cm if keep is None else keep & cm
        if keep is not None:
            big = 65504.0 if scores.dtype == jnp.float16 else 1.0e9
            scores = jnp.where(keep, scores, scores - big)
        weights = jax.nn.softmax(scores.astype(jnp.promote_types(scores.dtype, jnp.float32)),
                                 axis=-1).astype(scores.dtype)
        dropped = weights
        if train and dropout > 0:
            need_rng(name, rng)
            keep_w = jax.random.bernoulli(rng, 1.0 - dropout, weights.shape)
            dropped = jnp.where(keep_w, weights / (1.0 - dropout), 0.0).astype(weights.dtype)
        y = dropped @ v
        if q_mask is not None:
            y = jnp.where(jnp.asarray(q_mask, bool)[..., None], y, 0.0).astype(y.dtype)
        return (y, weights) if return_attention_scores else y

    def mask_fn(x, mask):
        return None if mask is None or hasattr(mask, "shape") else mask[0]

    return Layer(init, apply, name=name, masking=makes_mask(mask_fn, takes=True))


@keras_layer
def Attention(use_scale=False, score_mode="dot", dropout=0.0, seed=None,
              use_causal_mask=False, return_attention_scores=False) -> Layer:
    """Dot-product attention (Luong): ``softmax(score(query, key)) @ value``.

    Args:
      use_scale: learn a scalar ``scale`` multiplying the scores.
      score_mode: ``"dot"`` (``query @ key^T``) or ``"concat"``
        (``concat_score_weight * sum(tanh(scale * (query + key)))``).
      dropout: dropout rate on the attention weights (``train=True`` and an rng).
      seed: None or a non-negative int, accepted for Keras; randomness comes from the
        rng key.
      use_causal_mask, return_attention_scores: defaults of the apply keywords.

    ``apply(params, (query, value[, key]), *, mask=(query_mask, value_mask), ...)``:
    padded values get no weight, padded queries a zero output; with
    `return_attention_scores` it returns ``(y, weights)``, weights (batch, Tq, Tv).

    Params: ``scale`` () with `use_scale`, ``concat_score_weight`` () in concat mode.

    Input shape: query ``(batch, Tq, dim)``, value ``(batch, Tv, dim_v)``, key
    ``(batch, Tv, dim)``. Output shape: ``(batch, Tq, dim_v)``.
    """
    use_scale, dropout, use_causal_mask, return_attention_scores = _check_options(
        "Attention", use_scale, dropout, seed, use_causal_mask, return_attention_scores)
    one_of("Attention", "score_mode", score_mode, ("dot", "concat"))
    name = describe("Attention", **({"score_mode": score_mode} if score_mode != "dot" else {}))

    def make_params(key, q_shape):
        params = {"scale": jnp.ones((), jnp.float32)} if use_scale else {}
        if score_mode == "concat":
            params["concat_score_weight"] = jnp.ones((), jnp.float32)
        return params

    def scores_fn(params, q, k):
        scale = params.get("scale")
        scale = None if scale is None else scale.astype(q.dtype)
        if score_mode == "dot":
            s = q @ jnp.swapaxes(k, -1, -2)
            return s if scale is None else s * scale
        total = q[..., :, None, :] + k[..., None, :, :]
        if scale is not None:
            total = total * scale
        return params["concat_score_weight"].astype(q.dtype) * jnp.sum(jnp.tanh(total), -1)

    return _score_attention("Attention", name, make_params, scores_fn, dropout,
                            use_causal_mask, return_attention_scores)


@keras_layer
def AdditiveAttention(use_scale=True, dropout=0.0, seed=None, use_causal_mask=False,
                      return_attention_scores=False) -> Layer:
    """Additive attention (Bahdanau): scores ``sum(scale * tanh(query + key), -1)``.

    Args:
      use_scale: learn a per-feature ``scale`` (dim,) (glorot-uniform initialised).
      dropout, seed, use_causal_mask, return_attention_scores: as in `Attention`.

    Called as `Attention`. Params: ``scale`` (dim,) with `use_scale`.

    Input shape: query ``(batch, Tq, dim)``, value ``(batch, Tv, dim_v)``, key
    ``(batch, Tv, dim)``. Output shape: ``(batch, Tq, dim_v)``.
    """
    use_scale, dropout, use_causal_mask, return_attention_scores = _check_options(
        "AdditiveAttention", use_scale, dropout, seed, use_causal_mask,
        return_attention_scores)
    name = "AdditiveAttention()" if use_scale else "AdditiveAttention(use_scale=False)"

    def make_params(key, q_shape):
        if not use_scale:
            return {}
        dim = q_shape[-1]
        if dim is None:
            raise ShapeError(f"the query's last dim must be known, received {q_shape!r}", name)
        limit = jnp.sqrt(6.0 / (2 * dim))       # glorot uniform of a (dim,) weight
        return {"scale": jax.random.uniform(key, (dim,), jnp.float32, -limit, limit)}

    def scores_fn(params, q, k):
        total = jnp.tanh(q[..., :, None, :] + k[..., None, :, :])
        if use_scale:
            total = total * params["scale"].astype(q.dtype).reshape((1,) * (q.ndim) + (-1,))
        return jnp.sum(total, -1)

    return _score_attention("AdditiveAttention", name, make_params, scores_fn, dropout,
                            use_causal_mask, return_attention_scores)
