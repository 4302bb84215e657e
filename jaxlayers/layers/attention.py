"""MultiHeadAttention and GroupedQueryAttention: Keras 3's layers as pure pairs.

Params are Keras' sublayers, each an EinsumDense params dict under Keras' name
(``query``, ``key``, ``value``, ``attention_output``, ``gate`` with ``use_gate``), so Keras
weights load unchanged. Scores, masking and softmax run through
`jax.nn.dot_product_attention` (the fast path) whenever it expresses the call: one
attention axis, no dropout in training, no returned scores. Otherwise an explicit einsum
path computes them as Keras' `_compute_attention` does, softmax in float32.

The time-step masks of the inputs, an explicit ``attention_mask``, the causal mask and
the sliding window are combined by `attention_mask` into one boolean ``(B, T, S)`` mask.
"""
from __future__ import annotations

import math
import string

import jax
import jax.numpy as jnp

from ..core import Layer, Shape, ShapeError, as_shape, describe, need_rng
from ..core import weight_hooks
from .einsum_dense import EinsumDense

_LARGE_NEGATIVE = -1e9        # Keras' masked score for float32 logits


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
    if query_mask is not None:
        parts.append(jnp.asarray(query_mask).astype(bool)[:, :, None])
    for m in (value_mask, key_mask):
        if m is not None:
            parts.append(jnp.asarray(m).astype(bool)[:, None, :])
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
                         f"{rank - 1}", name)
    return axes


# --------------------------------------------------------------------------- attention


def _expand_mask(mask, scores_rank: int, n_axes: int):
    """`mask` with Keras' new axes (before the query attention dims) up to the scores'
    rank, as Keras' `_masked_softmax` expands it."""
    while mask.ndim < scores_rank:
        mask = jnp.expand_dims(mask, -2 * n_axes - 1)
    return mask


def dot_product_attention(query, key, value, mask=None, *, scale, attn_axes=(1,),
                          is_causal=False, dropout=0.0, rng=None, train=False,
                          return_scores=False, implementation=None):
    """Attention of projected ``query (B, .., T, N, H)`` on ``key``/``value``
    ``(B, .., S, K, H)`` (K divides N: grouped heads share a key/value head).

    `mask` is one boolean mask, ``(B, T, S)`` or broadcastable to the scores. Returns
    ``(output (B, .., T, N, Hv), scores or None)``. The fast path
    (`jax.nn.dot_product_attention`) serves one attention axis without dropout in
    training, without returned scores, with value heads the size of key heads and
    inputs below float64; otherwise scores are computed in float32 (or float64) and dropout hits the weights. On both
    paths a query whose mask row is all False gets a zero output (Keras' Softmax).
    """
    heads, kv_heads = query.shape[-2], key.shape[-2]
    explicit = (len(attn_axes) != 1 or query.ndim != 4 or return_scores
                or (train and dropout > 0) or value.shape[-1] != key.shape[-1]
                or query.dtype == jnp.float64)      # jax's softmax would run in float32
    if not explicit:
        if mask is not None:
            mask = _expand_mask(mask, 4, 1)
        y = jax.nn.dot_product_attention(query, key, value, mask=mask, scale=scale,
                                         is_causal=is_causal, implementation=implementation)
        if mask is not None:    # a query that sees no key gets 0, as on the einsum path
            y = y * jnp.any(mask, axis=-1).transpose(0, 2, 1)[..., None].astype(y.dtype)
        return y, None
    if kv_heads != heads:
        key = jnp.repeat(key, heads // kv_heads, axis=-2)
        value = jnp.repeat(value, heads // kv_heads, axis=-2)
    if is_causal:
        cm = causal_mask(query.shape[1], key.shape[1])
        mask = cm if mask is None else mask & cm
    dot_eq, combine_eq = attention_equations(query.ndim, attn_axes)
    scores = jnp.einsum(dot_eq, key, query * jnp.asarray(scale, query.dtype),
                        preferred_element_type=jnp.promote_types(query.dtype, jnp.float32))
    norm = tuple(range(scores.ndim - len(attn_axes), scores.ndim))
    if mask is not None:
        mask = _expand_mask(mask, scores.ndim, len(attn_axes))
        scores = jnp.where(mask, scores, _LARGE_NEGATIVE)
    weights = jax.nn.softmax(scores, axis=norm)
    if mask is not None:
        weights = jnp.where(mask, weights, 0.0)
    dropped = weights
    if train and dropout > 0:
        keep = jax.random.bernoulli(rng, 1.0 - dropout, weights.shape)
        dropped = jnp.where(keep, weights / (1.0 - dropout), 0.0)
    y = jnp.einsum(combine_eq, dropped.astype(value.dtype), value)
    return y, (weights.astype(query.dtype) if return_scores else None)


# --------------------------------------------------------------------------- the layers


def _split_inputs(name, x):
    """``(query, value, key, is_self)`` from one input (self-attention) or a tuple."""
    if hasattr(x, "shape") or isinstance(x, Shape):
        return x, x, x, True
    if not isinstance(x, (tuple, list)) or len(x) not in (2, 3):
        raise ShapeError(f"expected one input (self-attention) or a tuple (query, value) or "
                         f"(query, value, key), received {type(x).__name__}"
                         f"{'' if not isinstance(x, (tuple, list)) else f' of {len(x)}'}",
                         name)
    q, v = x[0], x[1]
    return q, v, (x[2] if len(x) == 3 else v), False


def _split_masks(name, mask, is_self):
    """``(query_mask, value_mask, key_mask)`` from the ``mask=`` of `apply`."""
    if mask is None:
        return None, None, None
    if is_self:
        if not hasattr(mask, "shape"):
            raise ShapeError(f"self-attention takes one (batch, time) mask, received "
                             f"{type(mask).__name__}", name)
        return mask, mask, None
    if hasattr(mask, "shape") or not isinstance(mask, (tuple, list)) or len(mask) not in (2, 3):
        raise ShapeError("with a tuple input, mask= is a tuple (query_mask, value_mask"
                         "[, key_mask]) with None for an unmasked input", name)
    return mask[0], mask[1], (mask[2] if len(mask) == 3 else None)


def _output_mask(x, mask):
    """The query's time-step mask passes on (Keras sets it on the output)."""
    if mask is None:
        return None
    if hasattr(mask, "shape"):
        return mask
    return mask[0] if isinstance(mask, (tuple, list)) and mask else None


def attention_layer(name, *, projections, axes_for, scale, dropout, seed,
                    flash_attention, sliding_window, use_causal_mask,
                    return_attention_scores, kernel_initializer, bias_initializer,
                    hooks):
    """A Keras attention layer of EinsumDense projections around
    `dot_product_attention` (shared by MultiHeadAttention and GroupedQueryAttention).

    `projections(q_shape, v_shape, k_shape)` gives ``{sublayer: (equation, output_shape,
    bias_axes, activation)}``; `axes_for(rank)` the attention axes of projected tensors;
    `hooks` a (penalty, constrain) pair for one sublayer's params.
    """
    del seed   # randomness comes from the rng key, as in Dropout
    implementation = {None: None, True: "cudnn", False: "xla"}[flash_attention]
    penalty_one, constrain_one = hooks

    def sublayers(q_shape, v_shape, k_shape):
        return {n: EinsumDense(eq, out, activation=act, bias_axes=bias,
                               kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer)
                for n, (eq, out, bias, act) in projections(q_shape, v_shape, k_shape).items()}

    def check_shapes(q, v, k):
        if len(q) < 3 or len(v) < 3 or len(k) < 3:
            raise ShapeError(f"query, value and key need a batch, an attention and a "
                             f"feature axis, received {Shape(q)!r}, {Shape(v)!r}, "
                             f"{Shape(k)!r}", name)
        if tuple(v[1:-1]) != tuple(k[1:-1]):
            raise ShapeError(f"value and key must agree on every axis but the last, "
                             f"received value {Shape(v)!r} and key {Shape(k)!r}", name)

    def init(key, input_shape):
        shapes = as_shape(input_shape)
        q, v, k, _ = _split_inputs(name, shapes)
        check_shapes(q, v, k)
        rank = len(q) + 1
        axes = axes_for(rank)
        if len(axes) != 1 and (use_causal_mask or sliding_window is not None):
            raise ShapeError("use_causal_mask and sliding_window need one attention axis, "
                             f"received attention axes {axes}", name)
        subs = sublayers(q, v, k)
        params, shapes_out = {}, {}
        for i, (n, layer) in enumerate(subs.items()):
            src = {"key": k, "value": v}.get(n, q)
            if n == "attention_output":
                src = shapes_out["value"]
                src = Shape(shapes_out["query"][:-1] + (src[-1],))
            shapes_out[n], params[n] = layer.init(jax.random.fold_in(key, i), src)
        out = shapes_out["attention_output"]
        if not return_attention_scores:
            return out, params
        batch = [i for i in range(rank) if i not in axes and i != rank - 1]
        qp, kp = shapes_out["query"], Shape(k[:-1] + (None, None))
        scores = Shape([qp[i] for i in batch] + [qp[i] for i in axes] + [kp[i] for i in axes])
        return (out, scores), params

    def apply(params, x, *, rng=None, train=False, mask=None, attention_mask=None,
              use_causal_mask=use_causal_mask,
              return_attention_scores=return_attention_scores):
        q, v, k, is_self = _split_inputs(name, x)
        check_shapes(q.shape, v.shape, k.shape)
        if flash_attention and return_attention_scores:
            raise ValueError(f"{name}: return_attention_scores=True cannot be served with "
                             f"flash_attention=True")
        if train and dropout > 0:
            need_rng(name, rng)
        qm, vm, km = _split_masks(name, mask, is_self)
        axes = axes_for(q.ndim + 1)
        causal_only = use_causal_mask and sliding_window is None and all(
            m is None for m in (qm, vm, km, attention_mask))
        combined = None if causal_only else _combined_mask(
            qm, vm, km, attention_mask, use_causal_mask, (q.shape[1], v.shape[1]))
        subs = sublayers(q.shape, v.shape, k.shape)
        proj = {n: subs[n].apply(params[n], t) for n, t in
                (("query", q), ("key", k), ("value", v))}
        y, scores = dot_product_attention(
            proj["query"], proj["key"], proj["value"], combined, scale=scale,
            attn_axes=axes, is_causal=causal_only, dropout=dropout, rng=rng, train=train,
            return_scores=return_attention_scores, implementation=implementation)
        if "gate" in params:
            y = y * subs["gate"].apply(params["gate"], q)
        y = subs["attention_output"].apply(params["attention_output"], y)
        return (y, scores) if return_attention_scores else y

    def _combined_mask(qm, vm, km, am, causal, lengths):
        return attention_mask(qm, vm, km, am, causal, lengths=lengths,
                              sliding_window=sliding_window)

    def penalty(params):
        return sum(penalty_one(p) for p in params.values())

    def constrain(params):
        return {n: constrain_one(p) for n, p in params.items()}

    return Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                 takes_mask=True, mask_fn=lambda x, mask: _output_mask(x, mask))


def _check_options(kind, dropout, flash_attention, sliding_window, activity_regularizer):
    if not 0 <= dropout < 1:
        raise ValueError(f"{kind}: dropout must be in [0, 1), got {dropout!r}")
    if flash_attention not in (None, True, False):
        raise ValueError(f"{kind}: flash_attention must be None, True or False, got "
                         f"{flash_attention!r}")
    if flash_attention and dropout > 0:
        raise ValueError(f"{kind}: dropout={dropout} cannot be served with "
                         f"flash_attention=True; set dropout=0.0")
    if sliding_window is not None and (not isinstance(sliding_window, int)
                                       or sliding_window <= 0):
        raise ValueError(f"{kind}: sliding_window must be None or a positive int, got "
                         f"{sliding_window!r}")
    if activity_regularizer is not None:
        raise ValueError(f"{kind}: activity_regularizer is not supported (Keras applies it to "
                         f"every projection); regularize the output with "
                         f"ActivityRegularization instead")


def _positive(kind, **values):
    for k, v in values.items():
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise ValueError(f"{kind}: {k} must be a positive int, got {v!r}")


def MultiHeadAttention(num_heads: int, key_dim: int, value_dim=None, dropout=0.0,
                       use_bias=True, output_shape=None, attention_axes=None,
                       sliding_window=None, flash_attention=None,
                       kernel_initializer="glorot_uniform", bias_initializer="zeros",
                       kernel_regularizer=None, bias_regularizer=None,
                       activity_regularizer=None, kernel_constraint=None,
                       bias_constraint=None, use_gate=False, seed=None,
                       use_causal_mask=False, return_attention_scores=False) -> Layer:
    """Multi-head attention (Vaswani et al.), Keras' layer with its weights and numbers.

    Args:
      num_heads: number of attention heads.
      key_dim: size of each head for query and key.
      value_dim: size of each head for value (default `key_dim`).
      dropout: dropout rate on the attention weights (with ``train=True`` and an rng).
      use_bias: whether the projections have biases.
      output_shape: the output's last dims (default: the query's feature dim).
      attention_axes: the axes attention runs over (default: every axis between the
        batch and the features).
      sliding_window: a query step sees key steps with ``|t - s| < sliding_window``.
      flash_attention: None (jax picks), True (cuDNN), False (XLA) for the fast path.
      kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
      kernel_constraint, bias_constraint: for every projection.
      use_gate: a sigmoid gate from the query multiplies the attention output.
      seed: accepted for Keras; randomness comes from the rng key.
      use_causal_mask, return_attention_scores: defaults of the apply keywords of the
        same names (so the layer works in `serial`).

    ``apply(params, x, *, rng, train, mask=None, attention_mask=None, use_causal_mask,
    return_attention_scores)``: `x` is the query (self-attention) or a tuple (query,
    value[, key]); `mask` the query's (batch, T) time-step mask, or a tuple (query_mask,
    value_mask[, key_mask]); `attention_mask` (batch, T, S) bool. With
    `return_attention_scores` it returns ``(y, scores)``, scores (batch, heads, T, S).

    Params: ``query``, ``key``, ``value``, ``attention_output`` (and ``gate``), each
    EinsumDense params: kernels (dim, heads, key_dim) and (heads, value_dim, out).

    Input shape: ``(batch, T, dim)`` (or more attention axes), or a tuple of shapes.
    Output shape: ``(batch, T, output_shape or dim)``.
    """
    kind = "MultiHeadAttention"
    _positive(kind, num_heads=num_heads, key_dim=key_dim, value_dim=value_dim)
    _check_options(kind, dropout, flash_attention, sliding_window, activity_regularizer)
    value_dim = value_dim or key_dim
    if isinstance(output_shape, int):
        output_shape = (output_shape,)
    output_shape = tuple(output_shape) if output_shape else None
    if isinstance(attention_axes, int):
        attention_axes = (attention_axes,)
    name = describe(kind, num_heads, key_dim)

    def projections(q, v, k):
        def proj(shape, out, bound=1, activation=None):
            eq, bias = projection_equation(len(shape) - 1, bound, len(out))
            return (eq, [None] * (len(shape) - 2) + list(out), bias if use_bias else None,
                    activation)
        specs = {"query": proj(q, (num_heads, key_dim)), "key": proj(k, (num_heads, key_dim)),
                 "value": proj(v, (num_heads, value_dim))}
        if use_gate:
            specs["gate"] = proj(q, (num_heads, value_dim), activation="sigmoid")
        specs["attention_output"] = proj(q, output_shape or (q[-1],), bound=2)
        return specs

    return attention_layer(
        name, projections=projections,
        axes_for=lambda rank: normalize_axes(name, attention_axes, rank),
        scale=1.0 / math.sqrt(key_dim), dropout=dropout, seed=seed,
        flash_attention=flash_attention, sliding_window=sliding_window,
        use_causal_mask=use_causal_mask, return_attention_scores=return_attention_scores,
        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
        hooks=weight_hooks(name, kernel=(kernel_regularizer, kernel_constraint),
                           bias=(bias_regularizer, bias_constraint)))


def GroupedQueryAttention(head_dim: int, num_query_heads: int, num_key_value_heads: int,
                          dropout=0.0, use_bias=True, sliding_window=None,
                          flash_attention=None, kernel_initializer="glorot_uniform",
                          bias_initializer="zeros", kernel_regularizer=None,
                          bias_regularizer=None, activity_regularizer=None,
                          kernel_constraint=None, bias_constraint=None, use_gate=False,
                          seed=None, use_causal_mask=False,
                          return_attention_scores=False) -> Layer:
    """Grouped-query attention (Ainslie et al.): query heads share key/value heads.

    Args:
      head_dim: size of each head.
      num_query_heads: number of query heads.
      num_key_value_heads: number of key/value heads; divides `num_query_heads`
        (query head i uses key/value head ``i // (num_query_heads // num_key_value_heads)``).
      dropout, use_bias, sliding_window, flash_attention, initializers, regularizers,
      constraints, use_gate, seed, use_causal_mask, return_attention_scores: as in
        `MultiHeadAttention`.

    Called as `MultiHeadAttention`. Params: ``query`` kernel (dim, query_heads,
    head_dim), ``key`` / ``value`` kernels (dim, kv_heads, head_dim),
    ``attention_output`` kernel (query_heads, head_dim, dim), biases with `use_bias`.

    Input shape: ``(batch, T, dim)``, or a tuple of such shapes. Output shape:
    ``(batch, T, dim)`` (the query's).
    """
    kind = "GroupedQueryAttention"
    _positive(kind, head_dim=head_dim, num_query_heads=num_query_heads,
              num_key_value_heads=num_key_value_heads)
    if num_query_heads % num_key_value_heads:
        raise ValueError(f"{kind}: num_query_heads ({num_query_heads}) must be a multiple of "
                         f"num_key_value_heads ({num_key_value_heads})")
    _check_options(kind, dropout, flash_attention, sliding_window, activity_regularizer)
    name = describe(kind, head_dim, num_query_heads, num_key_value_heads)

    def projections(q, v, k):
        for what, s in (("query", q), ("value", v), ("key", k)):
            if len(s) != 3:
                raise ShapeError(f"expected a rank-3 {what} (batch, time, dim), received "
                                 f"{Shape(s)!r}", name)
        def bias(axes):
            return axes if use_bias else None
        specs = {"query": ("bqm,muh->bquh", (None, num_query_heads, head_dim), bias("uh"), None),
                 "key": ("bkm,mvh->bkvh", (None, num_key_value_heads, head_dim), bias("vh"), None),
                 "value": ("bkm,mvh->bkvh", (None, num_key_value_heads, head_dim), bias("vh"),
                           None)}
        if use_gate:
            specs["gate"] = ("bqm,muh->bquh", (None, num_query_heads, head_dim), bias("uh"),
                             "sigmoid")
        specs["attention_output"] = ("bquh,uhm->bqm", (None, q[-1]), bias("m"), None)
        return specs

    return attention_layer(
        name, projections=projections, axes_for=lambda rank: (1,),
        scale=1.0 / math.sqrt(head_dim), dropout=dropout, seed=seed,
        flash_attention=flash_attention, sliding_window=sliding_window,
        use_causal_mask=use_causal_mask, return_attention_scores=return_attention_scores,
        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
        hooks=weight_hooks(name, kernel=(kernel_regularizer, kernel_constraint),
                           bias=(bias_regularizer, bias_constraint)))


GroupQueryAttention = GroupedQueryAttention
