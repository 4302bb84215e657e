"""jl.from_keras: models built and saved locally, imported, compared to Keras within 1e-5."""
import jax
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.io import keras_import

X = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)


def keras_out(km, x):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(km(x, training=False))


def every_layer():
    return keras.Sequential([
        keras.Input((4, 3)),
        keras.layers.Permute((2, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(6, activation="tanh", kernel_regularizer=keras.regularizers.L2(0.03),
                           bias_regularizer="l1", kernel_constraint=keras.constraints.MaxNorm(1.5)),
        keras.layers.Dropout(0.3),
        keras.layers.RepeatVector(2),
        keras.layers.Reshape((3, 4)),
        keras.layers.Activation("gelu"),
        keras.layers.Dense(5, use_bias=False),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])


def test_sequential_with_every_supported_layer():
    km = every_layer()
    model, params, state = jl.from_keras(km)
    assert state == ()
    assert params[0] == () and model.children[0].kind == "InputLayer"
    np.testing.assert_allclose(model.apply(params, X), keras_out(km, X), atol=1e-5)
    # init(key, None) works from the InputLayer, and shapes agree
    out_shape, fresh = model.init(jax.random.key(0), None)
    assert tuple(out_shape) == (None, 3)
    assert jax.tree_util.tree_map(np.shape, fresh) == jax.tree_util.tree_map(np.shape, params)
    # weight regularizers come along: the penalty equals Keras' regularization losses
    with jax.numpy_rank_promotion("allow"):
        km(X)
        keras_penalty = float(sum(np.asarray(l) for l in km.losses))
    np.testing.assert_allclose(model.penalty(params), keras_penalty, rtol=1e-5)
    big = {"kernel": params[3]["kernel"] * 10, "bias": params[3]["bias"]}
    norms = np.linalg.norm(model.children[3].constrain(big)["kernel"], axis=0)
    np.testing.assert_allclose(norms, 1.5, rtol=1e-4)      # MaxNorm(1.5) came along


def test_dot_keras_and_weights_h5_files(tmp_path):
    km = every_layer()
    km.save(tmp_path / "m.keras")
    km.save_weights(tmp_path / "m.weights.h5")
    model, params, _ = jl.from_keras(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(model.apply(params, X), keras_out(km, X), atol=1e-5)
    fresh = every_layer()            # same architecture, other random weights
    assert not np.allclose(keras_out(fresh, X), keras_out(km, X))
    model2, params2, _ = jl.from_keras(tmp_path / "m.weights.h5", model=fresh)
    np.testing.assert_allclose(model2.apply(params2, X), keras_out(km, X), atol=1e-5)
    with pytest.raises(jl.io.KerasImportError, match="weights only; pass model="):
        jl.from_keras(tmp_path / "m.weights.h5")
    with pytest.raises(jl.io.KerasImportError, match="expected a .keras or .weights.h5"):
        jl.from_keras(tmp_path / "m.h5")


def test_functional_chain_nested_model_and_activity_regularizer():
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu")])
    inp = keras.Input((4, 3))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(8, activation="elu", activity_regularizer="l2")(h)
    h = inner(h)
    out = keras.layers.Dense(2)(h)
    km = keras.Model(inp, out)
    model, params, state = jl.from_keras(km)
    assert model.stateful
    y, new_state = model.apply(params, state, X)
    np.testing.assert_allclose(y, keras_out(km, X), atol=1e-5)
    _, s_train = model.apply(params, state, X, train=True)
    with jax.numpy_rank_promotion("allow"):
        km(X, training=True)
        keras_act = float(sum(np.asarray(l) for l in km.losses))
    from jaxlayers.regularizers import activity_loss
    np.testing.assert_allclose(activity_loss(s_train), keras_act, rtol=1e-5)


def test_unsupported_layers_ops_and_arguments_are_named():
    km = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.RandomPerspective(),
                           keras.layers.Flatten()])
    with pytest.raises(jl.io.KerasImportError, match="RandomPerspective \\('random_perspective.*'"
                                                     "\\) has no jaxlayers converter.*CONVERTERS"):
        jl.from_keras(km)
    a = keras.Input((3,))
    km2 = keras.Model(a, keras.layers.Dense(2)(keras.ops.exp(a)))
    with pytest.raises(jl.io.KerasImportError, match="is not a layer.*keras.ops"):
        jl.from_keras(km2)
    def doubled(x):
        return x * 2
    km3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation=doubled)])
    with pytest.raises(jl.io.KerasImportError, match="custom activation"):
        jl.from_keras(km3)
    km5 = keras.Sequential([keras.Input((4, 3)), keras.layers.Conv1D(
        2, 2, kernel_regularizer=keras.regularizers.L1(0.1), kernel_constraint="non_neg",
        kernel_initializer="zeros")])
    model, params, _ = jl.from_keras(randomize(km5))    # regularizer / constraint carried
    kernel = params[1]["kernel"]
    np.testing.assert_allclose(model.penalty(params), 0.1 * np.abs(kernel).sum(), rtol=1e-5)
    assert kernel.min() < 0 and np.min(model.constrain(params)[1]["kernel"]) == 0
    _, fresh = model.init(jax.random.key(1), None)      # Keras' initializer came along
    assert fresh[1]["kernel"].shape == (2, 3, 2) and not np.any(fresh[1]["kernel"])
    class Halved(keras.regularizers.Regularizer):
        def __call__(self, x):
            return 0.5 * keras.ops.sum(x)
    km8 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, bias_regularizer=Halved())])
    with pytest.raises(jl.io.KerasImportError, match="Dense 'dense.*Halved.*no jaxlayers equivalent"):
        jl.from_keras(km8)
    cells = [keras.layers.LSTMCell(2, **ZR), keras.layers.GRUCell(2, **ZR)]
    with jax.numpy_rank_promotion("allow"):
        km6 = keras.Sequential([keras.Input((4, 3)), keras.layers.RNN(cells)])
    km7 = keras.Sequential([keras.Input(batch_shape=(2, 2, 4, 3)), keras.layers.TimeDistributed(
        keras.layers.LSTM(2, stateful=True, **ZR))])
    # stacked cells and stateful RNNs import (numbers: tests/test_rnn_options.py)
    assert len(jl.from_keras(km6)[1][1]) == 2
    assert jl.from_keras(km7)[2][1]["rnn_state"][0].shape == (4, 2)   # batch 2 x time 2


def test_a_new_family_registers_a_converter(monkeypatch):
    km = keras.Sequential([keras.Input((4, 3)), keras.layers.Conv1D(2, 2, use_bias=False),
                           keras.layers.Flatten()])

    def conv1d(kl):
        w = jl.io.keras_weights(kl)["kernel"]          # (k, in, filters)

        def apply(params, x, *, rng=None, train=False):
            k = params["kernel"]
            return sum(x[:, i:x.shape[1] - k.shape[0] + 1 + i] @ k[i] for i in range(k.shape[0]))
        layer = jl.Layer(lambda key, s: ((s[0], s[1] - w.shape[0] + 1, w.shape[2]),
                                         {"kernel": w}), apply, name="Conv1D")
        return layer, {"kernel": w}, None

    monkeypatch.setitem(keras_import.CONVERTERS, "Conv1D", conv1d)
    model, params, _ = jl.from_keras(km)
    np.testing.assert_allclose(model.apply(params, X), keras_out(km, X), atol=1e-5)


# --------------------------------------------------------------------------- every family

L = keras.layers
Z = {"kernel_initializer": "zeros"}
ZR = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
ZS = {"depthwise_initializer": "zeros", "pointwise_initializer": "zeros"}


def randomize(km, seed=0):
    """Random weights (positive variances) via set_weights: Keras' random initializers
    compile slowly, the layers are built with zeros."""
    rng = np.random.default_rng(seed)
    km.set_weights([rng.uniform(0.5, 2.0, w.shape).astype(np.float32)
                    if v.path.endswith("variance") else
                    rng.normal(0.0, 0.5, w.shape).astype(np.float32)
                    for w, v in zip(km.get_weights(), km.weights)])
    return km


def check(km, x, tmp_path=None):
    """Import `km` (through a .keras file when `tmp_path` is given) and compare."""
    want = keras_out(km, x)
    if tmp_path is not None:
        km.save(tmp_path / "m.keras")
        km = str(tmp_path / "m.keras")
    model, params, state = jl.from_keras(km)
    y = model.apply(params, state, x)[0] if model.stateful else model.apply(params, x)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), y,
                           jax.tree_util.tree_map(np.asarray, want) if isinstance(want, tuple)
                           else want)
    return model, params, state


def keras_outs(km, x):
    with jax.numpy_rank_promotion("allow"):
        out = km(x, training=False)
    return tuple(np.asarray(o) for o in out) if isinstance(out, (list, tuple)) else \
        np.asarray(out)


def test_cnn_with_batchnorm_pooling_and_dropout(tmp_path):
    km = randomize(keras.Sequential([
        keras.Input((9, 9, 2)),
        L.ZeroPadding2D(((1, 0), (0, 1))),
        L.Conv2D(4, 3, padding="same", activation="relu", **Z),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Dropout(0.3),
        L.SpatialDropout2D(0.2),
        L.DepthwiseConv2D(2, depth_multiplier=2, depthwise_initializer="zeros"),
        L.SeparableConv2D(3, 2, strides=2, padding="same", **ZS),
        L.UpSampling2D(2, interpolation="bilinear"),
        L.Conv2DTranspose(2, 3, strides=2, **Z),
        L.Cropping2D(((1, 2), (0, 1))),
        L.AveragePooling2D(3, strides=2, padding="same"),
        L.GaussianNoise(0.5),
        L.BatchNormalization(center=False),
        L.GlobalMaxPooling2D(),
        L.Dense(3, activation="softmax", **Z),
    ]))
    x = np.random.default_rng(1).normal(size=(2, 9, 9, 2)).astype(np.float32)
    model, params, state = check(km, x, tmp_path)
    # the moving statistics went into the state, gamma / beta into the params
    np.testing.assert_array_equal(state[3]["moving_variance"], km.layers[2].moving_variance)
    assert set(params[3]) == {"gamma", "beta"} and set(params[14]) == {"gamma"}
    # training mode uses batch statistics and updates the moving ones as Keras does
    rng = jax.random.key(0)
    _, s_train = model.apply(params, state, x, train=True, rng=rng)
    with jax.numpy_rank_promotion("allow"):
        km.layers[2](km.layers[1](km.layers[0](x)), training=True)
    np.testing.assert_allclose(s_train[3]["moving_mean"], km.layers[2].moving_mean, atol=1e-5)


def test_1d_and_3d_layers_normalizations_and_activations(tmp_path):
    km1 = randomize(keras.Sequential([
        keras.Input((12, 3)),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, **Z),
        L.LayerNormalization(),
        L.LeakyReLU(0.1),
        L.Conv1DTranspose(4, 2, strides=2, padding="same", **Z),
        L.DepthwiseConv1D(3, depth_multiplier=2, depthwise_initializer="zeros"),
        L.GroupNormalization(4, gamma_initializer="zeros"),
        L.ELU(0.7),
        L.SeparableConv1D(4, 2, **ZS),
        L.MaxPooling1D(3, strides=2, padding="same"),
        L.RMSNormalization(),
        L.PReLU(shared_axes=[1]),
        L.UpSampling1D(2),
        L.ZeroPadding1D((2, 1)),
        L.Cropping1D((1, 3)),
        L.AveragePooling1D(2),
        L.UnitNormalization(),
        L.ReLU(max_value=0.5, negative_slope=0.1, threshold=0.2),
        L.GaussianDropout(0.3),
        L.AlphaDropout(0.3),
        L.SpatialDropout1D(0.3),
        L.ActivityRegularization(l1=0.01),
        L.Softmax(axis=1),
        L.GlobalAveragePooling1D(),
    ]))
    check(km1, np.random.default_rng(2).normal(size=(2, 12, 3)).astype(np.float32), tmp_path)
    km3 = randomize(keras.Sequential([
        keras.Input((4, 4, 4, 1)),
        L.ZeroPadding3D(1),
        L.Conv3D(2, 2, **Z),
        L.MaxPooling3D(2),
        L.UpSampling3D(2),
        L.Conv3DTranspose(2, 2, **Z),
        L.Cropping3D(((1, 0), (0, 1), (1, 1))),
        L.SpatialDropout3D(0.1),
        L.AveragePooling3D(2),
        L.GlobalMaxPooling3D(keepdims=True),
        L.GlobalAveragePooling3D(),
    ]), seed=3)
    check(km3, np.random.default_rng(3).normal(size=(2, 4, 4, 4, 1)).astype(np.float32))


def padded_tokens():
    x = np.random.default_rng(4).integers(1, 20, size=(3, 7)).astype(np.int32)
    x[0, 4:] = 0
    x[1, 2:] = 0
    return x


def test_text_model_embedding_mask_lstm_gru_bidirectional(tmp_path):
    km = randomize(keras.Sequential([
        keras.Input((7,), dtype="int32"),
        L.Embedding(20, 4, mask_zero=True, embeddings_initializer="zeros"),
        L.Bidirectional(L.LSTM(3, return_sequences=True, **ZR)),
        L.TimeDistributed(L.Dense(4, **Z)),
        L.Bidirectional(L.GRU(3, return_sequences=True, **ZR), merge_mode="sum"),
        L.GRU(3, reset_after=False, return_sequences=True, go_backwards=True, **ZR),
        L.Bidirectional(L.RNN(L.LSTMCell(2, **ZR), return_sequences=True), merge_mode="mul"),
        L.SimpleRNN(2, go_backwards=True, activation="relu", **ZR),
        L.Dense(2, **Z),
    ]))
    model, params, _ = check(km, padded_tokens(), tmp_path)
    assert len(params[2]) == 2 and params[2][1]["kernel"].shape == (4, 12)
    assert params[5]["bias"].shape == (9,)          # reset_after=False
    assert params[6][0]["recurrent_kernel"].shape == (2, 8)      # Bidirectional(RNN(cell))


def test_masking_and_functional_rnn_states():
    inp = keras.Input((6, 3))
    h = L.Masking(0.0)(inp)
    seq, h_state, c_state = L.LSTM(4, return_sequences=True, return_state=True, **ZR)(h)
    both = L.Bidirectional(L.GRU(2, return_state=True, **ZR), merge_mode="ave")(seq)
    out = L.Concatenate()([both[0], h_state, c_state, both[1], both[2]])
    km = randomize(keras.Model(inp, [out, seq]))
    x = np.random.default_rng(5).normal(size=(3, 6, 3)).astype(np.float32)
    x[0, 3:] = 0.0
    x[2, :2] = 0.0
    model, params, _ = jl.from_keras(km)
    got, want = model.apply(params, x), keras_outs(km, x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-5)


def inception(shared_inner=True):
    """Two inputs, two outputs, branches, every merge, a shared layer, a nested model."""
    a = keras.Input((6,), name="a")
    b = keras.Input((5, 4), name="b")
    shared = L.Dense(6, activation="tanh", name="shared", **Z)
    sa = shared(a)
    sb = shared(L.Dense(6, **Z)(L.GlobalAveragePooling1D()(L.Conv1D(3, 2, **Z)(b))))
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, L.Dense(6, activation="relu", **Z)(inner_in), name="block")
    merged = [L.Add()([sa, sb]), L.Subtract()([sa, sb]), L.Multiply()([sa, sb]),
              L.Average()([sa, sb, inner(sa)]), L.Maximum()([sa, inner(sb)]),
              L.Minimum()([sa, sb])]
    cat = L.Concatenate(name="cat")(merged)
    res = L.Add(name="residual")([L.Dense(36, **Z)(cat), cat])
    out1 = L.Dense(3, activation="softmax", name="probs", **Z)(res)
    out2 = L.Dot(axes=1, normalize=True)([sa, sb])
    return randomize(keras.Model([a, b], [out1, out2], name="inception"), seed=6)


def test_functional_graph_two_inputs_outputs_merges_shared_and_nested(tmp_path):
    km = inception()
    rng = np.random.default_rng(7)
    x = [rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(4, 5, 4)).astype(np.float32)]
    want = keras_outs(km, x)
    km.save(tmp_path / "m.keras")
    model, params, state = jl.from_keras(str(tmp_path / "m.keras"))
    assert model.label == "inception" and state == ()
    assert set(params) == {l.name for l in km.layers if type(l).__name__ != "InputLayer"}
    assert params["shared"]["kernel"].shape == (6, 6)          # one entry, used twice
    assert isinstance(params["block"], dict) and len(params["block"]) == 1     # nested
    got = model.apply(params, x)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
    # the same architecture from a .weights.h5 file
    km.save_weights(tmp_path / "m.weights.h5")
    fresh = inception()
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    model2, params2, _ = jl.from_keras(tmp_path / "m.weights.h5", model=fresh)
    for g, w in zip(model2.apply(params2, x), want):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_functional_text_model_mask_through_merges():
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    e = L.Embedding(20, 4, mask_zero=True, embeddings_initializer="zeros")(tokens)
    d = L.Dense(4, **Z)(e)
    s = L.Add()([e, d])                         # the mask passes through the merge
    out = L.LSTM(3, **ZR)(s)
    km = randomize(keras.Model(tokens, out), seed=8)
    check(km, padded_tokens())


# --------------------------------------------------------------------------- no code from files


@pytest.fixture
def unsafe_keras():
    """Keras' unsafe deserialization enabled process-wide, as another library might do;
    the previous setting is restored afterwards."""
    from keras.src.backend.common import global_state
    from keras.src.saving import serialization_lib
    before = serialization_lib.in_safe_mode()
    keras.config.enable_unsafe_deserialization()
    assert serialization_lib.in_safe_mode() is False
    yield
    global_state.set_global_attribute("safe_mode_saving", before)


def lambda_model_file(tmp_path):
    """A .keras file whose Lambda layer writes a marker file when it runs; the marker the
    saving wrote is removed."""
    marker = tmp_path / "lambda_ran"
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), "
              f"x * 2)[1]")                       # needs no globals once stored as bytecode
    km = keras.Sequential([keras.Input((3,)), L.Dense(2, name="features"),
                           L.Lambda(fn, name="evil"), L.Dense(1)])
    km.save(tmp_path / "lambda.keras")
    assert marker.exists()                         # the function does run when called
    marker.unlink()
    return str(tmp_path / "lambda.keras"), marker


def test_a_lambda_in_a_keras_file_is_refused_without_running_it(tmp_path, unsafe_keras):
    path, marker = lambda_model_file(tmp_path)
    with pytest.raises(jl.io.KerasImportError, match="Lambda layer.*Lambda 'evil'.*does not "
                                                     "run Python code from a file"):
        jl.from_keras(path)
    assert not marker.exists()


def test_keras_safe_mode_holds_even_past_the_check(tmp_path, unsafe_keras, monkeypatch):
    """Second line of defence: with the configuration check switched off, Keras itself
    still loads in safe mode despite the global flag, and refuses the bytecode."""
    from jaxlayers.io import keras_file
    path, marker = lambda_model_file(tmp_path)
    monkeypatch.setattr(keras_file, "_scan", lambda *a: None)
    with pytest.raises(ValueError, match="lambda"):
        jl.from_keras(path)
    assert not marker.exists()


@keras.saving.register_keras_serializable(package="jltest")
class Doubled(keras.layers.Layer):
    def call(self, x):
        return x * 2


def test_an_unregistered_custom_object_is_refused_by_name(tmp_path, monkeypatch):
    km = keras.Sequential([keras.Input((3,)), Doubled(name="twice"), L.Dense(1)])
    km.save(tmp_path / "custom.keras")
    with pytest.raises(jl.io.KerasImportError, match="Doubled.*has no jaxlayers converter"):
        jl.from_keras(str(tmp_path / "custom.keras"))       # registered: our own code
    monkeypatch.delitem(keras.saving.get_custom_objects(), "jltest>Doubled")
    with pytest.raises(jl.io.KerasImportError, match="custom object Doubled \\(registered "
                       "name 'jltest>Doubled'.*in Doubled 'twice'\\), which is not registered"):
        jl.from_keras(str(tmp_path / "custom.keras"))
    (tmp_path / "broken.keras").write_bytes(b"not a zip archive")
    with pytest.raises(jl.io.KerasImportError, match="not a valid .keras file"):
        jl.from_keras(str(tmp_path / "broken.keras"))


def test_sequential_layers_keep_their_keras_names_and_can_be_cut_by_name(tmp_path):
    km = randomize(keras.Sequential([keras.Input((4, 3)), L.Flatten(name="flat"),
                                     L.Dense(5, activation="relu", name="features", **Z),
                                     L.Dense(2, name="head", **Z)]))
    km.save(tmp_path / "m.keras")
    model, params, _ = jl.from_keras(str(tmp_path / "m.keras"))
    assert [c.label for c in model.children[1:]] == ["flat", "features", "head"]
    body, body_params = jl.take(model, params, "features")
    features = keras.Model(km.inputs, km.get_layer("features").output)
    np.testing.assert_allclose(body.apply(body_params, X), keras_out(features, X), atol=1e-5)
    assert len(body_params) == 3                         # InputLayer, flat, features
    with pytest.raises(ValueError, match="no layer named 'feature'.*'features'"):
        jl.take(model, params, "feature")
