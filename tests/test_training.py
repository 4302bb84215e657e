"""fit / evaluate / predict: numbers against a hand-written DESIGN.md step, padding of the
last partial batch, compilation count, state/penalty/constraints, callbacks, ensembles."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlayers as jl
from jaxlayers.regularizers import activity_loss

R = np.random.default_rng(0)
X = R.normal(size=(10, 3)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
SCE = jl.losses.SparseCategoricalCrossentropy(from_logits=True)


def mlp(**kw):
    return jl.serial(jl.Dense(8, **kw), jl.relu, jl.Dense(2))


def init(model, shape=(None, 3), key=0):
    return jl.with_state(model).init(jax.random.key(key), shape)[1:]


def close(a, b, atol=1e-6):
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u, v, atol=atol, rtol=1e-5),
                           a, b)


def manual_fit(model, params, state, tx, batches, rng=0):
    """The DESIGN.md section 2 step, written out, with fit's rng-per-step rule."""
    model = jl.with_state(model)
    opt_state = tx.init(params)
    base = jax.random.key(rng)

    @jax.jit
    def step(params, state, opt_state, xb, yb, i):
        def loss_fn(p):
            out, s = model.apply(p, state, xb, rng=jax.random.fold_in(base, i), train=True)
            return SCE(yb, out) + model.penalty(p) + activity_loss(s), s
        (_, state), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
        upd, opt_state = tx.update(g, opt_state, params)
        return model.constrain(optax.apply_updates(params, upd)), state, opt_state

    for i, (xb, yb) in enumerate(batches):
        params, state, opt_state = step(params, state, opt_state, xb, yb, i)
    return params, state


def test_fit_matches_hand_written_step_with_partial_batch_and_dropout():
    model = jl.serial(jl.Dense(8), jl.relu, jl.Dropout(0.3), jl.Dense(2))
    params, state = init(model)
    tx = optax.adam(0.05)
    ts, hist = jl.fit(model, params, tx, SCE, X, Y, epochs=1, batch_size=4, shuffle=False,
                      verbose=0, rng=7)
    # batches of 4, 4 and the last 2: the padded rows must not change the update
    ref, _ = manual_fit(model, params, state, tx,
                        [(X[0:4], Y[0:4]), (X[4:8], Y[4:8]), (X[8:10], Y[8:10])], rng=7)
    close(ts.params, ref, atol=1e-5)
    assert int(ts.step) == 3


def test_fit_keeps_the_callers_params_alive_and_compiles_once():
    traces = []

    def counting_loss(y, y_pred):
        traces.append(1)
        return SCE.per_sample(y, y_pred)

    model = mlp()
    params, _ = init(model)
    ts, hist = jl.fit(model, params, optax.sgd(0.1), counting_loss, X, Y, epochs=4,
                      batch_size=4, verbose=0)
    assert len(traces) == 1          # 3 batches (last one partial) x 4 epochs, one trace
    assert len(hist["loss"]) == 4
    np.asarray(params[0]["kernel"])  # still valid: fit copied before donating
    assert not np.allclose(params[0]["kernel"], ts.params[0]["kernel"])


def test_evaluate_and_predict_count_every_sample_once():
    model = mlp()
    params, _ = init(model)
    logits = model.apply(params, X)
    res = jl.evaluate(model, params, X, Y, loss=SCE, metrics=["accuracy"], batch_size=4)
    np.testing.assert_allclose(res["loss"], SCE(Y, logits), atol=1e-6)
    np.testing.assert_allclose(res["accuracy"], np.mean(np.argmax(logits, -1) == Y), atol=1e-6)
    pred = jl.predict(model, params, X, batch_size=3)
    assert pred.shape == (10, 2)
    np.testing.assert_allclose(pred, logits, atol=1e-6)


def test_iterable_of_batches_pads_to_one_shape():
    traces = []

    def counting_loss(y, y_pred):
        traces.append(1)
        return SCE.per_sample(y, y_pred)

    data = [(X[0:4], Y[0:4]), (X[4:8], Y[4:8]), (X[8:], Y[8:])]
    model = mlp()
    params, state = init(model)
    ts, hist = jl.fit(model, params, optax.sgd(0.1), counting_loss, data=data, epochs=2,
                      verbose=0, validation_data=data)
    assert len(traces) == 2          # one train step + one evaluation step
    np.testing.assert_allclose(hist["val_loss"][-1], jl.evaluate(model, ts, X, Y, loss=SCE)["loss"],
                               rtol=1e-6)
    ref, _ = manual_fit(model, params, state, optax.sgd(0.1), data * 2)
    close(ts.params, ref, atol=1e-5)
    by_data = jl.evaluate(model, ts, data=data, loss=SCE, metrics=["accuracy"])
    by_array = jl.evaluate(model, ts, X, Y, loss=SCE, metrics=["accuracy"], batch_size=3)
    close(by_data, by_array)
    pred = jl.predict(model, ts, data=[X[:4], X[4:]])
    np.testing.assert_allclose(pred, model.apply(ts.params, X), atol=1e-6)


def test_one_shot_iterator_is_reported():
    model = mlp()
    params, _ = init(model)
    with pytest.raises(ValueError, match="yielded no batches.*fresh iterator"):
        jl.fit(model, params, optax.sgd(0.1), SCE, data=iter([(X, Y)]), epochs=2, verbose=0)


def test_stateful_model_penalty_activity_loss_and_constraints():
    model = jl.serial(jl.Dense(8, activity_regularizer="l2", kernel_regularizer="l2",
                               kernel_constraint="non_neg"), jl.relu, jl.Dense(2))
    assert model.stateful
    params, state = init(model)
    with pytest.raises(ValueError, match="stateful: pass its state"):
        jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, verbose=0)
    # lr 0: the logged loss is data loss + weight penalty + activity loss of the batch
    ts, hist = jl.fit(model, params, optax.sgd(0.0), SCE, X, Y, state=state, epochs=1,
                      batch_size=10, verbose=0)
    out, new_state = model.apply(params, state, X, train=True)
    expected = SCE(Y, out) + model.penalty(params) + activity_loss(new_state)
    np.testing.assert_allclose(hist["loss"][0], expected, rtol=1e-5)
    assert float(ts.state[0]["activity_loss"]) > 0
    # (batch 5 divides 10: a padded batch would show its filler rows to the activity
    # regularizer, which sees the whole batch -- documented in docs/training.md)
    ts, _ = jl.fit(model, params, optax.sgd(0.5), SCE, X, Y, state=state, epochs=2,
                   batch_size=5, verbose=0, shuffle=False)
    assert np.all(np.asarray(ts.params[0]["kernel"]) >= 0)
    ref, _ = manual_fit(model, params, state, optax.sgd(0.5),
                        [(X[0:5], Y[0:5]), (X[5:], Y[5:])] * 2)
    close(ts.params, ref, atol=1e-5)


def test_with_state_wrapped_model_and_resume_from_trainstate():
    model = jl.with_state(mlp())
    params, state = init(model)
    ts, _ = jl.fit(model, params, optax.adam(0.01), SCE, X, Y, state=state, epochs=1,
                   shuffle=False, batch_size=5, verbose=0)
    ts2, _ = jl.fit(model, ts, optax.adam(0.01), SCE, X, Y, epochs=1, shuffle=False,
                    batch_size=5, verbose=0)
    ts3, _ = jl.fit(model, params, optax.adam(0.01), SCE, X, Y, state=state, epochs=2,
                    shuffle=False, batch_size=5, verbose=0)
    assert int(ts2.step) == 4
    close(ts2.params, ts3.params, atol=1e-6)


def _snapshots():
    seen = []
    return seen, jl.LambdaCallback(on_epoch_end=lambda run, e, logs: seen.append(
        jax.device_get(run.state.params)))


def test_early_stopping_restores_the_best_epoch():
    model = mlp()
    params, _ = init(model)
    seen, hook = _snapshots()
    stop = jl.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # gradient *ascent*: the validation loss gets worse every epoch, so epoch 1 is the best
    ts, hist = jl.fit(model, params, optax.sgd(-0.2), SCE, X, Y, epochs=20, batch_size=5,
                      validation_data=(X, Y), callbacks=[hook, stop], verbose=0)
    assert len(hist["val_loss"]) == 3
    assert np.all(np.diff(hist["val_loss"]) > 0)
    close(ts.params, seen[0])
    assert stop.stopped_epoch == 2


def test_model_checkpoint_every_n_epochs(tmp_path):
    model = mlp()
    params, _ = init(model)
    seen, hook = _snapshots()
    ck = jl.ModelCheckpoint(tmp_path / "ck-{epoch:02d}.safetensors", every_n_epochs=2)
    tx = optax.adam(0.01)
    ts, _ = jl.fit(model, params, tx, SCE, X, Y, epochs=5, verbose=0, callbacks=[hook, ck])
    assert [p.rsplit("/", 1)[1] for p in ck.saved] == ["ck-02.safetensors", "ck-04.safetensors"]
    c = jl.load(ck.saved[1], like=jl.TrainState(params, (), tx.init(params), None, None))
    close(c.params, seen[3])
    assert c.metadata["epoch"] == 4 and c.metadata["step"] == 4
    assert type(c.opt_state[0]).__name__ == "ScaleByAdamState"


def test_user_hook_can_stop_and_sees_logs():
    model = mlp()
    params, _ = init(model)
    calls = []

    def hook(run, epoch, logs):
        calls.append((epoch, sorted(logs)))
        if epoch == 1:
            run.stop_training = True
    _, hist = jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, epochs=10, verbose=0,
                     metrics=["accuracy"], callbacks=[hook])
    assert calls == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"])]
    assert hist.epoch == [0, 1]


def test_learning_rate_schedule_through_optax_is_logged():
    model = mlp()
    params, _ = init(model)
    sched = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=sched)
    _, hist = jl.fit(model, params, tx, SCE, X, Y, epochs=3, batch_size=5, verbose=0)
    # the rate used by the last step of each epoch (steps 1, 3, 5 counted from 0)
    np.testing.assert_allclose(hist["learning_rate"], [0.1 * 0.5 ** 1, 0.1 * 0.5 ** 3,
                                                       0.1 * 0.5 ** 5], rtol=1e-6)


def test_progress_output(capsys, monkeypatch):
    model = mlp()
    params, _ = init(model)
    jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, epochs=2, verbose=1, metrics=["accuracy"])
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss:" in out and "accuracy:" in out
    import sys
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, epochs=2, verbose=1)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.strip()]
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "loss:" in lines[1]


def test_ensemble_trains_members_like_separate_fits():
    model = jl.serial(jl.Dense(8), jl.relu, jl.Dense(2))
    ens = jl.ensemble(model, 3)
    _, eparams = ens.init(jax.random.key(1), (None, 3))
    assert eparams[0]["kernel"].shape == (3, 3, 8)
    assert not np.allclose(eparams[0]["kernel"][0], eparams[0]["kernel"][1])
    ts, hist = jl.fit(ens, eparams, optax.adam(0.05), SCE, X, Y, epochs=2, batch_size=4,
                      metrics=["accuracy"], verbose=0, rng=3)
    assert hist["loss"][0].shape == (3,)
    for i in (0, 2):
        member = jax.tree_util.tree_map(lambda a: a[i], eparams)
        ts_i, h_i = jl.fit(model, member, optax.adam(0.05), SCE, X, Y, epochs=2,
                           batch_size=4, verbose=0, rng=3)
        close(jax.tree_util.tree_map(lambda a: a[i], ts.params), ts_i.params, atol=1e-5)
        np.testing.assert_allclose(hist["loss"][1][i], h_i["loss"][1], rtol=1e-5)
    pred = jl.predict(ens, ts, X, batch_size=4)
    assert pred.shape == (3, 10, 2)
    res = jl.evaluate(ens, ts, X, Y, loss=SCE, metrics=["accuracy"])
    np.testing.assert_allclose(res["accuracy"], np.mean(pred.argmax(-1) == Y, axis=1),
                               atol=1e-6)


@pytest.mark.slow
def test_ensemble_with_dropout_gives_members_distinct_keys():
    model = jl.serial(jl.Dense(8), jl.Dropout(0.5), jl.Dense(2))
    ens = jl.ensemble(model, 2)
    _, ep = ens.init(jax.random.key(0), (None, 3))
    same = jax.tree_util.tree_map(lambda a: jnp.stack([a[0], a[0]]), ep)
    ts, _ = jl.fit(ens, same, optax.sgd(0.1), SCE, X, Y, epochs=1, verbose=0)
    assert not np.allclose(ts.params[0]["kernel"][0], ts.params[0]["kernel"][1])


def test_fit_errors():
    model = mlp()
    params, _ = init(model)
    tx = optax.sgd(0.1)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        jl.fit(model, params, tx, SCE, X, Y[:9], verbose=0)
    with pytest.raises(ValueError, match="pass either x"):
        jl.fit(model, params, tx, SCE, X, Y, data=[(X, Y)], verbose=0)
    with pytest.raises(ValueError, match="y is missing"):
        jl.fit(model, params, tx, SCE, X, verbose=0)
    with pytest.raises(ValueError, match="unique and not 'loss'"):
        jl.fit(model, params, tx, SCE, X, Y, metrics=["accuracy", "accuracy"], verbose=0)
    with pytest.raises(ValueError, match="EarlyStopping: monitor='val_loss' is never logged.*"
                                         "validation_data"):
        jl.fit(model, params, tx, SCE, X, Y, callbacks=[jl.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match="ensemble: n must be a positive int"):
        jl.ensemble(model, 0)


def test_multi_input_pytrees_and_sample_weight():
    model = jl.serial(jl.parallel(jl.Dense(4), jl.Dense(4)), jl.FanInSum(), jl.Dense(2))
    _, params = model.init(jax.random.key(0), ((None, 3), (None, 2)))
    x2 = R.normal(size=(10, 2)).astype(np.float32)
    ts, hist = jl.fit(model, params, optax.sgd(0.1), SCE, (X, x2), Y, epochs=2, batch_size=4,
                      verbose=0)
    pred = jl.predict(model, ts, (X, x2), batch_size=4)
    np.testing.assert_allclose(pred, model.apply(ts.params, (X, x2)), atol=1e-6)
    w = R.uniform(size=10).astype(np.float32)
    res = jl.evaluate(model, ts, (X, x2), Y, loss=SCE, sample_weight=w, batch_size=4,
                      metrics=["accuracy"])
    np.testing.assert_allclose(res["loss"], SCE(Y, pred, sample_weight=w), rtol=1e-5)
    np.testing.assert_allclose(res["accuracy"], np.sum((pred.argmax(-1) == Y) * w) / w.sum(),
                               rtol=1e-5)


@pytest.mark.slow
def test_ensemble_of_a_stateful_model():
    model = jl.serial(jl.Dense(4, activity_regularizer="l2"), jl.Dense(2))
    ens = jl.ensemble(model, 2)
    assert ens.stateful
    _, params, state = ens.init(jax.random.key(0), (None, 3))
    assert state[0]["activity_loss"].shape == (2,)
    with pytest.raises(ValueError, match="stateful: pass its state"):
        jl.fit(ens, params, optax.sgd(0.1), SCE, X, Y, verbose=0)
    ts, hist = jl.fit(ens, params, optax.sgd(0.1), SCE, X, Y, state=state, epochs=1, verbose=0)
    assert np.all(np.asarray(ts.state[0]["activity_loss"]) > 0)
    y, _ = ens.apply(ts.params, ts.state, X)
    np.testing.assert_allclose(jl.predict(ens, ts, X), y, atol=1e-6)


# --------------------------------------------------------------------------- interrupts


def fit_catching(*args, **kwargs):
    """`jl.fit`, with an escaping KeyboardInterrupt made a test failure (not a stopped run)."""
    try:
        return jl.fit(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail("jl.fit let the KeyboardInterrupt escape")


def test_keyboard_interrupt_from_a_callback_returns_the_training_and_restores_best():
    model = mlp()
    params, _ = init(model)
    seen, hook = _snapshots()

    def ctrl_c(run, epoch, logs):
        if epoch == 3:
            raise KeyboardInterrupt
    stop = jl.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    # gradient ascent: epoch 0 has the best val_loss, and it is restored on the interrupt
    ts, hist = fit_catching(model, params, optax.sgd(-0.2), SCE, X, Y, epochs=20, batch_size=5,
                      validation_data=(X, Y), callbacks=[hook, stop, ctrl_c], verbose=0)
    assert hist.interrupted and hist.epoch == [0, 1, 2, 3]
    close(ts.params, seen[0])
    assert int(ts.step) == 8                       # 4 epochs of 2 steps, all kept
    done, _ = jl.fit(model, params, optax.sgd(-0.2), SCE, X, Y, epochs=1, verbose=0)
    assert not _.interrupted


def test_ctrl_c_stops_at_the_end_of_the_current_step():
    import os
    import signal
    model = mlp()
    params, state = init(model)

    def batches():
        for i in range(3):
            if i == 1:          # Ctrl-C while batch 1 is being prepared
                os.kill(os.getpid(), signal.SIGINT)
            yield X[4 * i:4 * i + 4], Y[4 * i:4 * i + 4]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # Python's own
    try:
        ts, hist = fit_catching(model, params, optax.sgd(0.1), SCE, data=batches, epochs=5,
                                verbose=0)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored
    finally:
        signal.signal(signal.SIGINT, previous)
    assert hist.interrupted and hist.epoch == [] and int(ts.step) == 2
    ref, _ = manual_fit(model, params, state, optax.sgd(0.1), [(X[0:4], Y[0:4]),
                                                                (X[4:8], Y[4:8])])
    close(ts.params, ref, atol=1e-6)


def test_keyboard_interrupt_inside_a_step_keeps_the_last_finished_step(monkeypatch):
    from jaxlayers.training import devices
    model = mlp()
    params, state = init(model)
    calls = []
    real = devices.Placement.batch

    def interrupted_batch(self, tree):        # the 2nd step is interrupted while starting
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, tree)
    monkeypatch.setattr(devices.Placement, "batch", interrupted_batch)
    ts, hist = fit_catching(model, params, optax.sgd(0.1), SCE, X, Y, batch_size=4, shuffle=False,
                      epochs=3, verbose=0)
    assert hist.interrupted and int(ts.step) == 1
    ref, _ = manual_fit(model, params, state, optax.sgd(0.1), [(X[0:4], Y[0:4])])
    close(ts.params, ref, atol=1e-6)


def test_other_errors_carry_the_latest_train_state(tmp_path):
    model = mlp()
    params, _ = init(model)

    def broken(run, epoch, logs):
        if epoch == 1:
            raise RuntimeError("callback bug")
    with pytest.raises(RuntimeError, match="callback bug") as info:
        jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, batch_size=5, epochs=4, verbose=0,
               callbacks=[broken])
    assert int(info.value.train_state.step) == 4
    assert any("exc.train_state" in n for n in info.value.__notes__)
    (tmp_path / "file").write_text("not a directory")
    ck = jl.ModelCheckpoint(tmp_path / "file" / "ck.safetensors")
    with pytest.raises(OSError) as info:
        jl.fit(model, params, optax.sgd(0.1), SCE, X, Y, batch_size=5, verbose=0,
               callbacks=[ck])
    assert isinstance(info.value.train_state, jl.TrainState)
    assert int(info.value.train_state.step) == 2


# --------------------------------------------------------------------------- compile reuse


def test_second_fit_reuses_the_compiled_step():
    traces = []

    def counting_loss(y, y_pred):
        traces.append(1)
        return SCE.per_sample(y, y_pred)

    model = mlp()
    params, _ = init(model)
    for _ in range(3):
        ts, _h = jl.fit(model, params, "adam", counting_loss, X, Y, epochs=1, batch_size=4,
                        metrics=["accuracy"], validation_data=(X, Y), verbose=0)
    assert len(traces) == 2                  # one train step, one validation step
    jl.evaluate(model, ts, X, Y, loss=counting_loss, metrics=["accuracy"], batch_size=4)
    assert len(traces) == 2                  # evaluate shares the validation step
    jl.fit(model, params, "sgd", counting_loss, X, Y, epochs=1, batch_size=4, verbose=0)
    assert len(traces) == 3                  # another optimizer is another step
