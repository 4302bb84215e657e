"""Position layers, transformer blocks and cached decoding.

keras_hub does not install cleanly here (it requires tensorflow-text), so the position layers
are checked against keras_hub's formulas written in numpy, and the transformer blocks against
the same computation assembled from Keras 3's own MultiHeadAttention, LayerNormalization and
Dense layers (JAX backend) in keras_hub's call order, with the same weights copied in.
"""
import collections

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


# --------------------------------------------------------------------------- transformer blocks


def _keras_mha(p, heads):
    import keras
    key_dim = p["query"]["kernel"].shape[-1]
    layer = keras.layers.MultiHeadAttention(heads, key_dim)
    dim, kv_dim = p["query"]["kernel"].shape[0], p["key"]["kernel"].shape[0]
    layer.build((1, 1, dim), (1, 1, kv_dim))
    for part, dense in (("query", layer._query_dense), ("key", layer._key_dense),
                        ("value", layer._value_dense), ("attention_output", layer._output_dense)):
        dense.set_weights([np.asarray(p[part]["kernel"]), np.asarray(p[part]["bias"])])
    return layer


def _keras_norm(p, eps):
    import keras
    layer = keras.layers.LayerNormalization(epsilon=eps)
    layer.build((1, p["gamma"].shape[0]))
    layer.set_weights([np.asarray(p["gamma"]), np.asarray(p["beta"])])
    return layer


def _keras_dense(p, activation=None):
    import keras
    layer = keras.layers.Dense(p["kernel"].shape[1], activation=activation)
    layer.build((1, p["kernel"].shape[0]))
    layer.set_weights([np.asarray(p["kernel"]), np.asarray(p["bias"])])
    return layer


def _keras_block(params, x, *, heads, normalize_first, activation, eps, attention_name,
                 self_kwargs, encoder=None, cross_kwargs=None):
    """keras_hub's call order, on Keras 3's own layers with the same weights."""
    norm = {n: _keras_norm(p, eps) for n, p in params.items() if n.endswith("norm")}

    def branch(x, run, norm_name):
        y = run(norm[norm_name](x) if normalize_first else x)
        y = x + y
        return y if normalize_first else norm[norm_name](y)
    with jax.numpy_rank_promotion("allow"):
        attn = _keras_mha(params[attention_name], heads)
        x = branch(x, lambda y: attn(y, y, **self_kwargs), "self_attention_layer_norm")
        if encoder is not None:
            cross = _keras_mha(params["cross_attention"], heads)
            x = branch(x, lambda y: cross(y, encoder, **cross_kwargs),
                       "cross_attention_layer_norm")
        inner = _keras_dense(params["feedforward_intermediate_dense"], activation)
        outer = _keras_dense(params["feedforward_output_dense"])
        x = branch(x, lambda y: outer(inner(y)), "feedforward_layer_norm")
        return np.asarray(x)


def _perturbed(params):
    """Params with non-trivial norms and biases (init gives ones and zeros)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(5), len(leaves))
    return tree.unflatten([a + 0.2 * jax.random.normal(k, a.shape) for k, a in zip(keys, leaves)])


PAD = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_transformer_encoder_matches_keras_layers_in_keras_hubs_order(normalize_first):
    layer = jl.TransformerEncoder(16, 2, activation="gelu", layer_norm_epsilon=1e-4,
                                  normalize_first=normalize_first)
    shape, params = layer.init(KEY, (None, 5, 8))
    assert shape == (None, 5, 8)
    assert list(params) == ["self_attention_layer", "self_attention_layer_norm",
                            "feedforward_layer_norm", "feedforward_intermediate_dense",
                            "feedforward_output_dense"]
    assert params["self_attention_layer"]["query"]["kernel"].shape == (8, 2, 4)
    assert params["feedforward_intermediate_dense"]["kernel"].shape == (8, 16)
    params = _perturbed(params)
    common = dict(heads=2, normalize_first=normalize_first, activation="gelu", eps=1e-4,
                  attention_name="self_attention_layer")
    want = _keras_block(params, X, self_kwargs={}, **common)
    np.testing.assert_allclose(layer.apply(params, X), want, atol=2e-5)
    # Padding masks the attended keys: an explicit padding_mask, or the input's mask, which
    # also masks the queries (as Keras' MultiHeadAttention); real steps agree with Keras.
    keys_only = _keras_block(params, X, self_kwargs={"attention_mask": PAD[:, None, :]},
                             **common)
    np.testing.assert_allclose(layer.apply(params, X, padding_mask=PAD), keys_only, atol=2e-5)
    y = jax.jit(lambda p, x, m: layer.apply(p, x, mask=m))(params, X, PAD)
    np.testing.assert_allclose(np.asarray(y)[PAD], keys_only[PAD], atol=2e-5)
    y, scores = layer.apply(params, X, padding_mask=PAD, return_attention_scores=True)
    assert scores.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(np.asarray(scores)[0, :, :, 3:], 0, atol=1e-7)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_transformer_decoder_is_causal_and_cross_attends_like_keras(normalize_first):
    enc = RNG.randn(2, 4, 6).astype(np.float32)
    enc_pad = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    layer = jl.TransformerDecoder(16, 2, normalize_first=normalize_first)
    shape, params = layer.init(KEY, ((None, 5, 8), (None, 4, 6)))
    assert shape == (None, 5, 8)
    assert list(params) == ["self_attention", "self_attention_layer_norm", "cross_attention",
                            "cross_attention_layer_norm", "feedforward_layer_norm",
                            "feedforward_intermediate_dense", "feedforward_output_dense"]
    assert params["cross_attention"]["key"]["kernel"].shape == (6, 2, 4)
    params = _perturbed(params)
    want = _keras_block(params, X, heads=2, normalize_first=normalize_first,
                        activation="relu", eps=1e-5, attention_name="self_attention",
                        self_kwargs={"use_causal_mask": True}, encoder=enc,
                        cross_kwargs={"attention_mask": enc_pad[:, None, :]})
    y = layer.apply(params, (X, enc), encoder_padding_mask=enc_pad)
    np.testing.assert_allclose(y, want, atol=2e-5)
    # The time-step masks of both inputs, as a tuple, do the same.
    np.testing.assert_allclose(layer.apply(params, (X, enc), mask=(None, enc_pad)), want,
                               atol=2e-5)
    # Causal: changing the last step changes no earlier output.
    later = X.copy()
    later[:, -1] += 1.0
    np.testing.assert_allclose(layer.apply(params, (later, enc))[:, :-1],
                               layer.apply(params, (X, enc))[:, :-1], atol=1e-6)
    with pytest.raises(jl.ShapeError, match=r"TransformerDecoder\(16, 2.*unexpected "
                                            r"params\['cross_attention'\]"):
        layer.apply(params, X)


def test_transformer_decoder_self_attention_masks_match_keras():
    """The causal flag combined with a decoder padding mask, an explicit attention mask, or
    switched off: the numbers of Keras' MultiHeadAttention given the same masks."""
    layer = jl.TransformerDecoder(16, 2, normalize_first=True)
    _, params = layer.init(KEY, (None, 5, 8))
    params = _perturbed(params)
    common = dict(heads=2, normalize_first=True, activation="relu", eps=1e-5,
                  attention_name="self_attention")
    allowed = RNG.rand(2, 5, 5) > 0.3
    allowed[:, :, 0] = True                 # every query sees a key: no all-masked row
    cases = [({"decoder_padding_mask": PAD},
              {"use_causal_mask": True, "attention_mask": PAD[:, None, :]}),
             ({"decoder_attention_mask": allowed},
              {"use_causal_mask": True, "attention_mask": allowed}),
             ({"use_causal_mask": False}, {}),
             ({"use_causal_mask": False, "decoder_padding_mask": PAD},
              {"attention_mask": PAD[:, None, :]})]
    for ours, keras_kwargs in cases:
        want = _keras_block(params, X, self_kwargs=keras_kwargs, **common)
        np.testing.assert_allclose(layer.apply(params, X, **ours), want, atol=2e-5,
                                   err_msg=str(list(ours)))


def test_transformer_decoder_without_masks_builds_no_mask():
    """Causal self-attention with no other mask runs the causal flag of the attention core:
    the step combines no (T, T) mask (with a padding mask it must)."""
    layer = jl.TransformerDecoder(16, 2)
    _, params = layer.init(KEY, (None, 5, 8))

    def primitives(**kwargs):
        jaxpr = jax.make_jaxpr(lambda p, x: layer.apply(p, x, **kwargs))(params, X)
        return collections.Counter(e.primitive.name for e in jaxpr.jaxpr.eqns)
    plain, padded = primitives(), primitives(decoder_padding_mask=PAD)
    # the padded step ANDs its masks; the plain one leaves the causal mask to
    # jax.nn.dot_product_attention(is_causal=True)
    assert plain["and"] == padded["and"] - 1


def test_transformer_blocks_in_serial_thread_the_embedding_mask_and_train_with_dropout():
    tokens = np.array([[3, 1, 4, 0, 0], [2, 2, 2, 2, 1]])
    model = jl.serial(jl.Embedding(6, 8, mask_zero=True), jl.TransformerEncoder(8, 2),
                      jl.TransformerDecoder(8, 2, dropout=0.5), jl.GlobalAveragePooling1D())
    _, params = model.init(KEY, (None, 5))
    y = model.apply(params, tokens)
    assert y.shape == (2, 8) and np.all(np.isfinite(y))
    # The padding steps are excluded: changing their tokens changes nothing.
    other = np.where(tokens == 0, 0, tokens)
    np.testing.assert_allclose(model.apply(params, other), y, atol=1e-6)
    a = model.apply(params, tokens, rng=jax.random.key(1), train=True)
    b = model.apply(params, tokens, rng=jax.random.key(2), train=True)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="needs an rng key"):
        model.apply(params, tokens, train=True)


def test_transformer_errors_name_the_layer():
    with pytest.raises(ValueError, match="TransformerEncoder: num_heads must be a positive int"):
        jl.TransformerEncoder(8, 0)
    with pytest.raises(ValueError, match="TransformerDecoder: activation: "):
        jl.TransformerDecoder(8, 2, activation="nope")
    with pytest.raises(jl.ShapeError, match=r"TransformerEncoder\(8, 4\).*at least num_heads"):
        jl.TransformerEncoder(8, 4).init(KEY, (None, 3, 2))


# --------------------------------------------------------------------------- cached decoding


@pytest.mark.parametrize("cross", [False, True])
def test_cached_decoding_one_step_at_a_time_matches_the_full_causal_pass(cross):
    enc = RNG.randn(2, 4, 6).astype(np.float32)
    layer = jl.TransformerDecoder(16, 2, normalize_first=cross)
    shape = ((None, 5, 8), (None, 4, 6)) if cross else (None, 5, 8)
    _, params = layer.init(KEY, shape)
    params = _perturbed(params)
    full = layer.apply(params, (X, enc) if cross else X)

    @jax.jit
    def decode(params, cache, x):
        def step(cache, x_t):                      # x_t: (batch, dim), one step
            inp = x_t[:, None]
            y, cache = layer.apply(params, (inp, enc) if cross else inp, cache=cache)
            return cache, y[:, 0]
        cache, ys = jax.lax.scan(step, cache, jnp.swapaxes(x, 0, 1))
        return jnp.swapaxes(ys, 0, 1), cache

    cache = jl.decoder_cache(params, batch=2, max_length=7)
    assert cache["key"].shape == (2, 7, 2, 4) and int(cache["index"]) == 0
    y, cache = decode(params, cache, X)
    np.testing.assert_allclose(y, full, atol=2e-5)
    assert int(cache["index"]) == 5
    # A prompt of 3 steps in one call, then two single steps: the same numbers.
    cache = jl.decoder_cache(params, batch=2, max_length=5)
    head, cache = layer.apply(params, (X[:, :3], enc) if cross else X[:, :3], cache=cache)
    tail, cache = decode(params, cache, X[:, 3:])
    np.testing.assert_allclose(np.concatenate([head, tail], 1), full, atol=2e-5)
    # Past max_length nothing can be written: NaN, never a silent wrong answer.
    more, _ = layer.apply(params, (X[:, :1], enc) if cross else X[:, :1], cache=cache)
    assert np.all(np.isnan(more))


def test_generate_greedy_matches_recomputing_the_full_pass():
    vocab, width, length = 7, 8, 9
    embed, pos = jl.Embedding(vocab, width), jl.PositionEmbedding(length)
    block, head = jl.TransformerDecoder(16, 2, normalize_first=True), jl.Dense(vocab)
    keys = jax.random.split(KEY, 4)
    params = [embed.init(keys[0], (None, length))[1],
              pos.init(keys[1], (None, length, width))[1],
              _perturbed(block.init(keys[2], (None, length, width))[1]),
              head.init(keys[3], (None, length, width))[1]]

    def forward(params, tokens, cache=None, start=0):
        x = embed.apply(params[0], tokens)
        x = x + pos.apply(params[1], x, start_index=start)
        if cache is None:
            return head.apply(params[3], block.apply(params[2], x)), None
        x, cache = block.apply(params[2], x, cache=cache)
        return head.apply(params[3], x), cache

    def step(params, cache, tokens):
        return forward(params, tokens, cache, start=cache["index"])

    prompt = np.array([[1, 2, 3], [4, 0, 6]])
    cache = jl.decoder_cache(params[2], batch=2, max_length=length)
    run = jax.jit(jl.generate, static_argnums=(0, 4))
    tokens, cache = run(step, params, cache, prompt, 5)
    assert tokens.shape == (2, 5) and int(cache["index"]) == 8
    seq = prompt
    for _ in range(5):                      # the slow way: the full causal pass each time
        logits, _ = forward(params, seq)
        seq = np.concatenate([seq, np.argmax(logits[:, -1], -1)[:, None]], 1)
    np.testing.assert_array_equal(tokens, seq[:, 3:])
    sampled, _ = jl.generate(step, params, jl.decoder_cache(params[2], 2, length), prompt, 5,
                             rng=jax.random.key(3), temperature=1.0)
    assert sampled.shape == (2, 5) and np.all((sampled >= 0) & (sampled < vocab))
    with pytest.raises(ValueError, match="TransformerDecoder.*cached decoding.*no decoder "
                                         "masks"):
        block.apply(params[2], np.zeros((2, 1, width)), cache=cache,
                    decoder_padding_mask=np.ones((2, 1), bool))
