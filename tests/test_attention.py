"""Attention layers against Keras 3 (JAX backend) with the same weights: EinsumDense,
MultiHeadAttention, GroupedQueryAttention, Attention and AdditiveAttention, with every
call option, masks from Embedding(mask_zero=True), the fast path and its errors."""
import functools

import jax
import jax.test_util
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers.attention import dot_product_attention
from jaxlayers.layers.attention_shapes import attention_mask

KEY = jax.random.key(0)
B, T, S, D = 3, 4, 5, 6
# Ids with 0 = padding; row 2 of the query is all padding (a fully masked query row).
Q_IDS = np.array([[1, 2, 3, 0], [4, 5, 0, 0], [0, 0, 0, 0]])
V_IDS = np.array([[1, 2, 3, 4, 5], [6, 7, 0, 0, 0], [1, 0, 0, 0, 0]])


def normal(shape, seed=1):
    return np.asarray(jax.random.normal(jax.random.key(seed), shape), np.float32)


def randomized(params, seed=3):
    """`params` replaced by standard normal values (so biases are non-zero)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [jax.random.normal(k, l.shape) * 0.5 for l, k in zip(leaves, keys)])


def load(klayer, params):
    """Copy jaxlayers `params` into the built Keras layer by weight path
    (``mha/query/kernel`` <- params["query"]["kernel"])."""
    for v in klayer.weights:
        parts = v.path.split("/")
        p = params
        for part in parts[1:] if isinstance(params, dict) and parts[1] in params else parts[-1:]:
            p = p[part]
        v.assign(np.asarray(p))


def close(a, b, atol=2e-5):
    a, b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape, (u.shape, v.shape)
        np.testing.assert_allclose(np.asarray(u, np.float32), np.asarray(v, np.float32),
                                   atol=atol, rtol=1e-4)


def keras_run(klayer, params, *inputs, **kwargs):
    with jax.numpy_rank_promotion("allow"):
        out = klayer(*inputs, **kwargs)
        load(klayer, params)
        out = klayer(*inputs, **kwargs)
    return jax.tree_util.tree_map(np.asarray, tuple(out) if isinstance(out, list) else out)


# --------------------------------------------------------------------------- EinsumDense


@pytest.mark.parametrize("equation,out,bias,shape", [
    ("ab,bc->ac", 4, "c", (2, 5)),
    ("abc,cde->abde", (None, 2, 3), "de", (2, 3, 5)),
    ("...b,bc->...c", 4, "c", (2, 3, 5)),
    ("abc...,cd->abd...", (3, 4), "b", (2, 3, 5, 6)),
    ("abcd,cde->abe", (3, 4), None, (2, 3, 5, 6)),
])
def test_einsum_dense_matches_keras(equation, out, bias, shape):
    layer = jl.EinsumDense(equation, out, bias_axes=bias, activation="tanh")
    out_shape, params = layer.init(KEY, (None,) + shape[1:])
    params = randomized(params)
    x = normal(shape)
    kl = keras.layers.EinsumDense(equation, out, bias_axes=bias, activation="tanh")
    ref = keras_run(kl, params, x)
    assert [tuple(v.shape) for v in kl.weights] == [params[k].shape for k in sorted(params,
                                                                                   reverse=True)]
    close(layer.apply(params, x), ref)
    assert out_shape == (None,) + ref.shape[1:]


def test_einsum_dense_fans_and_errors():
    # glorot on kernel (dim=64, heads=8, key_dim=2): fan_in 64, fan_out 16 as Keras computes
    _, p = jl.EinsumDense("abc,cde->abde", (None, 8, 2)).init(KEY, (None, 3, 64))
    limit = np.sqrt(6.0 / (64 + 16))
    assert np.abs(p["kernel"]).max() <= limit and np.abs(p["kernel"]).max() > 0.9 * limit
    with pytest.raises(ValueError, match="invalid equation"):
        jl.EinsumDense("ab->b", 3)
    with pytest.raises(jl.ShapeError, match=r"EinsumDense.*expects an input of rank 2"):
        jl.EinsumDense("ab,bc->ac", 3).init(KEY, (None, 4, 5))
    with pytest.raises(jl.ShapeError, match="bias_axes 'x'"):
        jl.EinsumDense("ab,bc->ac", 3, bias_axes="x").init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match="expected 1 dims"):
        jl.EinsumDense("ab,bc->ac", (3, 4)).init(KEY, (None, 4))


# --------------------------------------------------------------------------- MultiHeadAttention


def mha_pair(heads=2, key_dim=3, shapes=((None, T, D), (None, S, D)), **kw):
    layer = jl.MultiHeadAttention(heads, key_dim, **kw)
    out_shape, params = layer.init(KEY, shapes if len(shapes) > 1 else shapes[0])
    kl = keras.layers.MultiHeadAttention(heads, key_dim, **{
        k: v for k, v in kw.items() if k not in ("use_causal_mask", "return_attention_scores")})
    return layer, out_shape, randomized(params), kl


MHA_OPTIONS = [
    {},
    # Keras' fast path fails for value_dim != key_dim (jax.nn.dot_product_attention wants
    # equal head sizes) and its fallback reshapes wrongly; dropout sends Keras to its
    # einsum path. jaxlayers takes its einsum path for unequal head sizes by itself.
    {"value_dim": 4, "output_shape": 5, "dropout": 0.1},
    {"use_bias": False, "output_shape": (2, 3)},
    {"dropout": 0.3},                  # inference: no dropout (Keras' explicit path)
    {"use_gate": True},
    {"sliding_window": 2},
]


@pytest.mark.parametrize("opts", MHA_OPTIONS, ids=str)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scores", [False, True])
def test_mha_cross_attention_matches_keras(opts, causal, scores):
    layer, out_shape, params, kl = mha_pair(**opts)
    q, v, k = normal((B, T, D), 1), normal((B, S, D), 2), normal((B, S, D), 3)
    am = normal((B, T, S), 4) > -0.5
    y = layer.apply(params, (q, v, k), attention_mask=am, use_causal_mask=causal,
                    return_attention_scores=scores)
    ref = keras_run(kl, params, q, v, k, attention_mask=am, use_causal_mask=causal,
                    return_attention_scores=scores)
    close(y, ref)
    assert out_shape == (None,) + tuple(jax.tree_util.tree_leaves(ref)[0].shape[1:])


def test_mha_weight_layout_matches_keras():
    layer, _, params, kl = mha_pair(value_dim=4, output_shape=5, use_gate=True, dropout=0.1)
    keras_run(kl, params, normal((B, T, D)), normal((B, S, D)))
    assert {v.path.split("/", 1)[1]: tuple(v.shape) for v in kl.weights} == {
        f"{n}/{w}": params[n][w].shape for n in params for w in params[n]}
    assert params["query"]["kernel"].shape == (D, 2, 3)
    assert params["attention_output"]["kernel"].shape == (2, 4, 5)


@pytest.mark.parametrize("axes", [None, (2,), (1, 2), -2])
def test_mha_attention_axes_match_keras(axes):
    shape = (None, 3, 4, D)
    layer, out_shape, params, kl = mha_pair(attention_axes=axes, shapes=(shape,))
    x = normal((2, 3, 4, D))
    for scores in (False, True):
        y = layer.apply(params, x, return_attention_scores=scores)
        ref = keras_run(kl, params, x, x, return_attention_scores=scores)
        close(y, ref)
    # scores shape from init, e.g. (batch, 3, heads, 4, 4) for axes (2,)
    sp, _ = jl.MultiHeadAttention(2, 3, attention_axes=axes, return_attention_scores=True
                                  ).init(KEY, shape)
    assert sp[1] == (None,) + ref[1].shape[1:]


@jax.numpy_rank_promotion("allow")      # Keras' functional call relies on it
def test_mha_embedding_masks_match_keras():
    """Self- and cross-attention after Embedding(mask_zero=True), in Keras' functional
    model and in jaxlayers (serial, jl.Model, and apply(mask=))."""
    emb = jl.Embedding(10, D, mask_zero=True)
    _, e = emb.init(KEY, (None, None))
    for causal in (False, True):
        layer, _, params, kl = mha_pair(use_causal_mask=causal)
        # self-attention in serial
        model = jl.serial(emb, layer)
        y = model.apply((e, params), Q_IDS)
        ki = keras.Input((None,), dtype="int32")
        ke = keras.layers.Embedding(10, D, mask_zero=True)
        kx = ke(ki)
        km = keras.Model(ki, kl(kx, kx, use_causal_mask=causal))
        ke.set_weights([np.asarray(e["embeddings"])])
        load(kl, params)
        ref = np.asarray(km(Q_IDS))
        close(y, ref)           # padded queries too: Keras' fast path averages all values
        close(layer.apply(params, emb.apply(e, Q_IDS), mask=Q_IDS != 0), y)
    # cross-attention through jl.Model: masks of both inputs
    layer, _, params, kl = mha_pair(dropout=0.1)       # explicit path: padded rows zeroed
    qi, vi = jl.Input((None,), dtype="int32"), jl.Input((None,), dtype="int32")
    e1, e2 = jl.named(jl.Embedding(10, D, mask_zero=True), "e1"), jl.named(
        jl.Embedding(10, D, mask_zero=True), "e2")
    model = jl.Model([qi, vi], jl.named(layer, "mha")([e1(qi), e2(vi)]))
    _, mp = model.init(KEY, ((None, T), (None, S)))
    mp = {**mp, "mha": params}
    y = model.apply(mp, (Q_IDS, V_IDS))
    kq, kv = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    k1, k2 = keras.layers.Embedding(10, D, mask_zero=True), keras.layers.Embedding(
        10, D, mask_zero=True)
    km = keras.Model([kq, kv], kl(k1(kq), k2(kv)))
    k1.set_weights([np.asarray(mp["e1"]["embeddings"])])
    k2.set_weights([np.asarray(mp["e2"]["embeddings"])])
    load(kl, params)
    close(y, np.asarray(km([Q_IDS, V_IDS])))


def test_attention_mask_combines_like_keras():
    qm, vm = Q_IDS != 0, V_IDS != 0
    am = normal((B, T, S)) > 0
    m = attention_mask(qm, vm, None, am, True, lengths=(T, S))
    expected = qm[:, :, None] & vm[:, None, :] & am & np.tril(np.ones((T, S), bool))
    np.testing.assert_array_equal(m, expected)
    assert attention_mask() is None
    assert attention_mask(use_causal_mask=True, lengths=(T, S)).shape == (1, T, S)
    w = attention_mask(lengths=(T, S), sliding_window=2)[0]
    np.testing.assert_array_equal(w, np.abs(np.arange(T)[:, None] - np.arange(S)) < 2)


def test_fast_and_explicit_paths_agree():
    q, k, v = normal((B, T, 2, 3), 1), normal((B, S, 2, 3), 2), normal((B, S, 2, 4), 3)
    mask = (normal((B, T, S), 4) > -0.5) | np.eye(T, S, dtype=bool)   # no empty rows
    for causal in (False, True):
        fast, none = dot_product_attention(q, k, v, mask, scale=0.5, is_causal=causal)
        slow, scores = dot_product_attention(q, k, v, mask, scale=0.5, is_causal=causal,
                                             return_scores=True)
        assert none is None and scores.shape == (B, 2, T, S)
        close(fast, slow, atol=1e-5)


def test_mha_dropout_rng_rule():
    layer, _, params, _ = mha_pair(dropout=0.5)
    q, v = normal((B, T, D)), normal((B, S, D))
    with pytest.raises(ValueError, match="rng"):
        layer.apply(params, (q, v), train=True)
    y0 = layer.apply(params, (q, v))
    y1 = layer.apply(params, (q, v), train=True, rng=jax.random.key(1))
    y2 = layer.apply(params, (q, v), train=True, rng=jax.random.key(2))
    assert not np.allclose(y1, y0) and not np.allclose(y1, y2)
    close(layer.apply(params, (q, v), train=True, rng=jax.random.key(1)), y1)
    # the dropped weights: some zero, the rest scaled by 1 / (1 - rate)
    _, scores = layer.apply(params, (q, v), return_attention_scores=True)
    assert np.allclose(np.asarray(scores).sum(-1), 1.0, atol=1e-5)


def test_mha_bfloat16_softmax_in_float32():
    layer, _, params, _ = mha_pair()
    q, v = normal((B, T, D)), normal((B, S, D))
    p16 = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), params)
    for scores in (False, True):
        y16 = layer.apply(p16, (q.astype(jnp.bfloat16), v.astype(jnp.bfloat16)),
                          return_attention_scores=scores)
        y32 = layer.apply(params, (q, v), return_attention_scores=scores)
        for a, b in zip(jax.tree_util.tree_leaves(y16), jax.tree_util.tree_leaves(y32)):
            assert a.dtype == jnp.bfloat16
            np.testing.assert_allclose(np.asarray(a, np.float32), b,
                                       atol=0.05 * float(np.abs(b).max()))


def test_mha_jit_vmap_grads():
    layer, _, params, _ = mha_pair(use_causal_mask=True)
    x, m = normal((B, T, D)), Q_IDS != 0
    f = jax.jit(lambda p, x, m: layer.apply(p, x, mask=m))
    close(f(params, x, m), layer.apply(params, x, mask=m))
    ys = jax.vmap(lambda x, m: layer.apply(params, x[None], mask=m[None])[0])(x, m)
    close(ys, layer.apply(params, x, mask=m), atol=1e-5)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
        jax.test_util.check_grads(lambda p, x: layer.apply(p, x, mask=m[:2]),
                                  (p64, x[:2].astype(np.float64)), order=1, modes=("rev",),
                                  atol=1e-4, rtol=1e-4, eps=1e-6)


def test_mha_errors():
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        jl.MultiHeadAttention(0, 4)
    with pytest.raises(ValueError, match="flash_attention=True"):
        jl.MultiHeadAttention(2, 4, dropout=0.1, flash_attention=True)
    layer = jl.MultiHeadAttention(2, 4)
    with pytest.raises(jl.ShapeError, match=r"MultiHeadAttention\(2, 4\).*value and key must"):
        layer.init(KEY, ((None, T, D), (None, S, D), (None, T, D)))
    with pytest.raises(jl.ShapeError, match="a tuple .query, value. or"):
        layer.init(KEY, ((None, T, D),) * 4)
    _, params = layer.init(KEY, (None, T, D))
    with pytest.raises(jl.ShapeError, match="mask= is a tuple"):
        layer.apply(params, (normal((B, T, D)), normal((B, S, D))), mask=Q_IDS != 0)
    with pytest.raises(jl.ShapeError, match="attention_axes"):
        jl.MultiHeadAttention(2, 4, attention_axes=(3,)).init(KEY, (None, T, D))


# --------------------------------------------------------------------------- GQA


@pytest.mark.parametrize("opts", [{}, {"use_bias": False, "use_gate": True},
                                  {"dropout": 0.2}, {"sliding_window": 3}], ids=str)
@pytest.mark.parametrize("causal,scores", [(False, False), (True, False), (True, True)])
def test_gqa_matches_keras(opts, causal, scores):
    layer = jl.GroupedQueryAttention(3, 4, 2, **opts)
    assert jl.GroupQueryAttention is jl.GroupedQueryAttention
    _, params = layer.init(KEY, ((None, T, D), (None, S, D)))
    params = randomized(params)
    assert params["key"]["kernel"].shape == (D, 2, 3)
    assert params["attention_output"]["kernel"].shape == (4, 3, D)
    q, v = normal((B, T, D), 1), normal((B, S, D), 2)
    am = (normal((B, T, S), 4) > -0.5) | np.eye(T, S, dtype=bool)
    kl = keras.layers.GroupQueryAttention(3, 4, 2, **opts)
    y = layer.apply(params, (q, v), attention_mask=am, use_causal_mask=causal,
                    return_attention_scores=scores)
    ref = keras_run(kl, params, q, v, attention_mask=am, use_causal_mask=causal,
                    return_attention_scores=scores)
    close(y, ref)


# --------------------------------------------------------------------------- Attention


@pytest.mark.parametrize("kind,opts", [
    ("Attention", {}), ("Attention", {"use_scale": True}),
    ("Attention", {"score_mode": "concat", "use_scale": True}),
    ("Attention", {"score_mode": "concat"}), ("Attention", {"dropout": 0.2}),
    ("AdditiveAttention", {}), ("AdditiveAttention", {"use_scale": False}),
], ids=str)
@pytest.mark.parametrize("causal,scores,key", [(False, False, False), (True, True, True)])
@jax.numpy_rank_promotion("allow")      # Keras' functional call relies on it
def test_score_attention_matches_keras(kind, opts, causal, scores, key):
    """With masks from Embedding(mask_zero=True) on query and value, as Keras' functional
    model hands them over; params perturbed so scale and concat weights count."""
    layer = getattr(jl, kind)(**opts)
    _, params = layer.init(KEY, ((None, T, D), (None, S, D)) + (((None, S, D),) if key else ()))
    params = randomized(params)
    emb = jl.Embedding(10, D, mask_zero=True)
    _, e = emb.init(KEY, (None, None))
    xs = (emb.apply(e, Q_IDS), emb.apply(e, V_IDS)) + ((normal((B, S, D)),) if key else ())
    y = layer.apply(params, xs, mask=(Q_IDS != 0, V_IDS != 0), use_causal_mask=causal,
                    return_attention_scores=scores)
    kq, kv = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    ke = keras.layers.Embedding(10, D, mask_zero=True)
    kk = keras.Input((S, D))
    kl = getattr(keras.layers, kind)(**opts)
    out = kl([ke(kq), ke(kv)] + ([kk] if key else []), use_causal_mask=causal,
             return_attention_scores=scores)
    km = keras.Model([kq, kv] + ([kk] if key else []), out)
    ke.set_weights([np.asarray(e["embeddings"])])
    load(kl, params)
    ref = km([Q_IDS, V_IDS] + ([xs[2]] if key else []))
    ref = jax.tree_util.tree_map(np.asarray, tuple(ref) if isinstance(ref, list) else ref)
    close(y, ref)


def test_score_attention_rules():
    layer = jl.Attention(dropout=0.5)
    _, params = layer.init(KEY, ((None, T, D), (None, S, D)))
    q, v = normal((B, T, D)), normal((B, S, D))
    with pytest.raises(ValueError, match="rng"):
        layer.apply(params, (q, v), train=True)
    y1 = layer.apply(params, (q, v), train=True, rng=jax.random.key(1))
    assert not np.allclose(y1, layer.apply(params, (q, v)))
    with pytest.raises(jl.ShapeError, match=r"Attention\(\).*a tuple \(query, value\)"):
        layer.init(KEY, (None, T, D))
    with pytest.raises(jl.ShapeError, match="same last dim"):
        layer.init(KEY, ((None, T, D), (None, S, D), (None, S, D + 1)))
    with pytest.raises(ValueError, match="score_mode"):
        jl.Attention(score_mode="general")
    # the query mask passes on, as Keras' compute_mask
    mask_fn = jl.Attention().masking.out
    np.testing.assert_array_equal(mask_fn((q, v), (Q_IDS != 0, V_IDS != 0)), Q_IDS != 0)


@jax.numpy_rank_promotion("allow")      # Keras' functional call relies on it
def test_from_keras_attention_model():
    """A functional Keras model with every attention layer, call arguments
    (use_causal_mask) and Embedding masks imports and matches, padded steps included."""
    ids, v = keras.Input((None,), dtype="int32"), keras.Input((S, D))
    x = keras.layers.Embedding(10, D, mask_zero=True)(ids)
    h = keras.layers.MultiHeadAttention(2, 3, name="mha")(x, x, use_causal_mask=True)
    h = keras.layers.GroupQueryAttention(3, 2, 1, name="gqa")(h, v)
    h = keras.layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d")(h)
    h = keras.layers.Attention(use_scale=True)([h, keras.layers.Dense(4)(v)],
                                               use_causal_mask=True)
    h = keras.layers.AdditiveAttention()([h, keras.layers.Dense(4)(v)])
    km = keras.Model([ids, v], h)
    rng = np.random.default_rng(0)
    for w in km.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * 0.5)
    model, params, _ = jl.from_keras(km)
    y = np.asarray(model.apply(params, (Q_IDS[:2], normal((2, S, D)))))
    ref = np.asarray(km([Q_IDS[:2], normal((2, S, D))]))
    close(y, ref, atol=1e-5)
    assert params["mha"]["query"]["kernel"].shape == (D, 2, 3)


# --------------------------------------------------------------------------- constructor arguments


@pytest.mark.parametrize("make, match", [
    (lambda: jl.MultiHeadAttention(2.5, 4),
     r"MultiHeadAttention: num_heads must be a positive int, received 2\.5"),
    (lambda: jl.MultiHeadAttention(2, "4"), r"MultiHeadAttention: key_dim must be a positive int"),
    (lambda: jl.MultiHeadAttention(2, 4, value_dim=True), r"value_dim must be a positive int"),
    (lambda: jl.MultiHeadAttention(2, 4, dropout="0.1"), r"MultiHeadAttention: dropout must be "
                                                         r"a number in \[0, 1\)"),
    (lambda: jl.MultiHeadAttention(2, 4, use_bias="no"), r"use_bias must be True or False"),
    (lambda: jl.MultiHeadAttention(2, 4, flash_attention=1), r"flash_attention must be True"),
    (lambda: jl.MultiHeadAttention(2, 4, seed="7"), r"MultiHeadAttention: seed must be a "
                                                    r"non-negative int"),
    (lambda: jl.MultiHeadAttention(2, 4, output_shape="6"), r"output_shape must be an int"),
    (lambda: jl.MultiHeadAttention(2, 4, attention_axes=1.0), r"attention_axes must be an int"),
    (lambda: jl.GroupedQueryAttention(2, 4, 2.0),
     r"GroupedQueryAttention: num_key_value_heads must be a positive int, received 2\.0"),
    (lambda: jl.GroupedQueryAttention(2, 4, 2, use_gate=None), r"use_gate must be True or False"),
    (lambda: jl.EinsumDense(3, 4), r"EinsumDense: equation must be a string"),
    (lambda: jl.EinsumDense("ab,bc->ac", "4"), r"EinsumDense: output_shape must be a positive "
                                               r"int or a tuple"),
    (lambda: jl.EinsumDense("ab,bc->ac", 4, bias_axes=1), r"EinsumDense: bias_axes must be"),
    (lambda: jl.Attention(use_scale=1), r"Attention: use_scale must be True or False"),
    (lambda: jl.Attention(dropout=None), r"Attention: dropout must be a number"),
    (lambda: jl.AdditiveAttention(use_causal_mask="yes"),
     r"AdditiveAttention: use_causal_mask must be True or False"),
    (lambda: jl.AdditiveAttention(seed=1.5), r"AdditiveAttention: seed must be a non-negative"),
])
def test_argument_of_the_wrong_type_is_a_clear_type_error(make, match):
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize("make, match", [
    (lambda: jl.MultiHeadAttention(2, 4, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (lambda: jl.MultiHeadAttention(2, 4, sliding_window=0), r"sliding_window must be a "
                                                            r"positive int, received 0"),
    (lambda: jl.MultiHeadAttention(2, 4, output_shape=(0,)), r"output_shape must hold positive"),
    (lambda: jl.MultiHeadAttention(2, 4, kernel_initializer="nope"),
     r"MultiHeadAttention: kernel_initializer: .*nope"),
    (lambda: jl.GroupedQueryAttention(2, 4, 2, bias_initializer="nope"),
     r"GroupedQueryAttention: bias_initializer: .*nope"),
    (lambda: jl.GroupedQueryAttention(2, 4, 3), r"multiple of num_key_value_heads"),
    (lambda: jl.Attention(score_mode="general"), r"Attention: score_mode must be one of 'dot', "
                                                 r"'concat', received 'general'"),
    (lambda: jl.EinsumDense("ab,bc->ac", 4, lora_rank=4),
     r"EinsumDense: lora_rank=4 is not supported \(LoRA .*jl.freeze"),
    (lambda: jl.EinsumDense("ab,bc->ac", 4, lora_alpha=8.0),
     r"EinsumDense: lora_alpha=8\.0 is not supported \(LoRA"),
    (lambda: jl.EinsumDense("ab,bc->ac", 4, gptq_unpacked_column_size=8),
     r"EinsumDense: gptq_unpacked_column_size=8 is not supported \(weights are not quantized"),
    (lambda: jl.EinsumDense("ab,bc->ac", 4, quantization_config={"mode": "int8"}),
     r"EinsumDense: quantization_config=.* is not supported"),
])
def test_out_of_range_arguments_are_refused_with_the_reason(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_keras_defaults_of_the_added_arguments_change_nothing():
    plain, keras_style = jl.EinsumDense("ab,bc->ac", 3), jl.EinsumDense(
        "ab,bc->ac", 3, lora_rank=None, lora_alpha=None, gptq_unpacked_column_size=None,
        quantization_config=None, name="proj", dtype="float32")
    _, params = plain.init(KEY, (None, D))
    x = normal((B, D))
    np.testing.assert_array_equal(keras_style.apply(params, x), plain.apply(params, x))
    assert keras_style.label == "proj"
    with pytest.raises(ValueError, match=r"MultiHeadAttention: trainable=False"):
        jl.MultiHeadAttention(2, 4, trainable=False)


@jax.numpy_rank_promotion("allow")
def test_attention_activity_regularizer_as_keras():
    """Keras' base-layer activity_regularizer on Attention: the penalty of every output
    (the attention output and, when returned, the scores), divided by the batch."""
    q, v = normal((B, T, D)), normal((B, S, D), seed=2)
    for scores in (False, True):
        layer = jl.Attention(return_attention_scores=scores,
                             activity_regularizer=jl.regularizers.L2(0.1))
        _, params, state = layer.init(KEY, ((None, T, D), (None, S, D)))
        _, state = layer.apply(params, state, (q, v), train=True)
        klayer = keras.layers.Attention(activity_regularizer=keras.regularizers.L2(0.1))
        klayer([q, v], return_attention_scores=scores)
        np.testing.assert_allclose(jl.activity_loss(state), sum(float(l) for l in klayer.losses),
                                   rtol=1e-5)


def test_cpu_rule_takes_the_einsum_path_for_long_keys_with_the_same_numbers():
    """On CPU, from EINSUM_FROM_KEYS_ON_CPU keys on, a differentiated call takes the einsum
    path (measured faster there); a call that is not differentiated keeps
    jax.nn.dot_product_attention up to EINSUM_FROM_KEYS_ON_CPU_INFERENCE keys. The choice
    follows differentiation, not the train flag (a training step without train=True gets
    the training path); values and gradients are the same on both."""
    from jaxlayers.layers import attention as A
    T = A.EINSUM_FROM_KEYS_ON_CPU
    assert T < A.EINSUM_FROM_KEYS_ON_CPU_INFERENCE
    on_cpu = jax.default_backend() == "cpu"
    q, k, v = jax.random.normal(jax.random.key(0), (3, 1, T, 2, 4))
    assert A._einsum_is_faster(k, None) == on_cpu
    assert not A._einsum_is_faster(k[:, :T // 4], None) and not A._einsum_is_faster(k, "xla")
    long = jnp.zeros((1, A.EINSUM_FROM_KEYS_ON_CPU_INFERENCE, 2, 4))
    assert not A._einsum_is_faster(k, None, differentiated=False)
    assert A._einsum_is_faster(long, None, differentiated=False) == on_cpu

    def ruled(q, k, v, train):
        return A.dot_product_attention(q, k, v, scale=0.5, is_causal=True, train=train)[0]

    def fast(q, k, v):
        return A.dot_product_attention(q, k, v, scale=0.5, is_causal=True,
                                       implementation="xla")[0]

    def einsum(q, k, v):
        return A._einsum_attention(q, k, v, None, scale=0.5, is_causal=True)[0]

    def loss(f):
        return lambda q, k, v: jnp.sum(jnp.sin(f(q, k, v)))

    einsum_masks = "-1.000000e+09"              # the einsum path's masked score (Keras')
    for train in (False, True):
        f = functools.partial(ruled, train=train)
        np.testing.assert_allclose(jax.jit(f)(q, k, v), fast(q, k, v), rtol=1e-5, atol=1e-5)
        grads = jax.jit(jax.grad(loss(f), argnums=(0, 1, 2)))(q, k, v)
        for got, want in zip(grads, jax.grad(loss(einsum), argnums=(0, 1, 2))(q, k, v)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        assert einsum_masks not in jax.jit(f).lower(q, k, v).as_text()
        assert (einsum_masks in jax.jit(jax.grad(loss(f))).lower(q, k, v).as_text()) == on_cpu
    # between the thresholds (a custom_jvp): forward mode, vmap and bfloat16 work through it
    f = functools.partial(ruled, train=False)
    tangent = jax.jvp(f, (q, k, v), (q, k, v))[1]
    np.testing.assert_allclose(tangent, jax.jvp(einsum, (q, k, v), (q, k, v))[1], rtol=1e-4,
                               atol=1e-4)
    stacked = jnp.stack([q, k])
    grads = jax.vmap(jax.grad(loss(f)), (0, None, None))(stacked, k, v)
    np.testing.assert_allclose(grads[1], jax.grad(loss(einsum))(k, k, v), rtol=1e-4, atol=1e-5)
    half = [a.astype(jnp.bfloat16) for a in (q, k, v)]
    assert jax.grad(loss(f))(*half).dtype == jnp.bfloat16 and f(*half).dtype == jnp.bfloat16


@pytest.mark.parametrize("family", ["mha", "gqa"])
@pytest.mark.parametrize("opts, scores, zeroed", [
    ({}, False, False),                         # Keras' ops.dot_product_attention: the mean
    ({"use_causal_mask": True}, False, False),
    ({"dropout": 0.2}, False, True),            # Keras' einsum path (at inference): zeros
    ({"dropout": 0.2, "use_causal_mask": True}, False, True),
    ({}, True, True),
])
@jax.numpy_rank_promotion("allow")      # Keras' functional call relies on it
def test_padded_query_gets_what_keras_gives_it(family, opts, scores, zeroed):
    """A query step that sees no key (all padding, from Embedding(mask_zero=True)) gets what
    Keras' own path gives it: the mean of all values where Keras calls
    ops.dot_product_attention, zeros where it runs its einsum path (dropout in the config,
    returned scores). The whole output is compared, padded steps included."""
    call = {k: v for k, v in opts.items() if k == "use_causal_mask"}
    config = {k: v for k, v in opts.items() if k != "use_causal_mask"}
    if family == "mha":
        layer, kl = jl.MultiHeadAttention(2, 3, **config), keras.layers.MultiHeadAttention(
            2, 3, **config)
    else:
        layer, kl = (jl.GroupedQueryAttention(3, 4, 2, **config),
                     keras.layers.GroupQueryAttention(3, 4, 2, **config))
    _, params = layer.init(KEY, ((None, T, D), (None, S, D)))
    params = randomized(params)
    table = normal((10, D), seed=4)
    kq, kv = keras.Input((T,), dtype="int32"), keras.Input((S,), dtype="int32")
    embed = keras.layers.Embedding(10, D, mask_zero=True)
    km = keras.Model([kq, kv], kl(embed(kq), embed(kv), return_attention_scores=scores,
                                  **call))
    embed.set_weights([table])
    load(kl, params)
    y = layer.apply(params, (table[Q_IDS], table[V_IDS]), mask=(Q_IDS != 0, V_IDS != 0),
                    return_attention_scores=scores, **call)
    close(y, km([Q_IDS, V_IDS]))
    out = np.asarray(y[0] if scores else y)
    padded = out[2] - np.asarray(params["attention_output"]["bias"])
    assert np.allclose(padded, 0.0, atol=1e-6) == zeroed
