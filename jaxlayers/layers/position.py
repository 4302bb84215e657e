"""Position information for sequence models, with keras_hub's names, arguments and formulas:
`PositionEmbedding` (learned), `SinePositionEncoding` and `RotaryEmbedding`.

`PositionEmbedding` and `SinePositionEncoding` return the position vectors broadcast to the
input's shape (as keras_hub: add them yourself, e.g. ``jl.residual(jl.PositionEmbedding(T))``);
`RotaryEmbedding` returns its input rotated. Each `apply` takes keras_hub's call keywords
``start_index`` (an int or a traced scalar: the position of the first step, for decoding from
a key/value cache) and ``positions`` (explicit positions, ``(T,)`` or ``(batch, T)``).
Positions and angles are computed in float32 and the result cast to the input's dtype.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .. import initializers as _initializers
from ..core import PASS, Layer, Shape, ShapeError, as_shape, describe
from .args import keras_layer, number, one_of, positive_int, boolean
from .checks import check_rank

__all__ = ["PositionEmbedding", "SinePositionEncoding", "RotaryEmbedding"]


def _positions(name, length: int, start_index, positions):
    """float32 positions, ``(1, T)`` or ``(batch, T)``."""
    if positions is not None:
        positions = jnp.asarray(positions, jnp.float32)
        if positions.ndim == 1:
            positions = positions[None]
        if positions.ndim != 2 or positions.shape[-1] != length:
            raise ShapeError(f"positions must have shape ({length},) or (batch, {length}), "
                             f"received {Shape(positions.shape)!r}", name)
        return positions
    return (jnp.arange(length, dtype=jnp.float32)
            + jnp.asarray(start_index, jnp.float32))[None]


def _sequence_input(name, x):
    if getattr(x, "ndim", 0) < 2:
        raise ShapeError(f"expected an input (..., sequence, features), received shape "
                         f"{Shape(getattr(x, 'shape', ()))!r}", name)


@keras_layer
def PositionEmbedding(sequence_length, initializer="glorot_uniform") -> Layer:
    """A learned position embedding: one trainable vector per position (keras_hub's layer).

    Args:
      sequence_length: the largest sequence length the layer serves, a positive int.
      initializer: the initializer of ``embeddings`` (a name or a callable).

    Params: ``embeddings`` (sequence_length, features). ``apply(params, x, *,
    start_index=0, positions=None)`` returns rows ``start_index .. start_index + T - 1``
    (or the rows at `positions`) broadcast to ``x.shape``; `start_index` may be a traced
    scalar (decoding one step at a time). The time-step mask passes through.

    Input shape: ``(batch, ..., sequence, features)``, sequence <= `sequence_length`.
    Output shape: the same.
    """
    kind = "PositionEmbedding"
    if sequence_length is None:
        raise ValueError(f"{kind}: sequence_length must be a positive int, received None")
    sequence_length = positive_int(kind, "sequence_length", sequence_length)
    name = describe(kind, sequence_length)
    try:
        init_fn = _initializers.get(initializer)
    except ValueError as e:
        raise ValueError(f"{name}: initializer: {e}") from None

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=2)
        if shape[-1] is None:
            raise ShapeError(f"the feature axis must be known, received {shape!r}", name)
        if shape[-2] is not None and shape[-2] > sequence_length:
            raise ShapeError(f"a sequence of {shape[-2]} steps is longer than "
                             f"sequence_length={sequence_length}", name)
        return shape, {"embeddings": init_fn(key, (sequence_length, shape[-1]), jnp.float32)}

    def apply(params, x, *, rng=None, train=False, start_index=0, positions=None):
        _sequence_input(name, x)
        table = params["embeddings"].astype(x.dtype) if jnp.issubdtype(
            x.dtype, jnp.floating) else params["embeddings"]
        length = x.shape[-2]
        if length > sequence_length:
            raise ShapeError(f"a sequence of {length} steps is longer than "
                             f"sequence_length={sequence_length}", name)
        if positions is not None:
            rows = jnp.take(table, jnp.asarray(positions), axis=0)
            rows = rows[None] if rows.ndim == 2 else rows
            rows = rows.reshape(rows.shape[:1] + (1,) * (x.ndim - 3) + rows.shape[1:])
        else:
            rows = jax.lax.dynamic_slice_in_dim(table, start_index, length, axis=0)
        return jnp.broadcast_to(rows, x.shape)

    return Layer(init, apply, name=name, masking=PASS)


def _no_params(name, min_rank=2):
    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=min_rank)
        return shape, ()
    return init


@keras_layer
def SinePositionEncoding(max_wavelength=10000) -> Layer:
    """The fixed sinusoidal position encoding of Vaswani et al. (keras_hub's layer).

    Feature ``j`` of position ``p`` is ``sin(p * w_j)`` for even ``j`` and ``cos(p * w_j)``
    for odd ``j``, with ``w_j = max_wavelength ** (-2 * (j // 2) / features)``.

    Args:
      max_wavelength: the longest wavelength of the sinusoids, a positive number.

    ``apply(params, x, *, start_index=0, positions=None)`` returns the encoding broadcast to
    ``x.shape`` (add it to the input yourself). No params; the time-step mask passes through.

    Input shape: ``(batch, ..., sequence, features)``. Output shape: the same.
    """
    kind = "SinePositionEncoding"
    max_wavelength = number(kind, "max_wavelength", max_wavelength, minimum=0, open_min=True)
    name = describe(kind, **({"max_wavelength": max_wavelength}
                             if max_wavelength != 10000 else {}))

    def apply(params, x, *, rng=None, train=False, start_index=0, positions=None):
        _sequence_input(name, x)
        length, width = x.shape[-2], x.shape[-1]
        pos = _positions(name, length, start_index, positions)
        j = jnp.arange(width)
        timescales = jnp.power(jnp.float32(1.0 / max_wavelength),
                               (2 * (j // 2)).astype(jnp.float32) / width)
        angles = pos[..., None] * timescales[None, None]
        encoding = jnp.where((j % 2 == 0)[None, None], jnp.sin(angles), jnp.cos(angles))
        encoding = encoding.reshape(encoding.shape[:1] + (1,) * (x.ndim - 3)
                                    + encoding.shape[1:])
        return jnp.broadcast_to(encoding.astype(x.dtype), x.shape)

    return Layer(_no_params(name), apply, name=name, masking=PASS)


def _inverse_frequencies(dim, max_wavelength, scaling_factor, rope_type, beta_fast,
                         beta_slow, original_max_position_embeddings, truncate,
                         denominator_dim):
    """keras_hub's inverse frequencies for a rotary dimension `dim` (float32, (dim // 2,))."""
    idx = jnp.arange(0, dim, 2, dtype=jnp.float32)
    denom = jnp.float32(denominator_dim if denominator_dim is not None else dim)
    inv = jnp.power(jnp.float32(max_wavelength), -(idx / denom))
    if rope_type == "linear":
        return inv / jnp.float32(scaling_factor)
    if rope_type == "dynamic":
        return inv / jnp.power(jnp.float32(scaling_factor), jnp.float32(dim / max(1, dim - 2)))
    # YaRN: interpolate the low frequencies, keep the high ones, ramp in between.
    base = jnp.float32(max_wavelength)
    freqs = jnp.power(base, idx / jnp.float32(dim))

    def correction_dim(rotations):
        return (dim * jnp.log(jnp.float32(original_max_position_embeddings)
                              / (rotations * 2 * math.pi))) / (2 * jnp.log(base))
    low, high = correction_dim(jnp.float32(beta_fast)), correction_dim(jnp.float32(beta_slow))
    if truncate:
        low, high = jnp.floor(low), jnp.ceil(high)
    low, high = jnp.maximum(low, 0.0), jnp.minimum(high, jnp.float32(dim - 1))
    ramp = jnp.clip((jnp.arange(dim // 2, dtype=jnp.float32) - low)
                    / jnp.maximum(high - low, 0.001), 0, 1)
    keep = 1 - ramp
    return (1.0 / (jnp.float32(scaling_factor) * freqs)) * (1 - keep) + (1.0 / freqs) * keep


@keras_layer
def RotaryEmbedding(max_wavelength=10000, scaling_factor=1.0, rope_type="linear",
                    beta_fast=32.0, beta_slow=1.0, original_max_position_embeddings=4096,
                    truncate=True, sequence_axis=1, feature_axis=-1,
                    denominator_dim=None) -> Layer:
    """Rotary position embedding (Su et al., RoFormer), keras_hub's layer and formulas.

    The feature axis is split in halves ``x1, x2``; the output is
    ``x * cos(p * f) + concat(-x2, x1) * sin(p * f)`` with the frequencies ``f`` repeated
    over both halves, ``f_i = max_wavelength ** (-2i / d) / scaling_factor`` (linear).

    Args:
      max_wavelength: the base of the frequencies, a positive number.
      scaling_factor: divides the frequencies (position interpolation), a positive number.
      rope_type: "linear", "dynamic" (NTK-aware: divides by ``scaling_factor ** (d / (d -
        2))``) or "yarn" (YaRN interpolation, with temperature ``0.1 ln(s) + 1``).
      beta_fast, beta_slow: YaRN's correction range, in rotations.
      original_max_position_embeddings: YaRN's original context length.
      truncate: whether YaRN's correction range is rounded outward to whole dims.
      sequence_axis: the axis of positions in the input.
      feature_axis: the axis rotated (even size).
      denominator_dim: the ``d`` of the frequencies (default the rotated size).

    ``apply(params, x, *, start_index=0, positions=None)``. No params; the time-step mask
    passes through.

    Input shape: any rank >= 3, e.g. ``(batch, sequence, heads, head_dim)``. Output shape:
    the same.
    """
    kind = "RotaryEmbedding"
    max_wavelength = number(kind, "max_wavelength", max_wavelength, minimum=0, open_min=True)
    scaling_factor = number(kind, "scaling_factor", scaling_factor, minimum=0, open_min=True)
    one_of(kind, "rope_type", rope_type, ("linear", "dynamic", "yarn"))
    beta_fast = number(kind, "beta_fast", beta_fast, minimum=0, open_min=True)
    beta_slow = number(kind, "beta_slow", beta_slow, minimum=0, open_min=True)
    original_max_position_embeddings = positive_int(
        kind, "original_max_position_embeddings", original_max_position_embeddings)
    truncate = boolean(kind, "truncate", truncate)
    for arg, value in (("sequence_axis", sequence_axis), ("feature_axis", feature_axis)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{kind}: {arg} must be an int, received {value!r}")
    if denominator_dim is not None:
        denominator_dim = positive_int(kind, "denominator_dim", denominator_dim)
    name = describe(kind, **{k: v for k, v in (
        ("max_wavelength", max_wavelength), ("scaling_factor", scaling_factor),
        ("rope_type", rope_type)) if v not in (10000, 1.0, "linear")})
    options = (max_wavelength, scaling_factor, rope_type, beta_fast, beta_slow,
               original_max_position_embeddings, truncate, denominator_dim)

    def axes(rank):
        seq, feat = sequence_axis % rank if -rank <= sequence_axis < rank else None, \
            feature_axis % rank if -rank <= feature_axis < rank else None
        if seq is None or feat is None or seq == feat or seq == 0 or feat == 0:
            raise ShapeError(f"sequence_axis={sequence_axis} and feature_axis={feature_axis} "
                             f"must be two different non-batch axes of a rank-{rank} input",
                             name)
        return seq, feat

    def check(shape):
        seq, feat = axes(len(shape))
        if shape[feat] is not None and shape[feat] % 2:
            raise ShapeError(f"the rotated axis {feat} must have an even size, received "
                             f"{Shape(shape)!r}", name)
        return seq, feat

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=3)
        check(shape)
        return shape, ()

    def apply(params, x, *, rng=None, train=False, start_index=0, positions=None):
        if getattr(x, "ndim", 0) < 3:
            raise ShapeError(f"expected an input of rank >= 3, received shape "
                             f"{Shape(getattr(x, 'shape', ()))!r}", name)
        seq, feat = check(x.shape)
        moved = jnp.moveaxis(x, (feat, seq), (-1, 1))
        dim = moved.shape[-1]
        pos = _positions(name, moved.shape[1], start_index, positions)
        freq = pos[..., None] * _inverse_frequencies(dim, *options)[None, None]
        angle = jnp.concatenate([freq, freq], axis=-1)            # (b, T, dim)
        angle = angle.reshape(angle.shape[:2] + (1,) * (moved.ndim - 3) + angle.shape[2:])
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        if rope_type == "yarn":
            temperature = 0.1 * math.log(scaling_factor) + 1.0
            cos, sin = cos * temperature, sin * temperature
        x1, x2 = jnp.split(moved, 2, axis=-1)
        rotated = jnp.concatenate([-x2, x1], axis=-1)
        y = moved * cos.astype(x.dtype) + rotated * sin.astype(x.dtype)
        return jnp.moveaxis(y, (-1, 1), (feat, seq))

    return Layer(init, apply, name=name, masking=PASS)
