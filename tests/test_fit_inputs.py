"""What fit / evaluate / predict accept: empty and malformed data, batch sizes, labels
outside the model's classes, validation_split, class_weight, y of shape (n,) against an
(n, 1) output, optimizers by Keras name, and callbacks that could never work with the
given fit call."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlayers as jl

R = np.random.default_rng(1)
X = R.normal(size=(10, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)
SCE = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
TX = optax.sgd(0.1)


def mlp(out=2):
    model = jl.serial(jl.Dense(4), jl.relu, jl.Dense(out))
    return model, model.init(jax.random.key(0), (None, 3))[1]


def close(a, b, atol=1e-6):
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u, v, atol=atol), a, b)


@pytest.mark.parametrize("call, message", [
    (lambda m, p: jl.fit(m, p, TX, SCE, X[:0], Y[:0], verbose=0), "fit: x has 0 samples"),
    (lambda m, p: jl.evaluate(m, p, X[:0], Y[:0], loss=SCE), "evaluate: x has 0 samples"),
    (lambda m, p: jl.predict(m, p, X[:0]), "predict: x has 0 samples"),
    (lambda m, p: jl.fit(m, p, TX, SCE, X, Y, validation_data=(X[:0], Y[:0]), verbose=0),
     "fit: validation_data x has 0 samples"),
    (lambda m, p: jl.fit(m, p, TX, SCE, X, Y, validation_data=[], verbose=0),
     "validation_data is empty"),
    (lambda m, p: jl.fit(m, p, TX, SCE, data=[(X[:0], Y[:0])], verbose=0),
     "batch 0 of data: x has 0 samples"),
    (lambda m, p: jl.fit(m, p, TX, SCE, X.tolist(), Y, verbose=0),
     "Python float.*np.asarray"),
    (lambda m, p: jl.predict(m, p, X.tolist()), "Python float.*np.asarray"),
    (lambda m, p: jl.fit(m, p, TX, SCE, X, Y[:7], verbose=0), "x has 10 samples but y has 7"),
    (lambda m, p: jl.evaluate(m, p, X, Y, loss=SCE, sample_weight=np.ones(3)),
     "x has 10 samples but sample_weight has 3"),
    (lambda m, p: jl.fit(m, p, TX, SCE, X, Y, validation_data=(X, Y[:4]), verbose=0),
     "validation_data x has 10 samples but validation_data y has 4"),
    (lambda m, p: jl.fit(m, p, TX, SCE, X, Y, epochs="2", verbose=0), "epochs must be"),
])
def test_empty_and_malformed_data_is_a_clear_value_error(call, message):
    model, params = mlp()
    with pytest.raises(ValueError, match=message):
        call(model, params)


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "32"])
def test_bad_batch_size(bad):
    model, params = mlp()
    for call in (lambda: jl.fit(model, params, TX, SCE, X, Y, batch_size=bad, verbose=0),
                 lambda: jl.evaluate(model, params, X, Y, loss=SCE, batch_size=bad),
                 lambda: jl.predict(model, params, X, batch_size=bad)):
        with pytest.raises(ValueError, match=f"batch_size must be a positive int.*{bad!r}"):
            call()


def test_batch_size_none_is_keras_default_32():
    model, params = mlp()
    x = np.tile(X, (7, 1))
    y = np.tile(Y, 7)
    ts, _ = jl.fit(model, params, TX, SCE, x, y, batch_size=None, verbose=0)
    assert int(ts.step) == 3                          # 70 samples in batches of 32
    np.testing.assert_allclose(jl.predict(model, ts, x, batch_size=None),
                               model.apply(ts.params, x), atol=1e-6)


# --------------------------------------------------------------------------- labels


def test_labels_outside_the_classes_are_refused_before_training():
    model, params = mlp(out=3)
    bad = Y.copy()
    bad[4] = 3
    with pytest.raises(ValueError, match="fit: y: label 3 is outside the model's 3 classes"):
        jl.fit(model, params, TX, SCE, X, bad, verbose=0)
    bad[4] = -1
    with pytest.raises(ValueError, match="label -1 is outside the model's 3 classes"):
        jl.evaluate(model, params, X, bad, loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="validation_data y: label -1"):
        jl.fit(model, params, TX, SCE, X, Y, validation_data=(X, bad), verbose=0)
    with pytest.raises(ValueError, match="label -1 is outside"):
        jl.fit(model, params, TX, SCE, data=[(X[:5], Y[:5]), (X[5:], bad[5:]), (X, bad)],
               verbose=0)
    # an ignored class is allowed, and labels of shape (n, 1) are checked the same way
    jl.fit(model, params, TX, jl.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-1), X, bad, verbose=0)
    with pytest.raises(ValueError, match="label 7"):
        jl.fit(model, params, TX, SCE, X, np.where(Y == 1, 7, 0)[:, None], verbose=0)


# --------------------------------------------------------------------------- Keras habits


def test_validation_split_holds_out_the_last_samples_before_shuffling():
    model, params = mlp()
    w = R.uniform(size=10).astype(np.float32)
    ts, hist = jl.fit(model, params, TX, SCE, X, Y, sample_weight=w, validation_split=0.25,
                      epochs=2, batch_size=4, verbose=0, rng=3)
    # Keras: floor(10 * 0.75) = 7 training samples, the last 3 validate
    ref_ts, ref = jl.fit(model, params, TX, SCE, X[:7], Y[:7], sample_weight=w[:7],
                         validation_data=(X[7:], Y[7:], w[7:]), epochs=2, batch_size=4,
                         verbose=0, rng=3)
    close(ts.params, ref_ts.params)
    np.testing.assert_allclose(hist["val_loss"], ref["val_loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="x has 10 samples, too few.*validation_split=0.95"):
        jl.fit(model, params, TX, SCE, X, Y, validation_split=0.95, verbose=0)
    with pytest.raises(ValueError, match="validation_split must be a float in \\(0, 1\\)"):
        jl.fit(model, params, TX, SCE, X, Y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="validation_split needs x and y arrays"):
        jl.fit(model, params, TX, SCE, X, Y, validation_split=0.2,
               validation_data=(X, Y), verbose=0)


@pytest.mark.parametrize("one_hot", [False, True])
def test_class_weight_weights_samples_like_keras(one_hot):
    from keras.src.trainers.data_adapters.data_adapter_utils import (
        class_weight_to_sample_weights)
    model, params = mlp()
    y = np.eye(2, dtype=np.float32)[Y] if one_hot else Y
    loss = jl.losses.CategoricalCrossentropy(from_logits=True) if one_hot else SCE
    cw = {0: 0.5, 1: 3.0}
    keras_w = np.asarray(class_weight_to_sample_weights(y, cw))
    ts, _ = jl.fit(model, params, TX, loss, X, y, class_weight=cw, batch_size=4, verbose=0,
                   shuffle=False)
    ref, _ = jl.fit(model, params, TX, loss, X, y, sample_weight=keras_w, batch_size=4,
                    verbose=0, shuffle=False)
    close(ts.params, ref.params)
    # with data= each batch is weighted the same way
    data = [(X[:4], y[:4]), (X[4:8], y[4:8]), (X[8:], y[8:])]
    by_data, _ = jl.fit(model, params, TX, loss, data=data, class_weight=cw, verbose=0)
    close(by_data.params, ref.params)
    with pytest.raises(ValueError, match="class_weight must be a dict"):
        jl.fit(model, params, TX, loss, X, y, class_weight=[0.5, 3.0], verbose=0)


def test_labels_of_shape_n_against_an_n_by_1_output_as_keras():
    import keras
    model = jl.serial(jl.Dense(1, activation="sigmoid"))
    _, params = model.init(jax.random.key(0), (None, 3))
    y = Y.astype(np.float32)
    for loss, keras_loss in (("binary_crossentropy", keras.losses.BinaryCrossentropy()),
                             ("mse", keras.losses.MeanSquaredError()),
                             ("hinge", keras.losses.Hinge())):
        got = jl.evaluate(model, params, X, y, loss=loss, batch_size=4)["loss"]
        want = keras_loss(y, np.asarray(model.apply(params, X)))
        np.testing.assert_allclose(got, want, rtol=1e-5)
    loss = "binary_crossentropy"
    flat, _ = jl.fit(model, params, TX, loss, X, y, batch_size=4, shuffle=False, verbose=0)
    col, _ = jl.fit(model, params, TX, loss, X, y[:, None], batch_size=4, shuffle=False,
                    verbose=0)
    close(flat.params, col.params)
    assert not np.allclose(flat.params[0]["kernel"], params[0]["kernel"])


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta",
                                  "adamax", "lion"])
def test_optimizer_by_keras_name_updates_like_keras(name):
    import keras
    w0 = np.array([0.005, -0.01, 0.02], np.float32)     # small: float32 resolves tiny steps
    grads = [np.array([0.1, -0.3, 0.2], np.float32), np.array([0.2, -0.5, 0.05], np.float32)]
    ko, var = keras.optimizers.get(name), keras.Variable(w0)
    tx = jl.training.optimizers.get(name)
    p, s = jnp.asarray(w0), tx.init(jnp.asarray(w0))
    for g in grads:
        ko.apply_gradients([(g, var)])
        u, s = tx.update(jnp.asarray(g), s, p)
        p = optax.apply_updates(p, u)
    np.testing.assert_allclose(p, var.value, rtol=1e-4, atol=1e-9)
    assert np.all(np.asarray(p) != w0)
    assert jl.training.optimizers.get(name.upper()) is tx


def test_optimizer_name_errors():
    model, params = mlp()
    with pytest.raises(ValueError, match="'nadam'.*momentum schedule.*optax"):
        jl.fit(model, params, "nadam", SCE, X, Y, verbose=0)
    with pytest.raises(TypeError, match="optax GradientTransformation.*received 0.01"):
        jl.fit(model, params, 0.01, SCE, X, Y, verbose=0)


# --------------------------------------------------------------------------- callbacks


def test_a_monitor_that_will_never_be_logged_fails_at_fit_start(tmp_path):
    model, params = mlp()
    ck = jl.ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    with pytest.raises(ValueError, match=r"ModelCheckpoint\(save_best_only=True\): "
                                         r"monitor='val_loss' is never logged.*validation_data"):
        jl.fit(model, params, TX, SCE, X, Y, epochs=2, callbacks=[ck], verbose=0)
    assert not list(tmp_path.iterdir())
    named = jl.ModelCheckpoint(tmp_path / "ck-{val_accuracy:.2f}.safetensors")
    with pytest.raises(ValueError, match="filepath field='val_accuracy' is never logged"):
        jl.fit(model, params, TX, SCE, X, Y, callbacks=[named], validation_split=0.2,
               verbose=0)
    with pytest.raises(ValueError, match="EarlyStopping: monitor='acc' is never logged.*"
                                         "loss, accuracy"):
        jl.fit(model, params, TX, SCE, X, Y, metrics=["accuracy"], verbose=0,
               callbacks=[jl.EarlyStopping(monitor="acc")])
    # with validation data the same callback works
    ts, _ = jl.fit(model, params, TX, SCE, X, Y, epochs=2, callbacks=[ck],
                   validation_split=0.2, verbose=0)
    assert ck.saved


@pytest.mark.parametrize("make, message", [
    (lambda: jl.EarlyStopping(patience="3"), "EarlyStopping: patience must be an int.*'3'"),
    (lambda: jl.EarlyStopping(patience=-1), "patience and start_from_epoch must be >= 0"),
    (lambda: jl.EarlyStopping(min_delta="0.1"), "min_delta must be a number"),
    (lambda: jl.EarlyStopping(monitor=3), "monitor must be a logged name"),
    (lambda: jl.EarlyStopping(restore_best_weights="yes"), "restore_best_weights must be a bool"),
    (lambda: jl.EarlyStopping(baseline="1"), "baseline must be a number or None"),
    (lambda: jl.ModelCheckpoint(3), "filepath must be a str or path"),
    (lambda: jl.ModelCheckpoint("a", save_best_only=1), "save_best_only must be a bool"),
    (lambda: jl.ModelCheckpoint("a", every_n_epochs=True), "every_n_epochs must be a positive"),
    (lambda: jl.LambdaCallback(on_epoch_end="print"), "on_epoch_end must be a function"),
])
def test_callback_arguments_are_checked_at_construction(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()
