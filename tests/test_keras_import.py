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


def test_unsupported_layers_and_graphs_are_named():
    km = keras.Sequential([keras.Input((4, 3)), keras.layers.Conv1D(2, 2), keras.layers.Flatten()])
    with pytest.raises(jl.io.KerasImportError, match="Conv1D \\('conv1d.*'\\) has no jaxlayers "
                                                     "converter.*CONVERTERS"):
        jl.from_keras(km)
    a = keras.Input((3,))
    b = keras.layers.Dense(3)(a)
    km2 = keras.Model(a, keras.layers.Add()([a, b]))
    with pytest.raises(jl.io.KerasImportError, match="only chains"):
        jl.from_keras(km2)
    def doubled(x):
        return x * 2
    km3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation=doubled)])
    with pytest.raises(jl.io.KerasImportError, match="custom activation"):
        jl.from_keras(km3)


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
