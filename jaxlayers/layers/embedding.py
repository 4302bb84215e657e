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


def Embedding(input_dim, output_dim, embeddings_initializer="uniform",
              embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
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

    Input shape: ``(batch, ...)`` integers. Output shape: ``(batch, ..., output_dim)``.
    """
    for what, v in (("input_dim", input_dim), ("output_dim", output_dim)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"Embedding: {what} must be a positive int, got {v!r}")
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
        params = {"embeddings": init_fn(key, (input_dim, output_dim), jnp.float32)}
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


def Masking(mask_value=0.0) -> Layer:
    """Mark the time steps whose features all equal `mask_value` as padding.

    As Keras: the output is the input with those steps set to 0, and the layer produces
    the mask ``any(x != mask_value, axis=-1)`` that `serial` passes to the recurrent layers
    that follow (a masked step keeps their state and repeats their previous output).

    Input shape: ``(batch, time, features)`` (any rank >= 2). Output shape: the same.
    """
    if not isinstance(mask_value, (int, float)) or isinstance(mask_value, bool):
        raise ValueError(f"Masking: mask_value must be a number, got {mask_value!r}")
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
