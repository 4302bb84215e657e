"""The one mask mechanism against Keras 3: masks through residual, parallel, branch and the
merges, and the layers whose mask rule Keras fixes (Lambda, Multiply, Softmax)."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.core import DROP, PASS, THREAD, MaskRule, call_child

KEY = jax.random.key(0)
V, F, U = 10, 3, 4
IDS = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 0, 0, 0, 0], [4, 4, 4, 4, 4, 9], [2, 0, 0, 0, 0, 0]])
IDS2 = np.array([[1, 2, 3, 4, 0, 0], [0, 0, 0, 0, 0, 0], [4, 4, 0, 4, 4, 9], [2, 2, 0, 0, 0, 0]])


def perturbed(params, seed=3, scale=0.3):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def weights(p):
    """Keras' weight list for a jaxlayers params dict (Keras' order)."""
    order = ("embeddings", "kernel", "recurrent_kernel", "bias")
    return [np.asarray(p[k]) for k in order if k in p]


def keras_run(build, layer_params, *xs):
    """Build a Keras functional model with `build()`, copy each named layer's weights in and
    run it (under the implicit rank promotion Keras relies on)."""
    with jax.numpy_rank_promotion("allow"):
        model = build()
        for name, p in layer_params.items():
            model.get_layer(name).set_weights(weights(p))
        return np.asarray(model(list(xs) if len(xs) > 1 else xs[0]))


def close(a, b, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=1e-5)


def test_mask_rules_are_declared_once():
    assert jl.Dense(2).masking == PASS and jl.Conv1D(2, 3).masking == DROP
    assert jl.serial(jl.Dense(2)).masking == THREAD
    assert jl.residual(jl.Dense(2)).masking == THREAD
    assert jl.LSTM(2).masking.takes and callable(jl.LSTM(2).masking.out)
    with pytest.raises(ValueError, match="MaskRule.out"):
        MaskRule(out="keep")


def test_residual_block_between_embedding_and_lstm_matches_keras():
    model = jl.serial(jl.Embedding(V, F, mask_zero=True), jl.residual(jl.Dense(F)), jl.LSTM(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, IDS)
    def build():
        inp = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(V, F, mask_zero=True, name="emb")(inp)
        x = keras.layers.Add()([x, keras.layers.Dense(F, name="dense")(x)])
        return keras.Model(inp, keras.layers.LSTM(U, name="lstm")(x))
    close(y, keras_run(build, {"emb": params[0], "dense": params[1][0], "lstm": params[2]}, IDS))
    # the padded steps really are skipped: without the mask the numbers differ
    unmasked = jl.serial(jl.Embedding(V, F), jl.residual(jl.Dense(F)), jl.LSTM(U))
    assert not np.allclose(y, unmasked.apply(params, IDS), atol=1e-3)


def test_residual_whose_body_drops_the_mask_drops_it_like_keras_add():
    model = jl.serial(jl.Embedding(V, F, mask_zero=True),
                      jl.residual(jl.Conv1D(F, 3, padding="same")), jl.LSTM(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = model.apply(params, IDS)
    def build():
        inp = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(V, F, mask_zero=True, name="emb")(inp)
        x = keras.layers.Add()([x, keras.layers.Conv1D(F, 3, padding="same", name="conv")(x)])
        return keras.Model(inp, keras.layers.LSTM(U, name="lstm")(x))
    close(y, keras_run(build, {"emb": params[0], "conv": params[1][0], "lstm": params[2]}, IDS))


@pytest.mark.parametrize("merge", ["Add", "Multiply", "Maximum"])
def test_branch_merged_then_lstm_matches_keras(merge):
    model = jl.serial(jl.Embedding(V, F, mask_zero=True),
                      jl.branch(jl.Dense(F), jl.Dense(F, activation="tanh")),
                      getattr(jl, merge)(), jl.LSTM(U, return_sequences=True))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y, mask = model.apply(params, IDS, return_mask=True)
    np.testing.assert_array_equal(mask, IDS != 0)
    def build():
        inp = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(V, F, mask_zero=True, name="emb")(inp)
        a = keras.layers.Dense(F, name="d0")(x)
        b = keras.layers.Dense(F, activation="tanh", name="d1")(x)
        m = getattr(keras.layers, merge)()([a, b])
        return keras.Model(inp, keras.layers.LSTM(U, return_sequences=True, name="lstm")(m))
    branch = params[1][1]
    ref = keras_run(build, {"emb": params[0], "d0": branch[0], "d1": branch[1], "lstm": params[3]},
                    IDS)
    close(y, ref)


def test_parallel_inputs_masks_merge_like_keras():
    model = jl.serial(jl.parallel(jl.Embedding(V, F, mask_zero=True),
                                  jl.Embedding(V, F, mask_zero=True)),
                      jl.Add(), jl.LSTM(U))
    _, params = model.init(KEY, ((None, None), (None, None)))
    params = perturbed(params)
    y = model.apply(params, (IDS, IDS2))
    def build():
        i1, i2 = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
        e1 = keras.layers.Embedding(V, F, mask_zero=True, name="e1")(i1)
        e2 = keras.layers.Embedding(V, F, mask_zero=True, name="e2")(i2)
        return keras.Model([i1, i2], keras.layers.LSTM(U, name="lstm")(keras.layers.Add()([e1, e2])))
    ref = keras_run(build, {"e1": params[0][0], "e2": params[0][1], "lstm": params[2]}, IDS, IDS2)
    close(y, ref)
    # parallel hands each child its own mask and returns the tuple of masks
    _, masks = params and model.children[0].apply(params[0], (IDS, IDS2), return_mask=True)
    np.testing.assert_array_equal(masks[0], IDS != 0)
    np.testing.assert_array_equal(masks[1], IDS2 != 0)


def test_lambda_drops_the_mask_like_keras():
    model = jl.serial(jl.Embedding(V, F, mask_zero=True), jl.Lambda(lambda x: 2.0 * x),
                      jl.SimpleRNN(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = model.apply(params, IDS)
    def build():
        inp = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(V, F, mask_zero=True, name="emb")(inp)
        x = keras.layers.Lambda(lambda t: 2.0 * t)(x)
        return keras.Model(inp, keras.layers.SimpleRNN(U, name="rnn")(x))
    close(y, keras_run(build, {"emb": params[0], "rnn": params[2]}, IDS))
    # a plain function in a chain is Keras' Activation: it passes the mask
    _, mask = jl.serial(jl.Embedding(V, F, mask_zero=True), jnp.tanh).apply(
        params[:1] + ((),), IDS, return_mask=True)
    np.testing.assert_array_equal(mask, IDS != 0)


def test_multiply_zeroes_masked_steps_like_keras():
    x = np.random.default_rng(0).standard_normal((4, 6, F)).astype(np.float32)
    z = np.random.default_rng(1).standard_normal((4, 6, F)).astype(np.float32)
    m1, m2 = IDS != 0, IDS2 != 0
    y = jl.Multiply().apply((), (x, z), mask=(m1, m2))
    xm, zm = x * m1[..., None], z * m2[..., None]   # zeros where masked, so Masking agrees
    with jax.numpy_rank_promotion("allow"):
        inp1, inp2 = keras.Input((6, F)), keras.Input((6, F))
        a = keras.layers.Masking(0.0)(inp1)
        b = keras.layers.Masking(0.0)(inp2)
        km = keras.Model([inp1, inp2], keras.layers.Multiply()([a, b]))
        ref = np.asarray(km([xm, zm]))
    close(jl.Multiply().apply((), (xm, zm), mask=(m1, m2)), ref)
    assert np.all(y[~(m1 | m2)] == 0)
    # one input without a mask: masked steps of the other count as 1, nothing is zeroed
    close(jl.Multiply().apply((), (x, z), mask=(m1, None)), np.where(m1[..., None], x, 1) * z)


def test_softmax_masks_scores_like_keras():
    x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    mask = np.random.default_rng(1).random((2, 1, 5)) > 0.4
    y = jax.jit(lambda x, m: jl.Softmax().apply((), x, mask=m))(x, mask)
    with jax.numpy_rank_promotion("allow"):
        ref = np.asarray(keras.layers.Softmax()(x, mask=mask))
    close(y, ref)
    assert np.all(np.asarray(y)[~np.broadcast_to(mask, x.shape)] < 1e-6)
    with pytest.raises(jl.ShapeError, match=r"Softmax.*must broadcast"):
        jl.Softmax().apply((), x, mask=np.ones((2, 4), bool))


def test_call_child_is_the_one_routine():
    """A stateless child with a function rule: (y, mask_after, state) with state kept."""
    emb = jl.Embedding(V, F, mask_zero=True)
    _, p = emb.init(KEY, (None, None))
    y, mask, state = call_child(emb, p, (), IDS, None, False, "here")
    assert y.shape == (4, 6, F) and state == ()
    np.testing.assert_array_equal(mask, IDS != 0)
    dense = jl.Dense(2)
    _, dp = dense.init(KEY, (None, 6, F))
    assert call_child(dense, dp, (), y, None, False, "d", mask)[1] is mask
    conv = jl.Conv1D(2, 3)
    _, cp = conv.init(KEY, (None, 6, F))
    assert call_child(conv, cp, (), y, None, False, "c", mask)[1] is None
