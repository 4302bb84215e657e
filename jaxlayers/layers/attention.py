"""The attention machinery of MultiHeadAttention and GroupedQueryAttention (their
constructors are in `multi_head_attention`).

Params are Keras' sublayers, each an EinsumDense params dict under Keras' name
(``query``, ``key``, ``value``, ``attention_output``, ``gate`` with ``use_gate``), so Keras
weights load unchanged. Scores, masking and softmax run through
`jax.nn.dot_product_attention` (the fast path) whenever it expresses the call: one
attention axis, no dropout in training, no returned scores. Otherwise an explicit einsum
path computes them as Keras' `_compute_attention` does, softmax in float32.

The time-step masks of the inputs, an explicit ``attention_mask``, the causal mask and
the sliding window are combined by `attention_shapes.attention_mask` into one boolean
``(B, T, S)`` mask.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .. import regularizers as _regularizers
from ..core import Layer, Shape, ShapeError, as_shape, makes_mask
from .attention_shapes import (attention_equations, attention_mask, causal_mask, check_masks,
                               check_scores_mask, expand_mask)
from .checks import need_rng
from .einsum_dense import EinsumDense

_LARGE_NEGATIVE = -1e9        # Keras' masked score for float32 logits


# --------------------------------------------------------------------------- attention


# Measured on a 2-core CPU (docs/bench.md, "transformer"): from 512 keys on, XLA:CPU runs the
# plain einsum softmax faster than jax.nn.dot_product_attention (training 0.78-0.87x at 512,
# 0.42-0.45x at 2048; inference 0.57-0.76x); from 128 on the einsum path trains 5-12% faster,
# infers in a tie, and compiles faster (the transformer step: fewer transposes and copies);
# at 16 keys they tie. The forward pass alone (a call that is not differentiated) is
# another story: from 128 to 256 keys the fast path runs it 1.3-5x quicker (b=32 T=128:
# 2.8 against 14.1 ms), from 512 keys the einsum path (b=4 T=512: 3.6 against 12.8 ms).
# Elsewhere the fast path stays.
EINSUM_FROM_KEYS_ON_CPU = 128
EINSUM_FROM_KEYS_ON_CPU_INFERENCE = 512


def _einsum_is_faster(key, implementation, differentiated=True) -> bool:
    """The measured rule: on CPU, with no implementation asked for, long key sequences take
    the einsum path (from EINSUM_FROM_KEYS_ON_CPU keys when the call is differentiated, from
    EINSUM_FROM_KEYS_ON_CPU_INFERENCE when it is not)."""
    threshold = EINSUM_FROM_KEYS_ON_CPU if differentiated else EINSUM_FROM_KEYS_ON_CPU_INFERENCE
    return (implementation is None and jax.default_backend() == "cpu"
            and key.ndim == 4 and key.shape[1] >= threshold)


def _by_differentiation(forward, differentiated):
    """A function that computes `forward(*args)` when it is not differentiated, and the
    values and derivatives of `differentiated(*args)` (the same function, written another
    way) when it is: under `jax.grad`, `jvp` or `vjp` (a `custom_jvp`)."""
    f = jax.custom_jvp(forward)
    f.defjvp(lambda primals, tangents: jax.jvp(differentiated, primals, tangents))
    return f


def _fast_attention(query, key, value, mask, *, scale, is_causal, implementation,
                    zero_masked_rows=False):
    """`jax.nn.dot_product_attention` with Keras' mask; a query that sees no key gets the
    mean of all values, or 0 with `zero_masked_rows`."""
    zero = zero_masked_rows and mask is not None
    if mask is not None:
        if is_causal and zero:  # one mask, so that the zero-output guard sees the causal part
            mask, is_causal = mask & causal_mask(query.shape[1], key.shape[1]), False
        mask = expand_mask(mask, 4, 1)
    y = jax.nn.dot_product_attention(query, key, value, mask=mask, scale=scale,
                                     is_causal=is_causal, implementation=implementation)
    if zero:
        y = y * jnp.any(mask, axis=-1).transpose(0, 2, 1)[..., None].astype(y.dtype)
    return y


def _einsum_attention(query, key, value, mask, *, scale, attn_axes=(1,), is_causal=False,
                      dropout=0.0, rng=None, train=False, return_scores=False,
                      zero_masked_rows=False):
    """Keras' `_compute_attention` as einsums, softmax in float32 (or float64):
    ``(output, weights or None)``. A query that sees no key gets uniform weights (the mean
    of all values), or zero weights with `zero_masked_rows` (Keras' Softmax layer)."""
    heads, kv_heads = query.shape[-2], key.shape[-2]
    if kv_heads != heads:
        key = jnp.repeat(key, heads // kv_heads, axis=-2)
        value = jnp.repeat(value, heads // kv_heads, axis=-2)
    # a causal mask alone leaves every query at least key 0: no row is fully masked, so the
    # weights need no zeroing after the softmax (one op less forward and backward)
    zero = zero_masked_rows and mask is not None
    if is_causal:
        cm = causal_mask(query.shape[1], key.shape[1])
        mask = cm if mask is None else mask & cm
    dot_eq, combine_eq = attention_equations(query.ndim, attn_axes)
    # the scale multiplies the scores, not the query as Keras does (the same numbers to
    # float32 rounding): XLA fuses it into the masking and softmax, forward and backward,
    # where the scaled query is a fusion of its own each way (docs/bench.md, compile time)
    scores = jnp.einsum(dot_eq, key, query,
                        preferred_element_type=jnp.promote_types(query.dtype, jnp.float32))
    scores = scores * jnp.asarray(scale, scores.dtype)
    norm = tuple(range(scores.ndim - len(attn_axes), scores.ndim))
    if mask is not None:
        mask = expand_mask(mask, scores.ndim, len(attn_axes))
        scores = jnp.where(mask, scores, _LARGE_NEGATIVE)
    weights = jax.nn.softmax(scores, axis=norm)
    if zero:
        weights = jnp.where(mask, weights, 0.0)
    dropped = weights
    if train and dropout > 0:
        keep = jax.random.bernoulli(rng, 1.0 - dropout, weights.shape)
        dropped = jnp.where(keep, weights / (1.0 - dropout), 0.0)
    y = jnp.einsum(combine_eq, dropped.astype(value.dtype), value)
    return y, (weights.astype(query.dtype) if return_scores else None)


def dot_product_attention(query, key, value, mask=None, *, scale, attn_axes=(1,),
                          is_causal=False, dropout=0.0, rng=None, train=False,
                          return_scores=False, implementation=None, zero_masked_rows=False):
    """Attention of projected ``query (B, .., T, N, H)`` on ``key``/``value``
    ``(B, .., S, K, H)`` (K divides N: grouped heads share a key/value head).

    `mask` is one boolean mask, ``(B, T, S)`` or broadcastable to the scores. Returns
    ``(output (B, .., T, N, Hv), scores or None)``. The fast path
    (`jax.nn.dot_product_attention`) serves one attention axis without dropout in
    training, without returned scores, with value heads the size of key heads and
    inputs below float64, and (on CPU) fewer keys than the CPU rule's threshold, which
    depends on whether the call is differentiated; otherwise scores are computed in
    float32 (or float64) and dropout hits the weights. On both paths a query whose mask
    row is all False gets the mean of all values (Keras' `ops.dot_product_attention`), or a
    zero output with `zero_masked_rows` (Keras' Softmax, on Keras' einsum path).
    """
    if (len(attn_axes) != 1 or query.ndim != 4 or return_scores
            or (train and dropout > 0) or value.shape[-1] != key.shape[-1]
            or query.dtype == jnp.float64):      # jax's softmax would run in float32
        return _einsum_attention(query, key, value, mask, scale=scale, attn_axes=attn_axes,
                                 is_causal=is_causal, dropout=dropout, rng=rng, train=train,
                                 return_scores=return_scores,
                                 zero_masked_rows=zero_masked_rows)

    def fast(q, k, v, m):
        return _fast_attention(q, k, v, m, scale=scale, is_causal=is_causal,
                               implementation=implementation,
                               zero_masked_rows=zero_masked_rows)

    def einsum(q, k, v, m):
        return _einsum_attention(q, k, v, m, scale=scale, is_causal=is_causal,
                                 zero_masked_rows=zero_masked_rows)[0]

    when_differentiated, otherwise = (
        einsum if _einsum_is_faster(key, implementation, differentiated) else fast
        for differentiated in (True, False))
    if when_differentiated is otherwise:
        return otherwise(query, key, value, mask), None
    return _by_differentiation(otherwise, when_differentiated)(query, key, value, mask), None


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
                    hooks, activity_regularizer=None, activity_on_output=False):
    """A Keras attention layer of EinsumDense projections around
    `dot_product_attention` (shared by MultiHeadAttention and GroupedQueryAttention).

    `projections(q_shape, v_shape, k_shape)` gives ``{sublayer: (equation, output_shape,
    bias_axes, activation)}``; `axes_for(rank)` the attention axes of projected tensors;
    `hooks` a (penalty, constrain) pair for one sublayer's params. With an
    `activity_regularizer` the layer is stateful, as Keras regularizes each projection's
    output (see `_with_projection_activity`).
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
        if not len(q) == len(v) == len(k):
            raise ShapeError(f"query, value and key must have the same rank, received "
                             f"{Shape(q)!r}, {Shape(v)!r} and {Shape(k)!r}", name)
        if any(s[-1] is None for s in (q, v, k)):
            raise ShapeError(f"the feature (last) dims of query, value and key must be "
                             f"known, received {Shape(q)!r}, {Shape(v)!r} and "
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
              return_attention_scores=return_attention_scores, _outputs=None):
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
        combined = None
        if not causal_only:     # clear errors for masks that do not fit the scores
            qp = q.shape[:-1] + (jnp.shape(params["query"]["kernel"])[-2],)
            scores = ([qp[i] for i in range(q.ndim) if i not in axes]
                      + [q.shape[i] for i in axes] + [k.shape[i] for i in axes])
            check_masks(name, q.shape, v.shape, (qm, vm, km), attention_mask, scores,
                        len(axes))
            combined = _combined_mask(qm, vm, km, attention_mask, use_causal_mask,
                                      (q.shape[1], v.shape[1]))
            if combined is not None:
                check_scores_mask(name, "the combined mask", combined, scores, len(axes))
        subs = sublayers(q.shape, v.shape, k.shape)
        proj = {n: subs[n].apply(params[n], t) for n, t in
                (("query", q), ("key", k), ("value", v))}
        try:
            y, scores = dot_product_attention(
                proj["query"], proj["key"], proj["value"], combined, scale=scale,
                attn_axes=axes, is_causal=causal_only, dropout=dropout, rng=rng,
                train=train, return_scores=return_attention_scores,
                implementation=implementation,
                # Keras' own choice of path decides what a query that sees no key (a
                # padded step) gets: its einsum path (dropout, returned scores, several
                # attention axes) zeros, its ops.dot_product_attention the mean of all values
                zero_masked_rows=dropout > 0 or return_attention_scores or q.ndim != 3)
        except RuntimeError as e:        # "cuDNN is not detected", as Keras raises it
            if not flash_attention:
                raise
            raise RuntimeError(f"{name}: flash_attention=True needs jax's cuDNN attention "
                               f"(an NVIDIA GPU): {str(e).rstrip('.')}; use None or False") from None
        if "gate" in params:
            proj["gate"] = subs["gate"].apply(params["gate"], q)
            y = y * proj["gate"]
        y = subs["attention_output"].apply(params["attention_output"], y)
        if _outputs is not None:        # every projection's output, for the regularizer
            _outputs.extend(list(proj.values()) + [y])
        return (y, scores) if return_attention_scores else y

    def _combined_mask(qm, vm, km, am, causal, lengths):
        return attention_mask(qm, vm, km, am, causal, lengths=lengths,
                              sliding_window=sliding_window)

    def penalty(params):
        return sum(penalty_one(p) for p in params.values())

    def constrain(params):
        return {n: constrain_one(p) for n, p in params.items()}

    layer = Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                  masking=makes_mask(_output_mask, takes=True))
    return _with_projection_activity(layer, activity_regularizer, activity_on_output)


def _with_projection_activity(layer, regularizer, on_output=False):
    """`layer` (from `attention_layer`) with Keras' `activity_regularizer` of
    MultiHeadAttention: Keras hands it to every EinsumDense projection (query, key, value,
    gate, attention_output), so the loss is the sum over those outputs of
    ``regularizer(output) / batch_size``; `on_output` adds the layer's own outputs (the
    attention output and the returned scores), as Keras' GroupedQueryAttention also
    regularizes them as a layer. Reported through state as the other activity
    regularizers are (``{"activity_loss": ()}``, from the last ``train=True`` call; read
    it with `jl.activity_loss`). `layer` unchanged when `regularizer` is None."""
    if regularizer is None:
        return layer
    reg = _regularizers.get(regularizer)

    def init(key, input_shape):
        out_shape, params = layer.init(key, input_shape)
        return out_shape, params, {"activity_loss": jnp.zeros((), jnp.float32)}

    def apply(params, state, x, *, rng=None, train=False, **kwargs):
        outputs = []
        y = layer.apply(params, x, rng=rng, train=train, _outputs=outputs, **kwargs)
        if on_output:
            outputs.extend(jax.tree_util.tree_leaves(y))
        loss = state["activity_loss"]
        if train:
            loss = _regularizers.activity_penalty(reg, outputs, loss)
        return y, {"activity_loss": loss}

    return dataclasses.replace(layer, init=init, apply=apply, stateful=True)

