"""Position layers, transformer blocks and cached decoding.

keras_hub does not install cleanly here (it requires tensorflow-text), so the position layers
are checked against keras_hub's formulas written in numpy, and the transformer blocks against
the same computation assembled from Keras 3's own MultiHeadAttention, LayerNormalization and
Dense layers (JAX backend) in keras_hub's call order, with the same weights copied in.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)
RNG = np.random.RandomState(0)
X = RNG.randn(2, 5, 8).astype(np.float32)


# --------------------------------------------------------------------------- position layers


def test_position_embedding_slices_rows_from_start_index_and_positions():
    layer = jl.PositionEmbedding(7)
    shape, params = layer.init(KEY, (None, 5, 8))
    assert shape == (None, 5, 8) and params["embeddings"].shape == (7, 8)
    table = np.asarray(params["embeddings"])
    limit = np.sqrt(6 / (7 + 8))          # glorot_uniform over (sequence_length, features)
    assert np.abs(table).max() <= limit and np.abs(table).max() > limit / 2
    np.testing.assert_array_equal(layer.apply(params, X), np.broadcast_to(table[:5], X.shape))
    np.testing.assert_array_equal(layer.apply(params, X, start_index=2),
                                  np.broadcast_to(table[2:7], X.shape))
    step = jax.jit(lambda i: layer.apply(params, X[:, :1], start_index=i))
    np.testing.assert_array_equal(step(jnp.int32(4)), np.broadcast_to(table[4:5], (2, 1, 8)))
    pos = np.array([[0, 3, 1, 6, 2], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(layer.apply(params, X, positions=pos), table[pos])
    with pytest.raises(jl.ShapeError, match=r"PositionEmbedding\(7\).*8 steps is longer than "
                                            r"sequence_length=7"):
        layer.init(KEY, (None, 8, 4))
    with pytest.raises(ValueError, match="PositionEmbedding: sequence_length must be a "
                                         "positive int, received None"):
        jl.PositionEmbedding(None)


def _sine(positions, width, max_wavelength):
    j = np.arange(width)
    rate = (1.0 / max_wavelength) ** (2 * (j // 2) / width)
    angles = positions[:, None] * rate[None]
    return np.where(j % 2 == 0, np.sin(angles), np.cos(angles))


@pytest.mark.parametrize("max_wavelength", [10000, 50])
def test_sine_position_encoding_is_keras_hubs_formula(max_wavelength):
    layer = jl.SinePositionEncoding(max_wavelength)
    assert layer.init(KEY, (None, 5, 8)) == ((None, 5, 8), ())
    want = _sine(np.arange(3, 8.0), 8, max_wavelength)
    np.testing.assert_allclose(layer.apply((), X, start_index=3),
                               np.broadcast_to(want, X.shape), atol=1e-6)
    y = layer.apply((), X.astype(jnp.bfloat16))
    assert y.dtype == jnp.bfloat16


def _rotary(x, positions, max_wavelength=10000.0, scaling=1.0):
    """keras_hub's rotary formula in numpy for x (batch, T, ..., d)."""
    d = x.shape[-1]
    inv = max_wavelength ** (-np.arange(0, d, 2) / d) / scaling
    angle = np.concatenate([positions[:, None] * inv] * 2, -1)
    angle = angle.reshape((1, len(positions)) + (1,) * (x.ndim - 3) + (d,))
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return x * np.cos(angle) + np.concatenate([-x2, x1], -1) * np.sin(angle)


def test_rotary_embedding_rotates_feature_halves_by_position():
    x = RNG.randn(2, 5, 3, 8).astype(np.float32)
    np.testing.assert_allclose(jl.RotaryEmbedding().apply((), x, start_index=4),
                               _rotary(x, np.arange(4, 9.0)), atol=1e-5)
    np.testing.assert_allclose(
        jl.RotaryEmbedding(max_wavelength=100, scaling_factor=4.0).apply((), x),
        _rotary(x, np.arange(5.0), 100.0, 4.0), atol=1e-5)
    # Other axes: sequence on axis 2, features on axis 1.
    moved = np.moveaxis(x, (1, 3), (2, 1))
    y = jl.RotaryEmbedding(sequence_axis=2, feature_axis=1).apply((), moved)
    np.testing.assert_allclose(np.moveaxis(y, (2, 1), (1, 3)), _rotary(x, np.arange(5.0)),
                               atol=1e-5)
    # A rotation: norms of each (i, i + d/2) pair are kept, and relative positions are what
    # the dot product of a rotated query and key sees.
    q, k = RNG.randn(1, 1, 8).astype(np.float32), RNG.randn(1, 1, 8).astype(np.float32)
    rope = jl.RotaryEmbedding()
    dots = [float(jnp.vdot(rope.apply((), q, start_index=s + 3), rope.apply((), k, start_index=s)))
            for s in (0, 7)]
    np.testing.assert_allclose(dots[0], dots[1], rtol=1e-4)


def test_rotary_embedding_dynamic_and_yarn_frequencies():
    x = RNG.randn(1, 6, 8).astype(np.float32)
    y = jl.RotaryEmbedding(rope_type="dynamic", scaling_factor=2.0).apply((), x)
    np.testing.assert_allclose(y, _rotary(x, np.arange(6.0), scaling=2.0 ** (8 / 6)), atol=1e-5)
    # YaRN: dims 0 .. low keep the original frequency, dims >= high are interpolated by s,
    # and cos / sin carry the temperature 0.1 ln s + 1.
    s, d, base, orig = 4.0, 8, 10000.0, 64
    idx = np.arange(0, d, 2)
    freqs = base ** (idx / d)

    def corr(rot):
        return d * np.log(orig / (rot * 2 * np.pi)) / (2 * np.log(base))
    low, high = max(np.floor(corr(32.0)), 0), min(np.ceil(corr(1.0)), d - 1)
    ramp = np.clip((np.arange(d // 2) - low) / max(high - low, 1e-3), 0, 1)
    inv = (1 / (s * freqs)) * ramp + (1 / freqs) * (1 - ramp)
    angle = np.concatenate([np.arange(6.0)[:, None] * inv] * 2, -1)[None]
    t = 0.1 * np.log(s) + 1
    x1, x2 = x[..., :4], x[..., 4:]
    want = x * np.cos(angle) * t + np.concatenate([-x2, x1], -1) * np.sin(angle) * t
    y = jl.RotaryEmbedding(rope_type="yarn", scaling_factor=s,
                           original_max_position_embeddings=orig).apply((), x)
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_rotary_embedding_errors_name_the_layer():
    with pytest.raises(jl.ShapeError, match=r"RotaryEmbedding\(\).*even size"):
        jl.RotaryEmbedding().init(KEY, (None, 3, 5))
    with pytest.raises(jl.ShapeError, match=r"RotaryEmbedding\(\).*two different non-batch"):
        jl.RotaryEmbedding(sequence_axis=2, feature_axis=-1).init(KEY, (None, 3, 4))
    with pytest.raises(ValueError, match="RotaryEmbedding: rope_type must be one of"):
        jl.RotaryEmbedding(rope_type="ntk")


def test_position_layers_pass_the_time_step_mask():
    tokens = np.array([[3, 1, 0, 0], [2, 2, 2, 0]])
    model = jl.serial(jl.Embedding(5, 4, mask_zero=True), jl.residual(jl.PositionEmbedding(4)),
                      jl.SinePositionEncoding())
    _, params = model.init(KEY, (None, 4))
    _, mask = model.apply(params, tokens, return_mask=True)
    np.testing.assert_array_equal(mask, tokens != 0)
