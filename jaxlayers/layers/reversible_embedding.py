"""ReversibleEmbedding: an Embedding that also projects vectors back to vocabulary logits.

Keras 3's `keras.layers.ReversibleEmbedding` (from keras_hub): called as usual it looks up
integer indices; called with ``reverse=True`` it maps ``(..., output_dim)`` vectors to
``(..., input_dim)`` logits with the transposed ``embeddings`` (tied weights, the default)
or a separate ``reverse_embeddings`` (output_dim, input_dim) matrix. One params dict serves
both directions, so a language model's input embedding and output head share the table.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import initializers as _initializers
from ..core import DROP, Layer, Shape, ShapeError, as_shape, describe, makes_mask
from .args import boolean, keras_layer, number
from .embedding import Embedding

__all__ = ["ReversibleEmbedding"]

_REVERSE_DTYPES = (None, "float32", "float16", "bfloat16", "float64")


@keras_layer
def ReversibleEmbedding(input_dim, output_dim, tie_weights=True,
                        embeddings_initializer="uniform", embeddings_regularizer=None,
                        embeddings_constraint=None, mask_zero=False, reverse_dtype=None,
                        logit_soft_cap=None, weights=None, lora_rank=None, lora_alpha=None,
                        quantization_config=None) -> Layer:
    """An embedding lookup that can be run in reverse to produce vocabulary logits.

    ``apply(params, x, reverse=False)`` looks up the integer indices `x` (as `Embedding`);
    ``apply(params, h, reverse=True)`` returns ``h @ embeddings.T`` (tied weights) or
    ``h @ reverse_embeddings``, and with `logit_soft_cap` the logits
    ``tanh(logits / cap) * cap``. The reverse call makes no mask.

    Params: ``embeddings`` (input_dim, output_dim), and without `tie_weights`
    ``reverse_embeddings`` (output_dim, input_dim), both from `embeddings_initializer`.
    The regularizer and constraint apply to ``embeddings`` only, as in Keras.

    Args:
      input_dim: the vocabulary size (largest index + 1), a positive int.
      output_dim: the size of each vector, a positive int.
      tie_weights: whether the reverse projection uses the transposed ``embeddings``
        (True) or its own ``reverse_embeddings`` matrix.
      embeddings_initializer: the initializer of the weights (a name or a callable).
      embeddings_regularizer: a weight regularizer of ``embeddings``.
      embeddings_constraint: a constraint of ``embeddings``.
      mask_zero: whether index 0 is padding that produces a time-step mask (forward call).
      reverse_dtype: None (the input's dtype) or a float dtype name the reverse
        projection computes in.
      logit_soft_cap: None or a positive number: reverse logits become
        ``tanh(logits / logit_soft_cap) * logit_soft_cap``.
      weights: the initial ``embeddings`` (input_dim, output_dim) in place of the
        initializer.
      lora_rank, lora_alpha: None only (LoRA is not implemented; fine-tune with `jl.freeze`).
      quantization_config: None only (weights are not quantized).

    Input shape: ``(batch, ...)`` integers, or ``(batch, ..., output_dim)`` with
    ``reverse=True``. Output shape: ``(batch, ..., output_dim)``, or
    ``(batch, ..., input_dim)`` with ``reverse=True``.
    """
    kind = "ReversibleEmbedding"
    tie_weights = boolean(kind, "tie_weights", tie_weights)
    if reverse_dtype is not None:
        reverse_dtype = getattr(reverse_dtype, "name", reverse_dtype)
    if reverse_dtype not in _REVERSE_DTYPES:
        raise ValueError(f"{kind}: reverse_dtype must be one of "
                         f"{', '.join(map(repr, _REVERSE_DTYPES))}, received {reverse_dtype!r}")
    if logit_soft_cap is not None:
        logit_soft_cap = number(kind, "logit_soft_cap", logit_soft_cap, minimum=0,
                                open_min=True)
    try:
        lookup = Embedding(input_dim, output_dim, embeddings_initializer,
                           embeddings_regularizer, embeddings_constraint, mask_zero, weights,
                           lora_rank, lora_alpha, quantization_config)
    except ValueError as e:
        raise type(e)(str(e).replace("Embedding", kind, 1)) from None
    name = describe(kind, input_dim, output_dim,
                    **({"tie_weights": False} if not tie_weights else {}),
                    **({"mask_zero": True} if mask_zero else {}),
                    **({"logit_soft_cap": logit_soft_cap} if logit_soft_cap else {}))
    init_fn = _initializers.get(embeddings_initializer)

    def init(key, input_shape):
        k_forward, k_reverse = jax.random.split(key)
        out, params = lookup.init(k_forward, as_shape(input_shape))
        if not tie_weights:
            params = dict(params, reverse_embeddings=init_fn(
                k_reverse, (output_dim, input_dim), jnp.float32))
        return out, params

    def apply(params, x, *, rng=None, train=False, reverse=False):
        if not reverse:
            return lookup.apply({"embeddings": params["embeddings"]}, x)
        x = jnp.asarray(x)
        if x.ndim < 2 or x.shape[-1] != output_dim:
            raise ShapeError(f"reverse=True expects vectors of shape (batch, ..., {output_dim}), "
                             f"received {Shape(x.shape)!r}", name)
        kernel = params["embeddings"].T if tie_weights else params["reverse_embeddings"]
        dtype = jnp.dtype(reverse_dtype) if reverse_dtype else x.dtype
        logits = jnp.matmul(x.astype(dtype), kernel.astype(dtype))
        if logit_soft_cap is not None:
            logits = jnp.tanh(logits / logit_soft_cap) * logit_soft_cap
        return logits

    def mask_fn(x, mask):
        return jnp.not_equal(x, 0) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.integer) else None

    return Layer(init, apply, name=name, penalty=lookup.penalty, constrain=lookup.constrain,
                 masking=makes_mask(mask_fn) if mask_zero else DROP)
