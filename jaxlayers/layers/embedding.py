"""Embedding and Masking: the layers that start a masked sequence model.

Both produce a time-step mask (a boolean ``(batch, time)`` array, True = a real step)
through their `mask_fn`; `serial` hands it to the recurrent layers after them as
``mask=``. The values they return are plain arrays, as for every other layer.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import initializers as _initializers
from .weights import weight_hooks
from ..core import DROP, makes_mask
from ..core import Layer, Shape, ShapeError, as_shape, describe
from .checks import check_rank
from ..regularizers import with_activity_regularizer
from .args import ArgumentTypeError, boolean, keras_layer, number, positive_int, refuse_lora

__all__ = ["Embedding", "Masking"]


@keras_layer
def Embedding(input_dim, output_dim, embeddings_initializer="uniform",
              embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
              weights=None, lora_rank=None, lora_alpha=None, quantization_config=None,
              activity_regularizer=None) -> Layer:
    """Turn integer indices into dense vectors: row ``x`` of ``embeddings``.

    Params: ``embeddings`` (input_dim, output_dim), initialised by `embeddings_initializer`
    (Keras' ``"uniform"`` is U(-0.05, 0.05)).

    Inputs must be integers: a floating-point input raises a TypeError at apply (Keras
    silently casts it; here a float array is far more often a bug). An index outside
    ``[0, input_dim)`` is not checked (that would need data-dependent control flow under
    `jit`); it behaves as ``jnp.take`` and as Keras on JAX: an index in
    ``[-input_dim, 0)`` counts from the end (``-1`` is the last row), any other index
    gives a row of NaN, so the mistake shows up in the loss.

    With ``mask_zero=True`` index 0 is padding: the layer produces the mask ``x != 0``,
    which `serial` passes to the recurrent layers that follow. The vectors themselves
    are returned unchanged (row 0 is still looked up). ``input_dim`` should then count
    the padding index (vocabulary size + 1), as in Keras.

    Args:
      input_dim: the vocabulary size (largest index + 1), a positive int.
      output_dim: the size of each vector, a positive int.
      embeddings_initializer: the initializer of ``embeddings`` (a name or a callable).
      embeddings_regularizer: a weight regularizer (feeds ``layer.penalty(params)``).
      embeddings_constraint: a constraint applied by ``layer.constrain(params)``.
      mask_zero: whether index 0 is padding that produces a time-step mask.
      weights: the initial ``embeddings``, an array of shape (input_dim, output_dim), in
        place of the initializer (as Keras' `weights`).
      lora_rank, lora_alpha: None only (LoRA is not implemented; fine-tune with `jl.freeze`).
      quantization_config: None only (weights are not quantized).
      activity_regularizer: a regularizer of the output; makes the layer stateful.

    Input shape: ``(batch, ...)`` integers. Output shape: ``(batch, ..., output_dim)``.
    """
    input_dim = positive_int("Embedding", "input_dim", input_dim)
    output_dim = positive_int("Embedding", "output_dim", output_dim)
    mask_zero = boolean("Embedding", "mask_zero", mask_zero)
    refuse_lora("Embedding", lora_rank, lora_alpha, quantization_config)
    if weights is not None:
        weights = _initial_embeddings(weights, input_dim, output_dim)
    name = describe("Embedding", input_dim, output_dim,
                    **({"mask_zero": True} if mask_zero else {}))
    try:
        init_fn = _initializers.get(embeddings_initializer)
    except ValueError as e:
        raise ValueError(f"{name}: embeddings_initializer: {e}") from None
    penalty, constrain = weight_hooks(name, embeddings=(embeddings_regularizer,
                                                        embeddings_constraint))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        table = (init_fn(key, (input_dim, output_dim), jnp.float32) if weights is None
                 else weights)
        params = {"embeddings": table}
        return Shape(shape + (output_dim,)), params

    def apply(params, x, *, rng=None, train=False):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise TypeError(f"{name}: expected integer indices, received a {x.dtype} input "
                            f"of shape {Shape(x.shape)!r}; cast it, e.g. x.astype(jnp.int32)")
        if x.ndim < 1:
            raise ShapeError(f"expected an input with a batch axis, received a scalar", name)
        return jnp.take(params["embeddings"], x, axis=0)

    def mask_fn(x, mask):
        return jnp.not_equal(x, 0)

    layer = Layer(init, apply, name=name, penalty=penalty, constrain=constrain,
                  masking=makes_mask(mask_fn) if mask_zero else DROP)
    return with_activity_regularizer(layer, activity_regularizer)


def _initial_embeddings(weights, input_dim, output_dim):
    """Keras' `weights` (the array itself, or a list holding it) as a float32 array."""
    if isinstance(weights, (list, tuple)) and len(weights) == 1:
        weights = weights[0]
    try:
        table = jnp.asarray(weights, jnp.float32)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"Embedding: weights must be an array of shape ({input_dim}, "
                                f"{output_dim}), received {type(weights).__name__}") from None
    if table.shape != (input_dim, output_dim):
        raise ValueError(f"Embedding: weights must have shape ({input_dim}, {output_dim}), "
                         f"received {table.shape}")
    return table


@keras_layer
def Masking(mask_value=0.0) -> Layer:
    """Mark the time steps whose features all equal `mask_value` as padding.

    Args:
      mask_value: the value of every feature of a padding step, a number.

    As Keras: the output is the input with those steps set to 0, and the layer produces
    the mask ``any(x != mask_value, axis=-1)`` that `serial` passes to the recurrent layers
    that follow (a masked step keeps their state and repeats their previous output).

    Input shape: ``(batch, time, features)`` (any rank >= 2). Output shape: the same.
    """
    number("Masking", "mask_value", mask_value)
    name = describe("Masking", mask_value) if mask_value != 0 else "Masking()"

    def keep(x):
        return jnp.any(jnp.not_equal(x, mask_value), axis=-1)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        if getattr(x, "ndim", 0) < 2:
            raise ShapeError(f"expected an input of shape (batch, time, features), received "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        return jnp.where(keep(x)[..., None], x, jnp.zeros((), x.dtype))

    def mask_fn(x, mask):
        return keep(x)

    return Layer(init, apply, name=name, masking=makes_mask(mask_fn))
