"""Transfer learning: freezing with optax (adamw: no step, no decay), inference mode,
slicing a serial model and putting a new head on it."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlayers as jl

R = np.random.default_rng(1)
X = R.normal(size=(12, 4)).astype(np.float32)
Y = R.integers(0, 3, 12)
SCE = jl.losses.SparseCategoricalCrossentropy(from_logits=True)


def base():
    model = jl.serial(jl.Dense(8), jl.relu, jl.Dense(6), jl.relu, jl.Dense(3))
    _, params = model.init(jax.random.key(0), (None, 4))
    return model, params


@pytest.mark.parametrize("frozen", [
    (True, True, True, True, False),                               # prefix mask
    lambda path, leaf: path[0].idx < 4,                            # predicate on key paths
])
def test_freeze_with_adamw_neither_steps_nor_decays(frozen):
    model, params = base()
    tx = jl.freeze(optax.adamw(0.05, weight_decay=0.5), frozen)
    ts, _ = jl.fit(model, params, tx, SCE, X, Y, epochs=3, batch_size=4, verbose=0)
    for i in (0, 2):
        for k in ("kernel", "bias"):
            np.testing.assert_array_equal(ts.params[i][k], params[i][k])
    assert not np.allclose(ts.params[4]["kernel"], params[4]["kernel"])
    assert not np.allclose(ts.params[4]["bias"], params[4]["bias"])


def test_optax_masked_alone_does_not_freeze():
    """Why `freeze` uses multi_transform + set_to_zero (DESIGN.md section 2)."""
    model, params = base()
    mask = jl.trainable_mask(params, (True, True, True, True, False))
    tx = optax.masked(optax.adamw(0.05, weight_decay=0.5), mask)
    ts, _ = jl.fit(model, params, tx, SCE, X, Y, epochs=1, batch_size=4, verbose=0)
    assert not np.allclose(ts.params[0]["kernel"], params[0]["kernel"])


def test_trainable_mask_and_errors():
    _, params = base()
    mask = jl.trainable_mask(params, (True, False, {"kernel": True, "bias": False}, False, False))
    assert mask[0] == {"bias": False, "kernel": False}
    assert mask[2] == {"bias": True, "kernel": False}
    assert mask[4] == {"bias": True, "kernel": True}
    with pytest.raises(ValueError, match="prefix of the params tree"):
        jl.trainable_mask(params, (True, False))


def test_inference_wrapper_ignores_train():
    model = jl.serial(jl.Dense(8), jl.Dropout(0.9))
    _, params = model.init(jax.random.key(0), (None, 4))
    frozen_body = jl.inference(model)
    y = frozen_body.apply(params, X, rng=jax.random.key(1), train=True)
    np.testing.assert_allclose(y, model.apply(params, X), atol=0)
    assert frozen_body.name.startswith("inference(")
    # stateful layers keep their state untouched in train mode
    sm = jl.inference(jl.Dense(3, activity_regularizer="l2"))
    _, p, s = sm.init(jax.random.key(0), (None, 4))
    _, s2 = sm.apply(p, s, X, train=True)
    assert float(s2["activity_loss"]) == 0.0


def test_take_first_layers_and_new_head():
    model, params = base()
    body, body_params = jl.take(model, params, 4)
    assert len(body.children) == 4 and len(body_params) == 4
    feats = body.apply(body_params, X)
    h = np.maximum(X @ np.asarray(params[0]["kernel"]) + np.asarray(params[0]["bias"]), 0)
    full_hidden = np.maximum(h @ np.asarray(params[2]["kernel"]) + np.asarray(params[2]["bias"]), 0)
    np.testing.assert_allclose(feats, full_hidden, atol=1e-6)
    head = jl.Dense(2)
    new = jl.serial(jl.inference(body), head)
    _, head_params = head.init(jax.random.key(5), (None, 6))
    new_params = (body_params, head_params)
    tx = jl.freeze(optax.adam(0.05), (True, False))
    ts, hist = jl.fit(new, new_params, tx, SCE, X, Y % 2, epochs=3, verbose=0)
    jax.tree_util.tree_map(np.testing.assert_array_equal, ts.params[0], body_params)
    assert hist["loss"][-1] < hist["loss"][0]
    # a slice, and with state
    sm = jl.serial(jl.Dense(3, activity_regularizer="l2"), jl.relu, jl.Dense(2))
    _, p, s = sm.init(jax.random.key(0), (None, 4))
    sub, sp, ss = jl.take(sm, p, slice(0, 2), state=s)
    assert sub.stateful and len(sp) == len(ss) == 2
    with pytest.raises(ValueError, match="selects no layer"):
        jl.take(model, params, 0)
    with pytest.raises(ValueError, match="expected a serial model"):
        jl.take(jl.Dense(3), {"kernel": 1}, 1)


# --------------------------------------------------------------------------- functional take


def functional():
    x = jl.Input((4,))
    a = jl.Dense(5)(x)                                    # 'dense'   (not used by 'add')
    b = jl.Dense(3)(x)                                    # 'dense_1'
    c = jl.Dense(3)(b)                                    # 'dense_2'
    s = jl.named(jl.Add(), "sum")([b, c])
    cat = jl.Concatenate()([s, a])
    model = jl.Model(x, jl.Dense(2)(cat), name="net")
    _, params = model.init(jax.random.key(0))
    return model, params


def dense(p, x):
    return np.asarray(x) @ np.asarray(p["kernel"]) + np.asarray(p["bias"])


def test_take_functional_up_to_an_inner_layer_matches_hand_computation():
    model, params = functional()
    sub, sub_params = jl.take(model, params, "sum")
    # only the layers the sub-graph uses, under the same names ('dense' is not used)
    assert set(sub_params) == {"dense_1", "dense_2", "sum"}
    for n in sub_params:
        assert sub_params[n] is params[n]
    b = dense(params["dense_1"], X)
    want = b + dense(params["dense_2"], b)
    np.testing.assert_allclose(sub.apply(sub_params, X), want, rtol=1e-6, atol=1e-6)
    # several names: a tuple of outputs
    sub2, p2 = jl.take(model, params, ["dense", "concatenate"])
    assert set(p2) == {"dense", "dense_1", "dense_2", "sum", "concatenate"}
    ya, ycat = sub2.apply(p2, X)
    np.testing.assert_allclose(ya, dense(params["dense"], X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ycat, np.concatenate([want, ya], -1), rtol=1e-6, atol=1e-6)


def test_take_functional_new_head_trains_one_jitted_step():
    model, params = functional()
    body, body_params = jl.take(model, params, "sum")
    x = jl.Input((4,))
    head = jl.named(jl.Dense(3), "head")
    new = jl.Model(x, head(body(x)), name="new")
    _, new_params = new.init(jax.random.key(1))
    new_params = {**new_params, "net": body_params}
    frozen = {n: n == "net" for n in new_params}
    tx = jl.freeze(optax.sgd(0.1), frozen)
    opt = tx.init(new_params)

    @jax.jit
    def step(p, o):
        loss, g = jax.value_and_grad(
            lambda p: SCE(Y, new.apply(p, X)))(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, loss

    p1, _, loss = step(new_params, opt)
    assert np.isfinite(loss)
    jax.tree_util.tree_map(np.testing.assert_array_equal, p1["net"], body_params)
    assert not np.allclose(p1["head"]["kernel"], new_params["head"]["kernel"])
    # serial head on the sub-model works too
    stacked = jl.serial(body, jl.Dense(2))
    _, sp = stacked.init(jax.random.key(2), (None, 4))
    assert stacked.apply((body_params, sp[1]), X).shape == (12, 2)


def test_take_functional_with_state():
    x = jl.Input((4,))
    h = jl.named(jl.BatchNormalization(), "bn")(jl.Dense(3)(x))
    model = jl.Model(x, jl.Dense(2)(h))
    _, params, state = model.init(jax.random.key(0))
    sub, sp, ss = jl.take(model, params, "bn", state=state)
    assert set(sp) == set(ss) == {"dense", "bn"}
    y, _ = sub.apply(sp, ss, X)
    assert y.shape == (12, 3)


def test_take_functional_unknown_name():
    model, params = functional()
    with pytest.raises(ValueError, match=r"net.*no layer named 'nope'.*'dense_1'.*'sum'"):
        jl.take(model, params, "nope")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        jl.take(model, params, ["sum", "nope"])


def test_take_functional_shared_layer_is_ambiguous():
    x = jl.Input((3,))
    d = jl.named(jl.Dense(3), "shared")
    model = jl.Model(x, d(d(x)))
    _, params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="'shared'.*called 2 times"):
        jl.take(model, params, "shared")


def test_take_serial_by_child_name():
    model = jl.serial(jl.Dense(6), jl.relu, jl.named(jl.Dense(4), "features"), jl.relu,
                      jl.Dense(2))
    _, params = model.init(jax.random.key(0), (None, 4))
    body, body_params = jl.take(model, params, "features")
    assert len(body.children) == 3 and len(body_params) == 3
    h = np.maximum(dense(params[0], X), 0)
    np.testing.assert_allclose(body.apply(body_params, X), dense(params[2], h), atol=1e-5)
    # with state, and the same layers as an index
    sm = jl.serial(jl.named(jl.Dense(3, activity_regularizer="l2"), "first"), jl.Dense(2))
    _, p, s = sm.init(jax.random.key(0), (None, 4))
    sub, sp, ss = jl.take(sm, p, "first", state=s)
    assert len(sp) == len(ss) == 1 and sub.stateful
    with pytest.raises(ValueError, match="no layer named 'feats'.*'features'"):
        jl.take(model, params, "feats")
    twice = jl.serial(jl.named(jl.Dense(2), "a"), jl.named(jl.Dense(2), "a"))
    _, tp = twice.init(jax.random.key(0), (None, 2))
    with pytest.raises(ValueError, match="2 children named 'a'"):
        jl.take(twice, tp, "a")
    with pytest.raises(TypeError, match="k must be an int, a slice or a layer name"):
        jl.take(model, params, 2.0)
