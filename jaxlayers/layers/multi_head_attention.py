"""MultiHeadAttention and GroupedQueryAttention: Keras 3's layers as pure pairs, built by
`attention.attention_layer` from EinsumDense projections (see docs/attention.md)."""
from __future__ import annotations

import math

from ..core import Layer, Shape, ShapeError, describe
from .weights import weight_hooks
from .attention import attention_layer, normalize_axes, projection_equation


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


_SHARED = ("dropout", "seed", "flash_attention", "sliding_window", "use_causal_mask",
           "return_attention_scores", "kernel_initializer", "bias_initializer")


def _shared(name, arguments) -> dict:
    """The `attention_layer` arguments both constructors pass as given, plus the weight
    hooks from their regularizers and constraints."""
    hooks = weight_hooks(
        name, kernel=(arguments["kernel_regularizer"], arguments["kernel_constraint"]),
        bias=(arguments["bias_regularizer"], arguments["bias_constraint"]))
    return {**{k: arguments[k] for k in _SHARED}, "hooks": hooks}


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
    arguments = dict(locals())
    _positive(kind, num_heads=num_heads, key_dim=key_dim, value_dim=value_dim)
    _check_options(kind, dropout, flash_attention, sliding_window, activity_regularizer)
    value_dim = value_dim or key_dim
    if isinstance(output_shape, int):
        output_shape = (output_shape,)
    output_shape = tuple(output_shape) if output_shape else None
    if isinstance(attention_axes, int):
        attention_axes = (attention_axes,)
    name = describe(kind, num_heads, key_dim)
    shared = _shared(name, arguments)

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
        scale=1.0 / math.sqrt(key_dim), **shared)


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
    arguments = dict(locals())
    _positive(kind, head_dim=head_dim, num_query_heads=num_query_heads,
              num_key_value_heads=num_key_value_heads)
    if num_query_heads % num_key_value_heads:
        raise ValueError(f"{kind}: num_query_heads ({num_query_heads}) must be a multiple of "
                         f"num_key_value_heads ({num_key_value_heads})")
    _check_options(kind, dropout, flash_attention, sliding_window, activity_regularizer)
    name = describe(kind, head_dim, num_query_heads, num_key_value_heads)
    shared = _shared(name, arguments)

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
        scale=1.0 / math.sqrt(head_dim), **shared)


GroupQueryAttention = GroupedQueryAttention
