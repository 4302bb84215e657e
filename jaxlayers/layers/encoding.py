"""Categorical encodings: CategoryEncoding, Discretization (bins given, or adapted with
`jl.adapt`) and IntegerLookup over an integer vocabulary.

Parameter-free: the bins and the vocabulary are closed over. Outputs of the "int" mode are
int32 indices; the other modes give float vectors (float32, or a floating input's dtype).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, Shape, ShapeError, as_shape, describe
from .args import ArgumentTypeError, boolean, keras_layer, non_negative_int, number, one_of
from .args import refuse_unless_default
from .checks import check_rank
from .preprocessing import _constant, _float, _with_adapt

__all__ = ["CategoryEncoding", "Discretization", "IntegerLookup", "quantile_boundaries"]


# --------------------------------------------------------------------------- encoding


ENCODINGS = ("int", "one_hot", "multi_hot", "count")


def _encoded_shape(name, shape, mode, depth):
    """The output shape of `_encode` for an input `shape` (a ShapeError names the layer)."""
    if mode == "int":
        return shape
    if mode == "one_hot":
        return Shape(shape[:-1] + (depth,)) if len(shape) > 1 and shape[-1] == 1 \
            else Shape(shape + (depth,))
    if len(shape) > 2:
        raise ShapeError(f"output_mode={mode!r} takes inputs (batch,) or (batch, tokens), "
                         f"received shape {shape!r}", name)
    return Shape((shape[0], depth))


def _encode(index, mode, depth, dtype, weights=None):
    """Keras' categorical encodings of integer `index` (out-of-range rows are all zero)."""
    if mode == "int":
        return index
    if mode == "one_hot":
        if index.ndim > 1 and index.shape[-1] == 1:
            index = index[..., 0]
        return jax.nn.one_hot(index, depth, dtype=dtype)
    if index.ndim == 1:
        index = index[:, None]
    hot = jax.nn.one_hot(index, depth, dtype=dtype)
    if weights is not None:
        hot = hot * weights.reshape(weights.shape + (1,)).astype(dtype)
    return jnp.max(hot, axis=1) if mode == "multi_hot" else jnp.sum(hot, axis=1)


@keras_layer
def CategoryEncoding(num_tokens=None, output_mode="multi_hot", sparse=False) -> Layer:
    """Encode integer tokens in ``[0, num_tokens)`` as one-hot, multi-hot or count vectors.

    Tokens out of range give all-zero rows, as Keras' JAX backend does (no error is
    possible under jit).

    Args:
      num_tokens: the number of tokens (the output's last size), an int > 0.
      output_mode: "one_hot" (a trailing size-1 axis is replaced), "multi_hot" (1 where a
        token occurs in the row) or "count" (how often).
      sparse: False only (dense outputs).

    Input shape: ``(batch,)`` or ``(batch, tokens)`` of integers (one_hot: any rank).
    Output shape: ``(batch, num_tokens)``; one_hot: the input's shape plus ``num_tokens``.
    Count weights (Keras' ``count_weights``): give ``(tokens, weights)`` as the input.
    """
    kind = "CategoryEncoding"
    if num_tokens is None:
        raise ValueError(f"{kind}: num_tokens must be given (an int > 0), received None")
    depth = non_negative_int(kind, "num_tokens", num_tokens)
    if depth == 0:
        raise ValueError(f"{kind}: num_tokens must be an int > 0, received 0")
    mode = one_of(kind, "output_mode", output_mode, ("one_hot", "multi_hot", "count"))
    refuse_unless_default(kind, "sparse", sparse, False, "JAX arrays here are dense")
    name = describe(kind, depth, output_mode=mode)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        if isinstance(shape, tuple) and not isinstance(shape, Shape):
            if mode != "count" or len(shape) != 2 or shape[0] != shape[1]:
                raise ShapeError("a pair input (tokens, count_weights) needs output_mode="
                                 "'count' and two equal shapes", name)
            shape = shape[0]
        check_rank(name, shape, min_rank=1)
        return _encoded_shape(name, shape, mode, depth), ()

    def apply(params, x, *, rng=None, train=False):
        weights = None
        if isinstance(x, (tuple, list)):
            x, weights = x
        return _encode(x.astype(jnp.int32), mode, depth, jnp.float32 if weights is None
                       else _float(weights).dtype, weights)

    return Layer(init, apply, name=name)


# --------------------------------------------------------------------------- Discretization


def _summary(values, epsilon):
    """A quantile summary of `values`: (2, n) rows of values and their weights (the
    summary Keras' Discretization keeps, so adapted boundaries agree with Keras)."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(values.size * epsilon, 1)
    picked = values[int(step - 1)::int(step)]
    return np.stack([picked, np.full_like(picked, step)])


def _compress(summary, epsilon):
    """`summary` reduced to about ``1 / epsilon`` entries by interpolating its cumulative
    weights."""
    if summary.shape[1] * epsilon < 1:
        return summary
    targets = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    fractions = cumulative / cumulative[-1]
    values = np.interp(targets, fractions, summary[0])
    cumulative = np.interp(targets, fractions, cumulative)
    weights = cumulative - np.concatenate(([0], cumulative[:-1]))
    return np.stack((values, weights)).astype("float32")


def quantile_boundaries(batches, num_bins, epsilon=0.01):
    """Approximate quantile bin boundaries (``num_bins - 1`` of them) over `batches`."""
    summary = np.zeros((2, 0), np.float32)
    for batch in batches:
        merged = np.concatenate((summary, _summary(np.asarray(batch, np.float32), epsilon)), 1)
        summary = _compress(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)
    if not summary.shape[1]:
        raise ValueError("Discretization: adapt received no data")
    return _compress(summary, 1.0 / num_bins)[0, :-1].tolist()


@keras_layer
def Discretization(bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                   sparse=False) -> Layer:
    """Bucket numbers into bins: index ``i`` for ``boundaries[i-1] <= x < boundaries[i]``.

    Give `bin_boundaries`, or `num_bins` and compute quantile boundaries from data with
    ``jl.adapt(layer, data)`` (Keras' algorithm and its `epsilon`).

    Args:
      bin_boundaries: increasing bin edges (n edges make n + 1 bins), or None.
      num_bins: the number of bins to adapt (with no `bin_boundaries`), or None.
      epsilon: the error tolerance of the adapted quantiles, in (0, 1).
      output_mode: "int" (bin indices, int32), "one_hot", "multi_hot" or "count".
      sparse: False only (dense outputs).

    Input shape: any (``(batch,)`` or ``(batch, n)`` for multi_hot and count).
    Output shape: "int": the same; else as CategoryEncoding with ``num_bins`` tokens.
    """
    kind = "Discretization"
    mode = one_of(kind, "output_mode", output_mode, ENCODINGS)
    refuse_unless_default(kind, "sparse", sparse, False, "JAX arrays here are dense")
    number(kind, "epsilon", epsilon, minimum=0, maximum=1, open_min=True, open_max=True)
    if (bin_boundaries is None) == (num_bins is None):
        raise ValueError(f"{kind}: give exactly one of bin_boundaries and num_bins "
                         f"(received bin_boundaries={bin_boundaries!r}, num_bins={num_bins!r})")
    if num_bins is not None:
        non_negative_int(kind, "num_bins", num_bins)
    edges = None if bin_boundaries is None else _constant(kind, "bin_boundaries",
                                                          bin_boundaries).reshape(-1)
    if edges is not None and np.any(np.diff(edges) < 0):
        raise ValueError(f"{kind}: bin_boundaries must be sorted, received {bin_boundaries!r}")
    depth = num_bins if edges is None else len(edges) + 1
    name = describe(kind, **({"num_bins": num_bins} if edges is None else
                             {"bins": depth}), **({"output_mode": mode} if mode != "int" else {}))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        if edges is None:
            raise ShapeError("no bin_boundaries: compute them from data with "
                             "layer = jl.adapt(layer, data)", name)
        return _encoded_shape(name, shape, mode, depth), ()

    def apply(params, x, *, rng=None, train=False):
        x = _float(x)
        index = jnp.searchsorted(jnp.asarray(edges, x.dtype), x, side="right").astype(jnp.int32)
        return _encode(index, mode, depth, x.dtype)

    def adapt_hook(batches):
        return Discretization(bin_boundaries=quantile_boundaries(batches, num_bins, epsilon),
                              epsilon=epsilon, output_mode=mode)

    layer = Layer(init, apply, name=name)
    return _with_adapt(layer, adapt_hook) if edges is None else layer


# --------------------------------------------------------------------------- IntegerLookup


def _vocabulary(kind, vocabulary):
    """An integer vocabulary (a list / array of ints, or a text file of one int a line)."""
    if isinstance(vocabulary, str):
        vocabulary = np.loadtxt(vocabulary, dtype=np.int64, ndmin=1)
    array = np.asarray(vocabulary)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise ArgumentTypeError(f"{kind}: vocabulary must be a list of ints (or a file of "
                                f"one int a line), received {vocabulary!r}")
    if len(np.unique(array)) != array.size:
        raise ValueError(f"{kind}: vocabulary has repeated tokens: {vocabulary!r}")
    return array.astype(np.int64)


@keras_layer
def IntegerLookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                  vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                  output_mode="int", sparse=False, pad_to_max_tokens=False,
                  oov_method="floormod", salt=None) -> Layer:
    """Map integer tokens to contiguous indices through a fixed vocabulary (or back).

    Indices are laid out as Keras does: the mask token (if any) at 0, then the
    `num_oov_indices` out-of-vocabulary indices, then the vocabulary in its order. With
    ``num_oov_indices=0`` an unknown token maps to -1 (Keras raises; jit cannot).

    Args:
      max_tokens: the largest vocabulary size (mask and OOV indices included), or None.
      num_oov_indices: how many indices unknown tokens share (``token % n`` picks one).
      mask_token: the token meaning "masked" (index 0), or None.
      oov_token: the token `invert` returns for OOV indices.
      vocabulary: the tokens, a list of distinct ints (or a file path, one int a line).
      vocabulary_dtype: "int64" or "int32"; indices and tokens are int32 unless x64 is on.
      idf_weights: the IDF weight of each vocabulary token (output_mode "tf_idf" only).
      invert: if True, map indices back to tokens (output_mode "int" only).
      output_mode: "int", "one_hot", "multi_hot", "count" or "tf_idf".
      sparse: False only (dense outputs).
      pad_to_max_tokens: encode with `max_tokens` columns instead of the vocabulary size.
      oov_method: "floormod" only ("farmhash" hashes strings: the input pipeline's job).
      salt: None only (it salts "farmhash").

    Input shape: integers, any rank (``(batch,)`` / ``(batch, n)`` for multi_hot, count,
    tf_idf). Output shape: "int": the same; else as CategoryEncoding.
    """
    kind = "IntegerLookup"
    if vocabulary is None:
        raise ValueError(f"{kind}: give the vocabulary (a list of ints); adapting a "
                         f"vocabulary from data is done once, in numpy: np.unique(data)")
    vocab = _vocabulary(kind, vocabulary)
    n_oov = non_negative_int(kind, "num_oov_indices", num_oov_indices)
    mode = one_of(kind, "output_mode", "tf_idf" if output_mode == "tf-idf" else output_mode,
                  ENCODINGS + ("tf_idf",))
    one_of(kind, "vocabulary_dtype", vocabulary_dtype, ("int64", "int32"))
    boolean(kind, "invert", invert)
    boolean(kind, "pad_to_max_tokens", pad_to_max_tokens)
    refuse_unless_default(kind, "sparse", sparse, False, "JAX arrays here are dense")
    refuse_unless_default(kind, "oov_method", oov_method, "floormod",
                          "farmhash hashes strings, which belongs in the input pipeline")
    refuse_unless_default(kind, "salt", salt, None, "it only salts oov_method='farmhash'")
    for arg, value in (("mask_token", mask_token), ("oov_token", oov_token)):
        if value is not None and not isinstance(value, (int, np.integer)) or \
                isinstance(value, bool):
            raise ArgumentTypeError(f"{kind}: {arg} must be an int or None, received {value!r}")
    if invert and mode != "int":
        raise ValueError(f"{kind}: invert=True needs output_mode='int', received {mode!r}")
    if (idf_weights is None) != (mode != "tf_idf"):
        raise ValueError(f"{kind}: idf_weights go with output_mode='tf_idf' (both or neither)")
    if mask_token is not None and mask_token in vocab:
        raise ValueError(f"{kind}: the vocabulary contains the mask token {mask_token}")
    start = (mask_token is not None) + n_oov
    size = start + vocab.size
    if max_tokens is not None and non_negative_int(kind, "max_tokens", max_tokens) < size:
        raise ValueError(f"{kind}: the vocabulary needs {size} indices (mask and OOV "
                         f"included), more than max_tokens={max_tokens}")
    if pad_to_max_tokens and max_tokens is None:
        raise ValueError(f"{kind}: pad_to_max_tokens=True needs max_tokens")
    depth = max_tokens if pad_to_max_tokens else size
    idf = None
    if idf_weights is not None:
        weights = _constant(kind, "idf_weights", idf_weights).reshape(-1)
        if weights.size != vocab.size:
            raise ValueError(f"{kind}: idf_weights has {weights.size} entries for a "
                             f"vocabulary of {vocab.size}")
        idf = np.concatenate([[0.0] * (mask_token is not None), [weights.mean()] * n_oov,
                              weights, [0.0] * (depth - size)])
    name = describe(kind, vocab.size, **({"invert": True} if invert else {}),
                    **({"output_mode": mode} if mode != "int" else {}))
    table = np.concatenate([[mask_token] * (mask_token is not None),
                            [oov_token] * n_oov, vocab]).astype(np.int64)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        return _encoded_shape(name, shape, "count" if mode == "tf_idf" else mode, depth), ()

    def lookup(x):
        found = x[..., None] == jnp.asarray(vocab, x.dtype).reshape((1,) * x.ndim + (-1,))
        index = jnp.argmax(found, axis=-1).astype(jnp.int32) + start
        oov = (jnp.mod(x, n_oov).astype(jnp.int32) + (mask_token is not None)
               if n_oov else jnp.full(x.shape, -1, jnp.int32))
        index = jnp.where(jnp.any(found, axis=-1), index, oov)
        if mask_token is not None:
            index = jnp.where(x == mask_token, 0, index)
        return index

    def apply(params, x, *, rng=None, train=False):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name}: expected integer tokens, received {x.dtype}")
        if invert:
            ok = (x >= 0) & (x < table.size)
            tokens = jnp.asarray(table, jnp.int32)[jnp.clip(x, 0, table.size - 1)]
            return jnp.where(ok, tokens, jnp.asarray(oov_token, jnp.int32))
        index = lookup(x)
        if mode == "tf_idf":
            return _encode(index, "count", depth, jnp.float32) * jnp.asarray(idf, jnp.float32)[None]
        return _encode(index, mode, depth, jnp.float32)

    return Layer(init, apply, name=name)
