"""MultiHeadAttention and GroupedQueryAttention: Keras 3's layers as pure pairs, built by
`attention.attention_layer` from EinsumDense projections (see docs/attention.md)."""
from __future__ import annotations

import dataclasses
import math

from .. import regularizers
from ..core import Layer, Shape, ShapeError, as_shape, describe, makes_mask
from .weights import weight_hooks
from .args import boolean, fraction, int_or_ints, keras_layer, positive_int
from .attention import attention_layer
from .attention_shapes import normalize_axes, projection_equation
from .core import seed_arg
from .einsum_dense import fan_initializer


def _check_options(kind, arguments) -> dict:
    """`arguments` (a constructor's locals) with the options both attention layers share
    checked and normalised; a clear error names the layer and the argument."""
    out = dict(arguments)
    out["dropout"] = fraction(kind, "dropout", arguments["dropout"], include_one=False)
    for arg in ("use_bias", "use_gate", "use_causal_mask", "return_attention_scores"):
        out[arg] = boolean(kind, arg, arguments[arg])
    if arguments["flash_attention"] is not None:
        out["flash_attention"] = boolean(kind, "flash_attention", arguments["flash_attention"])
    if arguments["sliding_window"] is not None:
        out["sliding_window"] = positive_int(kind, "sliding_window", arguments["sliding_window"])
    out["seed"] = seed_arg(kind, arguments["seed"])
    if out["flash_attention"] and out["dropout"] > 0:
        raise ValueError(f"{kind}: dropout={out['dropout']} cannot be served with "
                         f"flash_attention=True; set dropout=0.0")
    try:
        regularizers.get(arguments["activity_regularizer"])
    except ValueError as e:
        raise ValueError(f"{kind}: activity_regularizer: {e}") from None
    for arg in ("kernel_initializer", "bias_initializer"):   # an unknown name fails here
        try:
            fan_initializer(kind, arguments[arg], [0], [0])
        except ShapeError as e:
            raise ValueError(f"{kind}: {arg}: {e.message}") from None
    return out


_SHARED = ("dropout", "seed", "flash_attention", "sliding_window", "use_causal_mask",
           "return_attention_scores", "kernel_initializer", "bias_initializer",
           "activity_regularizer")


def _shared(name, arguments) -> dict:
    """The `attention_layer` arguments both constructors pass as given, plus the weight
    hooks from their regularizers and constraints."""
    hooks = weight_hooks(
        name, kernel=(arguments["kernel_regularizer"], arguments["kernel_constraint"]),
        bias=(arguments["bias_regularizer"], arguments["bias_constraint"]))
    return {**{k: arguments[k] for k in _SHARED}, "hooks": hooks}


def _dims(kind, arg, value):
    """`value` (None, an int or a sequence of ints) as None or a tuple of ints."""
    if value is None:
        return None
    return int_or_ints(kind, arg, value)


@keras_layer
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
      kernel_initializer, bias_initializer: initializers of every projection;
        variance-scaling ones use each kernel's fan-in / fan-out axes, as in Keras.
      kernel_regularizer, bias_regularizer: weight penalties of every projection
        (``layer.penalty``).
      activity_regularizer: a regularizer of each projection's output (query, key,
        value, gate, attention_output), as Keras applies it; it makes the layer stateful
        (the loss of the last ``train=True`` call, read with `jl.activity_loss`).
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.
      use_gate: a sigmoid gate from the query multiplies the attention output.
      seed: None or a non-negative int, accepted for Keras; randomness comes from the
        rng key.
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
    num_heads = positive_int(kind, "num_heads", num_heads)
    key_dim = positive_int(kind, "key_dim", key_dim)
    value_dim = key_dim if value_dim is None else positive_int(kind, "value_dim", value_dim)
    arguments = _check_options(kind, dict(locals()))
    use_bias, use_gate = arguments["use_bias"], arguments["use_gate"]
    output_shape = _dims(kind, "output_shape", output_shape)
    if output_shape is not None and min(output_shape) < 1:
        raise ValueError(f"{kind}: output_shape must hold positive ints, received "
                         f"{output_shape!r}")
    attention_axes = _dims(kind, "attention_axes", attention_axes)
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


@keras_layer
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
      dropout, use_bias, sliding_window, flash_attention: as in `MultiHeadAttention`.
      kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in `MultiHeadAttention`, for every
        projection.
      activity_regularizer: as in `MultiHeadAttention` (each projection's output), and
        as Keras, the layer's outputs too (the attention output and returned scores).
      use_gate, seed, use_causal_mask, return_attention_scores: as in
        `MultiHeadAttention`.

    Called as `MultiHeadAttention`. Params: ``query`` kernel (dim, query_heads,
    head_dim), ``key`` / ``value`` kernels (dim, kv_heads, head_dim),
    ``attention_output`` kernel (query_heads, head_dim, dim), biases with `use_bias`.

    Input shape: ``(batch, T, dim)``, or a tuple of such shapes. Output shape:
    ``(batch, T, dim)`` (the query's).
    """
    kind = "GroupedQueryAttention"
    head_dim = positive_int(kind, "head_dim", head_dim)
    num_query_heads = positive_int(kind, "num_query_heads", num_query_heads)
    num_key_value_heads = positive_int(kind, "num_key_value_heads", num_key_value_heads)
    arguments = _check_options(kind, dict(locals()))
    use_bias, use_gate = arguments["use_bias"], arguments["use_gate"]
    if num_query_heads % num_key_value_heads:
        raise ValueError(f"{kind}: num_query_heads ({num_query_heads}) must be a multiple of "
                         f"num_key_value_heads ({num_key_value_heads})")
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
        scale=1.0 / math.sqrt(head_dim), activity_on_output=True, **shared)


GroupQueryAttention = GroupedQueryAttention


def attention_mask_input(layer: Layer) -> Layer:
    """`layer` (MultiHeadAttention or GroupedQueryAttention) called on ``(inputs,
    attention_mask)``: the attention mask arrives as a tensor of the graph, as in a Keras
    model called ``mha(query, value, attention_mask=m)`` with `m` a model input
    (`jl.from_keras` imports such a call with it). Params and masks as `layer`'s; the
    attention mask's own time-step mask, if any, is ignored."""
    def split(x, mask=None):
        if isinstance(x, Shape) or not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ShapeError("expected a pair (inputs, attention_mask)", layer.name)
        inner_mask = mask[0] if isinstance(mask, (tuple, list)) else None
        return x[0], x[1], inner_mask

    def init(key, input_shape):
        return layer.init(key, split(as_shape(input_shape))[0])

    def apply(*args, mask=None, **kwargs):
        *lead, x = args                       # (params, x) or (params, state, x)
        inner, attention_mask, inner_mask = split(x, mask)
        return layer.apply(*lead, inner, mask=inner_mask, attention_mask=attention_mask,
                           **kwargs)

    def out_mask(x, mask):
        return layer.masking.out(x[0], split(x, mask)[2])

    return dataclasses.replace(layer, init=init, apply=apply,
                               masking=makes_mask(out_mask, takes=True))
