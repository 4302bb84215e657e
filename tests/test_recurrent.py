"""Recurrent layers against Keras 3 (JAX backend) with the same weights, plus masks,
dropout, variable lengths, user cells and error messages."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)
B, T, F, U = 4, 6, 3, 5
KINDS = {"SimpleRNN": (jl.SimpleRNN, keras.layers.SimpleRNN),
         "LSTM": (jl.LSTM, keras.layers.LSTM),
         "GRU": (jl.GRU, keras.layers.GRU)}
# Ragged lengths 6, 4, 1, 0 (an all-padding row), plus one row with holes in the middle.
LENGTHS = np.array([6, 4, 1, 0])
MASK = np.arange(T)[None, :] < LENGTHS[:, None]
HOLES = np.array([[True, False, True, True, False, True]])


def data(shape=(B, T, F), seed=1):
    return np.array(jax.random.normal(jax.random.key(seed), shape), np.float32)


def perturbed(params, seed=3, scale=0.3):
    """`params` plus noise, so zero-initialised biases are exercised too."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def keras_weights(p):
    return [np.asarray(p[k]) for k in ("kernel", "recurrent_kernel", "bias") if k in p]


def keras_call(layer, x, weights, **kwargs):
    with jax.numpy_rank_promotion("allow"):
        layer.build(x.shape)
        layer.set_weights(weights)
        out = layer(x, **kwargs)
    return jax.tree_util.tree_map(np.asarray, tuple(out) if isinstance(out, list) else out)


def close(a, b, atol=1e-5):
    a, b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape, (u.shape, v.shape)
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=atol, rtol=1e-5)


def build(kind, x_shape=(None, None, F), **kwargs):
    layer = KINDS[kind][0](U, **kwargs)
    out_shape, params = layer.init(KEY, x_shape)
    return layer, out_shape, perturbed(params)


OPTIONS = [
    {},
    {"return_sequences": True, "go_backwards": True},
    {"return_state": True, "return_sequences": True},
    {"return_state": True, "go_backwards": True, "use_bias": False, "activation": "relu"},
    {"unroll": True, "return_sequences": True},
]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "default")
def test_matches_keras(kind, opts):
    layer, out_shape, params = build(kind, **opts)
    x = data()
    y = layer.apply(params, x)
    ref = keras_call(KINDS[kind][1](U, **opts), x, keras_weights(params))
    close(y, ref)
    leaves = jax.tree_util.tree_leaves(out_shape, is_leaf=lambda s: isinstance(s, jl.Shape))
    assert [tuple(d or 0 for d in s[1:]) for s in leaves][0][-1] == U


@pytest.mark.parametrize("opts", [{"reset_after": False}, {"reset_after": False,
                                                                "return_sequences": True,
                                                                "go_backwards": True}])
def test_gru_variants_match_keras(opts):
    layer, _, params = build("GRU", **opts)
    assert params["bias"].shape == ((2, 3 * U) if opts.get("reset_after", True) else (3 * U,))
    x = data()
    close(layer.apply(params, x), keras_call(keras.layers.GRU(U, **opts), x,
                                             keras_weights(params)))


def test_lstm_options_match_keras():
    opts = dict(recurrent_activation="hard_sigmoid", activation="softsign",
                unit_forget_bias=False, return_sequences=True)
    layer, _, params = build("LSTM", **opts)
    x = data()
    close(layer.apply(params, x), keras_call(keras.layers.LSTM(U, **opts), x,
                                             keras_weights(params)))


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_weight_names_and_layout_match_keras(kind):
    layer, _, params = build(kind, (None, T, F))
    k = KINDS[kind][1](U)
    with jax.numpy_rank_promotion("allow"):
        k.build((None, T, F))
    names = [w.path.split("/")[-1] for w in k.weights]
    assert names == [n for n in ("kernel", "recurrent_kernel", "bias") if n in params]
    assert [tuple(w.shape) for w in k.weights] == [params[n].shape for n in names]


def test_lstm_unit_forget_bias_and_default_initializers():
    _, params = jl.LSTM(U).init(KEY, (None, T, F))
    np.testing.assert_array_equal(params["bias"], np.r_[np.zeros(U), np.ones(U), np.zeros(2 * U)])
    r = np.asarray(params["recurrent_kernel"])  # orthogonal: (U, 4U) with orthonormal rows
    np.testing.assert_allclose(r @ r.T, np.eye(U), atol=1e-5)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_initial_state_matches_keras(kind):
    layer, _, params = build(kind, return_sequences=True, return_state=True)
    x = data()
    n = 2 if kind == "LSTM" else 1
    states = [data((B, U), seed=10 + i) for i in range(n)]
    y = layer.apply(params, x, initial_state=tuple(states))
    ref = keras_call(KINDS[kind][1](U, return_sequences=True, return_state=True), x,
                     keras_weights(params), initial_state=states)
    close(y, ref)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("opts", [{"return_sequences": True, "return_state": True},
                                  {"go_backwards": True, "return_sequences": True},
                                  {"go_backwards": True, "return_state": True}],
                         ids=lambda o: "-".join(o) or "last")
def test_ragged_mask_matches_keras(kind, opts):
    layer, _, params = build(kind, **opts)
    x = data()
    y = layer.apply(params, x, mask=MASK)
    ref = keras_call(KINDS[kind][1](U, **opts), x, keras_weights(params), mask=MASK)
    close(y, ref)


def test_mask_with_holes_matches_keras():
    layer, _, params = build("LSTM", return_sequences=True, return_state=True)
    x = data((1, T, F))
    close(layer.apply(params, x, mask=HOLES),
          keras_call(keras.layers.LSTM(U, return_sequences=True, return_state=True), x,
                     keras_weights(params), mask=HOLES))


def test_masked_steps_carry_state_and_repeat_output():
    layer, _, params = build("GRU", return_sequences=True, return_state=True)
    x = data()
    seq, h = layer.apply(params, x, mask=MASK)
    # Row 1 has 4 real steps: outputs 4 and 5 repeat output 3, the final state is output 3.
    np.testing.assert_array_equal(seq[1, 4], seq[1, 3])
    np.testing.assert_array_equal(seq[1, 5], seq[1, 3])
    np.testing.assert_array_equal(h[1], seq[1, 3])
    # The all-padding row keeps the zero initial state; padding values are never read.
    np.testing.assert_array_equal(seq[3], 0)
    x2 = np.where(MASK[:, :, None], x, 100.0)
    close(layer.apply(params, x2, mask=MASK), (seq, h))
    # Truncating each row to its length gives the same final state.
    short, h_short = layer.apply(params, x[1:2, :4])
    close(h_short, h[1:2])


def test_mask_is_jittable():
    layer, _, params = build("LSTM", return_sequences=True)
    x = data()
    f = jax.jit(lambda p, x, m: layer.apply(p, x, mask=m))
    close(f(params, x, MASK), layer.apply(params, x, mask=MASK))
    close(f(params, x, np.ones_like(MASK)), layer.apply(params, x))


def test_embedding_mask_zero_feeds_lstm_like_keras():
    ids = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 0, 0, 0, 0], [4, 4, 4, 4, 4, 9], [0] * 6])
    model = jl.serial(jl.Embedding(10, F, mask_zero=True), jl.LSTM(U, return_sequences=True),
                      jl.LSTM(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, ids)
    km = keras.Sequential([keras.layers.Embedding(10, F, mask_zero=True),
                           keras.layers.LSTM(U, return_sequences=True), keras.layers.LSTM(U)])
    weights = [np.asarray(params[0]["embeddings"])] + keras_weights(params[1]) + keras_weights(
        params[2])
    close(y, keras_call(km, ids, weights))


def test_mask_made_in_a_nested_serial_leaves_it():
    """serial(serial(Embedding(mask_zero), Dense), LSTM) masks like the flat Keras model."""
    ids = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 0, 0, 0, 0], [4, 4, 4, 4, 4, 9], [0] * 6])
    inner = jl.serial(jl.Embedding(10, F, mask_zero=True), jl.Dense(F, activation="tanh"))
    assert inner.masking.takes and inner.masking.out == "self"   # threads masks
    model = jl.serial(inner, jl.LSTM(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, ids)
    km = keras.Sequential([keras.layers.Embedding(10, F, mask_zero=True),
                           keras.layers.Dense(F, activation="tanh"), keras.layers.LSTM(U)])
    weights = ([np.asarray(params[0][0]["embeddings"]), np.asarray(params[0][1]["kernel"]),
                np.asarray(params[0][1]["bias"])] + keras_weights(params[1]))
    close(y, keras_call(km, ids, weights))
    # The flat serial with the same params gives the same numbers; the unmasked run differs.
    flat = jl.serial(*inner.children, jl.LSTM(U))
    close(y, flat.apply((*params[0], params[1]), ids))
    y_unmasked = jl.LSTM(U).apply(params[1], inner.apply(params[0], ids))
    assert not np.allclose(y, y_unmasked, atol=1e-3)
    # The nested serial returns its mask on request and takes an incoming one.
    _, mask = inner.apply(params[0], ids, return_mask=True)
    np.testing.assert_array_equal(mask, ids != 0)
    x = data((4, 6, F))
    _, mask = jl.serial(jl.Dense(F), jl.LSTM(U, return_sequences=True)).apply(
        (params[0][1], params[1]), x, mask=MASK, return_mask=True)
    np.testing.assert_array_equal(mask, MASK)


def test_masking_layer_feeds_gru_like_keras():
    x = data()
    x[MASK == 0] = -1.0
    model = jl.serial(jl.Masking(-1.0), jl.Dense(U, activation="tanh"),
                      jl.GRU(U, return_sequences=True, go_backwards=True))
    _, params = model.init(KEY, (None, None, F))
    params = perturbed(params)
    km = keras.Sequential([keras.layers.Masking(-1.0), keras.layers.Dense(U, activation="tanh"),
                           keras.layers.GRU(U, return_sequences=True, go_backwards=True)])
    weights = [np.asarray(params[1]["kernel"]), np.asarray(params[1]["bias"])] + keras_weights(
        params[2])
    close(model.apply(params, x), keras_call(km, x, weights))


def test_mask_reaches_stateful_and_regularized_layers():
    x = data()
    plain = jl.serial(jl.Masking(), jl.LSTM(U))
    reg = jl.serial(jl.Masking(), jl.LSTM(U, activity_regularizer="l2"))
    _, params = plain.init(KEY, (None, None, F))
    x[~MASK] = 0.0
    _, params_r, state = reg.init(KEY, (None, None, F))
    y, _ = reg.apply(params, state, x)
    close(y, plain.apply(params, x))
    assert not np.allclose(y, jl.LSTM(U).apply(params[1], x))


MERGES = ["concat", "sum", "mul", "ave", None]


@pytest.mark.parametrize("merge_mode, seq", [(m, True) for m in MERGES] + [
    ("concat", False), (None, False)], ids=str)
def test_bidirectional_matches_keras(merge_mode, seq):
    layer = jl.Bidirectional(jl.LSTM(U, return_sequences=seq), merge_mode=merge_mode)
    out_shape, params = layer.init(KEY, (None, None, F))
    params = perturbed(params)
    x = data()
    y = layer.apply(params, x)
    ref = keras_call(keras.layers.Bidirectional(keras.layers.LSTM(U, return_sequences=seq),
                                                merge_mode=merge_mode), x,
                     keras_weights(params[0]) + keras_weights(params[1]))
    close(y, ref)
    width = 2 * U if merge_mode == "concat" else U
    shapes = out_shape if merge_mode is None else (out_shape,)
    assert all(s[-1] == width for s in shapes)


@pytest.mark.parametrize("merge_mode, seq", [("concat", True), ("ave", False), (None, True)],
                         ids=str)
def test_bidirectional_mask_matches_keras(merge_mode, seq):
    layer = jl.Bidirectional(jl.GRU(U, return_sequences=seq), merge_mode=merge_mode)
    _, params = layer.init(KEY, (None, None, F))
    params = perturbed(params)
    x = data()
    y = layer.apply(params, x, mask=MASK)
    ref = keras_call(keras.layers.Bidirectional(keras.layers.GRU(U, return_sequences=seq),
                                                merge_mode=merge_mode), x,
                     keras_weights(params[0]) + keras_weights(params[1]), mask=MASK)
    close(y, ref)


def test_bidirectional_return_state_and_initial_state_match_keras():
    layer = jl.Bidirectional(jl.LSTM(U, return_sequences=True, return_state=True))
    out_shape, params = layer.init(KEY, (None, None, F))
    assert len(out_shape) == 5 and out_shape[0] == (None, None, 2 * U)
    params = perturbed(params)
    x = data()
    states = [data((B, U), seed=20 + i) for i in range(4)]
    kl = keras.layers.Bidirectional(keras.layers.LSTM(U, return_sequences=True,
                                                      return_state=True))
    weights = keras_weights(params[0]) + keras_weights(params[1])
    close(layer.apply(params, x), keras_call(kl, x, weights))
    close(layer.apply(params, x, initial_state=states),
          keras_call(kl, x, weights, initial_state=states))


@pytest.mark.slow
def test_bidirectional_in_serial_with_embedding_mask():
    ids = np.array([[3, 5, 2, 0, 0], [7, 1, 0, 0, 0], [4, 4, 4, 4, 9]])
    model = jl.serial(jl.Embedding(10, F, mask_zero=True),
                      jl.Bidirectional(jl.SimpleRNN(U, return_sequences=True)),
                      jl.Bidirectional(jl.SimpleRNN(U), merge_mode="sum"))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    km = keras.Sequential([keras.layers.Embedding(10, F, mask_zero=True),
                           keras.layers.Bidirectional(keras.layers.SimpleRNN(
                               U, return_sequences=True)),
                           keras.layers.Bidirectional(keras.layers.SimpleRNN(U),
                                                      merge_mode="sum")])
    weights = ([np.asarray(params[0]["embeddings"])] + keras_weights(params[1][0])
               + keras_weights(params[1][1]) + keras_weights(params[2][0])
               + keras_weights(params[2][1]))
    close(model.apply(params, ids), keras_call(km, ids, weights))


def test_time_distributed_dense_matches_keras():
    layer = jl.TimeDistributed(jl.Dense(U, activation="relu"))
    out_shape, params = layer.init(KEY, (None, None, F))
    assert out_shape == (None, None, U)
    params = perturbed(params)
    x = data()
    close(layer.apply(params, x),
          keras_call(keras.layers.TimeDistributed(keras.layers.Dense(U, activation="relu")),
                     x, [np.asarray(params["kernel"]), np.asarray(params["bias"])]))


def test_time_distributed_over_a_model_and_shapes():
    inner = jl.serial(jl.Flatten(), jl.Dense(2))
    layer = jl.TimeDistributed(inner)
    out_shape, params = layer.init(KEY, (None, 7, 3, 4))
    assert out_shape == (None, 7, 2)
    x = data((2, 7, 3, 4))
    y = layer.apply(params, x)
    close(y[:, 3], inner.apply(params, x[:, 3]))


@pytest.mark.slow
def test_one_model_many_lengths():
    model = jl.serial(jl.LSTM(U, return_sequences=True), jl.GRU(U))
    out_shape, params = model.init(KEY, (None, None, F))
    assert out_shape == (None, U)
    params = perturbed(params)
    f = jax.jit(model.apply)
    for steps in (5, 50):
        km = keras.Sequential([keras.layers.LSTM(U, return_sequences=True),
                               keras.layers.GRU(U)])
        x = data((B, steps, F), seed=steps)
        close(f(params, x), keras_call(km, x, keras_weights(params[0]) + keras_weights(
            params[1])), atol=2e-5)


# --------------------------------------------------------------------------- dropout


def test_dropout_only_in_training_and_needs_rng():
    layer = jl.LSTM(U, dropout=0.3, recurrent_dropout=0.2, return_sequences=True)
    _, params = layer.init(KEY, (None, None, F))
    x = data()
    plain = jl.LSTM(U, return_sequences=True).apply(params, x)
    close(layer.apply(params, x), plain)
    close(layer.apply(params, x, rng=jax.random.key(5), train=False), plain)
    a = layer.apply(params, x, rng=jax.random.key(5), train=True)
    close(layer.apply(params, x, rng=jax.random.key(5), train=True), a)
    assert not np.allclose(a, plain)
    assert not np.allclose(a, layer.apply(params, x, rng=jax.random.key(6), train=True))
    with pytest.raises(ValueError, match=r"LSTM\(5.*rng"):
        layer.apply(params, x, train=True)


def test_input_dropout_mask_is_fixed_over_time_and_scaled():
    # Identity kernel, no recurrence: the output is the dropped-out input itself.
    layer = jl.SimpleRNN(F, activation=None, use_bias=False, kernel_initializer="identity",
                         recurrent_initializer="zeros", dropout=0.5, return_sequences=True)
    _, params = layer.init(KEY, (None, None, F))
    y = np.asarray(layer.apply(params, np.ones((64, T, F), np.float32), rng=KEY, train=True))
    assert set(np.unique(y)) == {0.0, 2.0}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
    assert 0.35 < (y == 0).mean() < 0.65


def test_recurrent_dropout_mask_is_fixed_over_time():
    # No input, identity recurrence from h0 = 1: h_t = m**t for one fixed mask m in {0, 2}.
    layer = jl.SimpleRNN(F, activation=None, use_bias=False, kernel_initializer="zeros",
                         recurrent_initializer="identity", recurrent_dropout=0.5,
                         return_sequences=True)
    _, params = layer.init(KEY, (None, None, F))
    h0 = np.ones((64, F), np.float32)
    y = np.asarray(layer.apply(params, np.zeros((64, 3, F), np.float32), rng=KEY, train=True,
                               initial_state=h0))
    m = y[:, 0]
    assert set(np.unique(m)) == {0.0, 2.0}
    np.testing.assert_array_equal(y[:, 1], m ** 2)
    np.testing.assert_array_equal(y[:, 2], m ** 3)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_gated_dropout_runs_under_jit_and_grad(kind):
    layer = KINDS[kind][0](U, dropout=0.2, recurrent_dropout=0.2,
                           **({"reset_after": False} if kind == "GRU" else {}))
    _, params = layer.init(KEY, (None, None, F))
    x = data()
    loss = lambda p, k: jnp.sum(layer.apply(p, x, rng=k, train=True) ** 2)
    g = jax.jit(jax.grad(loss))(params, KEY)
    assert all(np.isfinite(l).all() for l in jax.tree_util.tree_leaves(g))


# --------------------------------------------------------------------------- cells


def MinimalRNNCell(units):
    def init(key, input_dim):
        return {"kernel": jax.random.normal(key, (input_dim, units)) * 0.5,
                "recurrent_kernel": jnp.eye(units) * 0.9}

    def step(params, x_t, states, extras):
        h = jnp.tanh(x_t @ params["kernel"] + states[0] @ params["recurrent_kernel"])
        return h, (h,)

    return jl.Cell(init, step, state_size=units, output_size=units, name="MinimalRNNCell")


def test_user_cell_runs_like_a_python_loop():
    layer = jl.RNN(MinimalRNNCell(U), return_sequences=True)
    assert layer.name == "RNN(MinimalRNNCell, return_sequences=True)"
    out_shape, params = layer.init(KEY, (None, None, F))
    assert out_shape == (None, None, U)
    x = data()
    h = np.zeros((B, U), np.float32)
    ref = []
    for t in range(T):
        h = np.tanh(x[:, t] @ np.asarray(params["kernel"]) + h @ np.asarray(
            params["recurrent_kernel"]))
        ref.append(h)
    close(layer.apply(params, x), np.stack(ref, 1))


@pytest.mark.parametrize("make", [jl.SimpleRNNCell, jl.LSTMCell, jl.GRUCell])
def test_builtin_cells_through_rnn_equal_the_layers(make):
    layer = {jl.SimpleRNNCell: jl.SimpleRNN, jl.LSTMCell: jl.LSTM, jl.GRUCell: jl.GRU}[make]
    _, params = layer(U).init(KEY, (None, None, F))
    x = data()
    close(jl.RNN(make(U)).apply(params, x), layer(U).apply(params, x))


def test_keras_rnn_of_lstm_cell_matches():
    layer = jl.RNN(jl.LSTMCell(U), return_sequences=True)
    _, params = layer.init(KEY, (None, None, F))
    params = perturbed(params)
    x = data()
    close(layer.apply(params, x),
          keras_call(keras.layers.RNN(keras.layers.LSTMCell(U), return_sequences=True), x,
                     keras_weights(params)))


def test_regularizers_and_constraints():
    layer = jl.GRU(U, kernel_regularizer=jl.regularizers.L2(0.1),
                   recurrent_regularizer=jl.regularizers.L1(0.2), bias_regularizer="l2",
                   recurrent_constraint="non_neg")
    _, params = layer.init(KEY, (None, None, F))
    params = perturbed(params)
    want = (0.1 * jnp.sum(params["kernel"] ** 2) + 0.2 * jnp.sum(jnp.abs(
        params["recurrent_kernel"])) + 0.01 * jnp.sum(params["bias"] ** 2))
    np.testing.assert_allclose(layer.penalty(params), want, rtol=1e-5)
    fixed = layer.constrain(params)
    assert (fixed["recurrent_kernel"] >= 0).all()
    np.testing.assert_array_equal(fixed["kernel"], params["kernel"])
    act = jl.LSTM(U, activity_regularizer=jl.regularizers.L2(0.5), return_state=True)
    assert act.stateful
    _, p, s = act.init(KEY, (None, None, F))
    (y, h, c), s = act.apply(p, s, data(), train=True)
    np.testing.assert_allclose(s["activity_loss"], 0.5 * (jnp.sum(y ** 2) + jnp.sum(
        h ** 2) + jnp.sum(c ** 2)) / B, rtol=1e-5)


def test_bfloat16_computes_in_bfloat16():
    layer = jl.LSTM(U, return_state=True)
    _, params = layer.init(KEY, (None, None, F))
    out = layer.apply(jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), params),
                      data().astype(jnp.bfloat16))
    assert all(o.dtype == jnp.bfloat16 for o in out)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make, match", [
    (lambda: jl.LSTM(0), "LSTM: units must be a positive int"),
    (lambda: jl.GRU(2.5), "GRU: units must be a positive int"),
    (lambda: jl.SimpleRNN(3, dropout=1.5), r"SimpleRNN: dropout must be a number in \[0, 1\)"),
    (lambda: jl.LSTM(3, recurrent_dropout=-0.1),
     r"LSTM: recurrent_dropout must be a number in \[0, 1\)"),
    (lambda: jl.GRU(3, reset_after="yes"), "reset_after must be True or False"),
    (lambda: jl.LSTM(3, activation="nope"), "LSTMCell: activation: Unknown activation"),
    (lambda: jl.LSTM(3, recurrent_initializer="nope"), "recurrent_initializer"),
    (lambda: jl.RNN(jl.Dense(3)), "cell must be a Cell"),
    (lambda: jl.Bidirectional(jl.LSTM(3), merge_mode="max"), "merge_mode must be one of"),
    (lambda: jl.Bidirectional(jl.Dense(3)), "expected a recurrent layer"),
    (lambda: jl.Cell(lambda k, n: {}, lambda *a: a, state_size=0, output_size=2),
     "state_size must be a positive int"),
])
def test_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer", [jl.LSTM(3), jl.Bidirectional(jl.GRU(3))], ids=str)
def test_init_shape_errors(layer):
    with pytest.raises(jl.ShapeError, match=r"(LSTM|Bidirectional).*rank-3.*received shape "
                                            r"\(None, 4\)"):
        layer.init(KEY, (None, 4))


def test_init_errors_name_the_place():
    with pytest.raises(jl.ShapeError, match=r"LSTM\(3\).*features axis.*must be known"):
        jl.LSTM(3).init(KEY, (None, 5, None))
    with pytest.raises(jl.ShapeError, match=r"serial\[1\] GRU\(2\).*rank-3"):
        jl.serial(jl.Dense(3), jl.GRU(2)).init(KEY, (None, 4))


def test_user_cell_with_wrong_sizes_fails_at_init():
    cell = MinimalRNNCell(3)
    bad = jl.Cell(cell.init, cell.step, state_size=(3,), output_size=4, name="Bad")
    with pytest.raises(jl.ShapeError, match=r"RNN\(Bad\).*output of shape \(2, 3\).*promise "
                                            r"\(2, 4\)"):
        jl.RNN(bad).init(KEY, (None, None, 2))
    worse = jl.Cell(cell.init, cell.step, state_size=(4,), output_size=4, name="Worse")
    with pytest.raises(jl.ShapeError, match=r"RNN\(Worse\): the cell Worse fails on a step"):
        jl.RNN(worse).init(KEY, (None, None, 2))


def test_apply_errors():
    layer = jl.LSTM(3, return_state=True)
    _, params = layer.init(KEY, (None, None, 4))
    x = data((2, 5, 4))
    with pytest.raises(jl.ShapeError, match=r"LSTM.*\(batch, time, 4\), received \(2, 5, 3\)"):
        layer.apply(params, data((2, 5, 3)))
    with pytest.raises(jl.ShapeError, match=r"LSTM.*\(batch, time, features\), received "
                                            r"\(2, 4\)"):
        layer.apply(params, data((2, 4)))
    with pytest.raises(jl.ShapeError, match=r"mask shape \(2, 4\) does not match"):
        layer.apply(params, x, mask=np.ones((2, 4), bool))
    with pytest.raises(jl.ShapeError, match=r"initial_state must be 2 state\(s\) shaped"):
        layer.apply(params, x, initial_state=(np.zeros((2, 3)),))


def test_bidirectional_backward_layer_matches_keras():
    layer = jl.Bidirectional(jl.LSTM(U, return_sequences=True),
                             backward_layer=jl.GRU(U, return_sequences=True, go_backwards=True))
    _, params = layer.init(KEY, (None, None, F))
    params = perturbed(params)
    x = data()
    kl = keras.layers.Bidirectional(
        keras.layers.LSTM(U, return_sequences=True),
        backward_layer=keras.layers.GRU(U, return_sequences=True, go_backwards=True))
    close(layer.apply(params, x, mask=MASK),
          keras_call(kl, x, keras_weights(params[0]) + keras_weights(params[1]), mask=MASK))


def test_doc_user_cell_example():
    def MinimalRNNCell(units):
        def init(key, input_dim):
            k1, k2 = jax.random.split(key)
            return {"kernel": jax.nn.initializers.glorot_uniform()(k1, (input_dim, units)),
                    "recurrent_kernel": jax.nn.initializers.orthogonal()(k2, (units, units))}

        def step(params, x_t, states, extras):
            h = jnp.tanh(x_t @ params["kernel"] + states[0] @ params["recurrent_kernel"])
            return h, (h,)

        return jl.Cell(init, step, state_size=units, output_size=units, name="MinimalRNNCell")

    layer = jl.RNN(MinimalRNNCell(32), return_sequences=True)
    out_shape, params = layer.init(jax.random.key(0), (None, None, 8))
    assert out_shape == (None, None, 32)
    hoisted = jl.Cell(MinimalRNNCell(32).init,
                      lambda p, x_t, s, e: (lambda h: (h, (h,)))(
                          jnp.tanh(x_t + s[0] @ p["recurrent_kernel"])),
                      state_size=32, output_size=32,
                      project=lambda p, xs, rng, train: (xs @ p["kernel"], None))
    x = data((2, 5, 8))
    close(jl.RNN(hoisted, return_sequences=True).apply(params, x), layer.apply(params, x))


# ---------------------------------------------------------------- which layers pass a mask


IDS = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 0, 0, 0, 0], [4, 4, 4, 4, 4, 9], [2, 0, 0, 0, 0, 0]])


@pytest.mark.filterwarnings("ignore:.*does not support masking")
def test_conv1d_drops_the_mask_like_keras():
    """Keras 3 destroys the mask at a layer without mask support (Conv1D "same" keeps the
    time axis): the LSTM after it then runs every step, padding included."""
    model = jl.serial(jl.Embedding(10, F, mask_zero=True), jl.Conv1D(F, 3, padding="same"),
                      jl.LSTM(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, IDS)
    km = keras.Sequential([keras.layers.Embedding(10, F, mask_zero=True),
                           keras.layers.Conv1D(F, 3, padding="same"), keras.layers.LSTM(U)])
    weights = ([np.asarray(params[0]["embeddings"]), np.asarray(params[1]["kernel"]),
                np.asarray(params[1]["bias"])] + keras_weights(params[2]))
    close(y, keras_call(km, IDS, weights))
    _, mask = model.apply(params, IDS, return_mask=True)
    assert mask is None


@pytest.mark.parametrize("middle, keras_middle", [
    (lambda: jl.Dropout(0.5), lambda: keras.layers.Dropout(0.5)),
    (lambda: jl.LayerNormalization(), lambda: keras.layers.LayerNormalization()),
    (lambda: jl.Activation("tanh"), lambda: keras.layers.Activation("tanh")),
    (lambda: jl.serial(jl.ReLU(), jl.GaussianNoise(0.1)),
     lambda: keras.layers.ReLU()),
    (lambda: jnp.tanh, lambda: keras.layers.Activation("tanh")),   # a plain function: Lambda
])
def test_mask_supporting_layers_pass_the_mask_like_keras(middle, keras_middle):
    model = jl.serial(jl.Embedding(10, F, mask_zero=True), middle(), jl.GRU(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, IDS)
    km = keras.Sequential([keras.layers.Embedding(10, F, mask_zero=True), keras_middle(),
                           keras.layers.GRU(U)])
    middle_weights = [np.asarray(params[1][k]) for k in ("gamma", "beta")
                      if isinstance(params[1], dict) and k in params[1]]
    weights = ([np.asarray(params[0]["embeddings"])] + middle_weights
               + keras_weights(params[2]))
    close(y, keras_call(km, IDS, weights))
    _, mask = model.apply(params, IDS, return_mask=True)
    assert mask is None   # GRU without return_sequences ends it
    _, mask = jl.serial(*model.children[:2]).apply(params[:2], IDS, return_mask=True)
    np.testing.assert_array_equal(mask, IDS != 0)


def test_global_average_pooling1d_averages_the_real_steps_like_keras():
    model = jl.serial(jl.Embedding(10, F, mask_zero=True), jl.GlobalAveragePooling1D(),
                      jl.Dense(2))
    _, params = model.init(KEY, (None, None))
    y = jax.jit(model.apply)(params, IDS)
    km = keras.Sequential([keras.layers.Embedding(10, F, mask_zero=True),
                           keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    weights = [np.asarray(params[0]["embeddings"]), np.asarray(params[2]["kernel"]),
               np.asarray(params[2]["bias"])]
    close(y, keras_call(km, IDS, weights))
    emb = np.asarray(params[0]["embeddings"])[IDS]
    keep = (IDS != 0)[..., None]
    mean = (emb * keep).sum(1) / keep.sum(1)
    close(jl.GlobalAveragePooling1D().apply((), emb, mask=IDS != 0), mean)
    close(jl.GlobalAveragePooling1D().apply((), emb), emb.mean(1))   # no mask: plain mean
    with pytest.raises(jl.ShapeError, match=r"GlobalAveragePooling1D\(\).*mask shape"):
        jl.GlobalAveragePooling1D().apply((), emb, mask=np.ones((4, 5), bool))
    g = jax.grad(lambda e: jl.GlobalAveragePooling1D().apply((), e, mask=IDS != 0).sum())(emb)
    close(g, np.broadcast_to(keep / keep.sum(1, keepdims=True), emb.shape))


def test_nested_plain_model_passes_the_mask_like_a_keras_submodel():
    inp = jl.Input((None, F))
    sub = jl.Model(inp, jl.Dropout(0.2)(jl.Dense(F, activation="tanh")(inp)))
    model = jl.serial(jl.Embedding(10, F, mask_zero=True), sub, jl.LSTM(U))
    _, params = model.init(KEY, (None, None))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, IDS)
    flat = jl.serial(jl.Embedding(10, F, mask_zero=True), jl.Dense(F, activation="tanh"),
                     jl.LSTM(U))
    dense = params[1]["dense"]
    close(y, flat.apply((params[0], dense, params[2]), IDS))
    inp2 = jl.Input((None, F))
    conv = jl.Model(inp2, jl.Conv1D(F, 3, padding="same")(inp2))
    _, cparams = conv.init(KEY, (None, None, F))
    assert conv.apply(cparams, np.ones((2, 6, F)), mask=IDS[:2, :6] != 0,
                      return_mask=True)[1] is None   # Conv1D drops the mask, as Keras


def test_time_distributed_hands_each_step_its_mask_like_keras():
    """Masking over (batch, time, steps, features) makes a (batch, time, steps) mask; Keras'
    TimeDistributed(LSTM) gives each outer step its (batch, steps) slice."""
    x = np.asarray(data((2, 3, T, F)))
    x[0, 1, 3:] = 0.0
    x[1, 2, 1:] = 0.0
    x[1, 0, :2] = 0.0
    model = jl.serial(jl.Masking(0.0), jl.TimeDistributed(jl.LSTM(U)))
    _, params = model.init(KEY, (None, 3, None, F))
    params = perturbed(params)
    y = jax.jit(model.apply)(params, x)
    km = keras.Sequential([keras.layers.Masking(0.0), keras.layers.TimeDistributed(
        keras.layers.LSTM(U))])
    close(y, keras_call(km, x, keras_weights(params[1])))
    unmasked = jl.TimeDistributed(jl.LSTM(U)).apply(params[1], x)
    assert not np.allclose(y, unmasked, atol=1e-3)
    # A (batch, time) mask is not the inner LSTM's: Dense-like use is unchanged.
    td = jl.TimeDistributed(jl.Dense(2))
    assert td.masking == jl.core.THREAD   # a container: it threads the mask itself
    _, dparams = td.init(KEY, (None, 3, F))
    mask = np.array([[True, True, False], [True, False, False]])
    xd = data((2, 3, F))
    y, passed = td.apply(dparams, xd, mask=mask, return_mask=True)
    np.testing.assert_array_equal(passed, mask)
    close(y, td.apply(dparams, xd))   # Dense takes no mask: the numbers do not change
