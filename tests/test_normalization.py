"""Normalization layers against Keras 3 (JAX backend) with the same weights, plus the state
properties of BatchNormalization, `inference`, and a BatchNorm + Dropout model trained with the
DESIGN.md section 2 step whose inference accuracy matches Keras' evaluation."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxlayers as jl

KEY = jax.random.key(0)


def rand(seed, shape, lo=None, hi=None):
    rng = np.random.default_rng(seed)
    if lo is not None:
        return rng.uniform(lo, hi, shape).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


def keras_call(layer, x, **kwargs):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(layer(x, **kwargs))


# --------------------------------------------------------------------------- BatchNormalization

BN_CASES = [  # (axis, input shape, center, scale)
    (-1, (6, 4), True, True),
    (-1, (5, 3, 4), True, True),
    (1, (4, 3, 5, 2), True, True),       # channels_first image
    (2, (4, 3, 5, 2), True, True),       # an inner axis
    (-1, (6, 4), False, True),
    (-1, (6, 4), True, False),
    (1, (5, 3, 4), False, False),
]


def _bn_pair(axis, shape, center, scale, momentum=0.99, epsilon=1e-3):
    c = shape[axis]
    gamma, beta = rand(1, (c,), 0.5, 1.5), rand(2, (c,))
    mm, mv = rand(3, (c,)), rand(4, (c,), 0.5, 2.0)
    ours = jl.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon, center=center,
                                 scale=scale)
    _, params, state = ours.init(KEY, (None,) + shape[1:])
    params = {k: v for k, v in {"gamma": gamma, "beta": beta}.items() if k in params}
    state = {"moving_mean": jnp.asarray(mm), "moving_variance": jnp.asarray(mv)}
    theirs = keras.layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon,
                                             center=center, scale=scale)
    theirs.build(shape)
    theirs.set_weights(([gamma] if scale else []) + ([beta] if center else []) + [mm, mv])
    return ours, params, state, theirs


@pytest.mark.parametrize("axis,shape,center,scale", BN_CASES)
def test_batchnorm_matches_keras_both_modes(axis, shape, center, scale):
    ours, params, state, theirs = _bn_pair(axis, shape, center, scale)
    x = rand(5, shape) * 2 + 0.5
    y_eval, s_eval = ours.apply(params, state, x, train=False)
    np.testing.assert_allclose(y_eval, keras_call(theirs, x, training=False), atol=1e-5)
    assert s_eval is state or all(np.array_equal(s_eval[k], state[k]) for k in state)
    y_train, s_train = ours.apply(params, state, x, train=True)
    np.testing.assert_allclose(y_train, keras_call(theirs, x, training=True), atol=1e-5)
    np.testing.assert_allclose(s_train["moving_mean"], np.asarray(theirs.moving_mean), atol=1e-6)
    np.testing.assert_allclose(s_train["moving_variance"], np.asarray(theirs.moving_variance),
                               atol=1e-6)
    assert set(params) == {n for n, on in (("gamma", scale), ("beta", center)) if on}


@pytest.mark.parametrize("axis,shape,on", [(-1, (6, 4), True), (1, (4, 3, 5, 2), True),
                                           (-2, (5, 3, 4), True), (1, (4, 3, 5), False)])
def test_batchnorm_moving_stats_after_1_and_10_calls_match_keras(axis, shape, on):
    ours, params, state, theirs = _bn_pair(axis, shape, on, on, momentum=0.9)
    step = jax.jit(lambda s, x: ours.apply(params, s, x, train=True))
    for i in range(10):
        x = rand(100 + i, shape) * (1 + i) + i
        y, state = step(state, x)
        y_k = keras_call(theirs, x, training=True)
        if i in (0, 9):
            np.testing.assert_allclose(y, y_k, atol=1e-5)
            np.testing.assert_allclose(state["moving_mean"], np.asarray(theirs.moving_mean),
                                       rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(state["moving_variance"],
                                       np.asarray(theirs.moving_variance), rtol=1e-5, atol=1e-5)
    x = rand(7, shape)
    np.testing.assert_allclose(ours.apply(params, state, x)[0],
                               keras_call(theirs, x, training=False), atol=1e-5)


@pytest.mark.parametrize("clipping,scale", [(None, True), ({"rmin": 0.8, "rmax": 1.2, "dmax": 0.3}, True),
                                             ({"rmax": 1.5}, False)])
def test_batchnorm_renorm_matches_keras_over_steps(clipping, scale):
    # Batch renormalization: corrected outputs, the five statistics and the gradient (no
    # gradient through r and d) equal Keras' after several training steps.
    shape = (6, 3)
    kw = dict(momentum=0.8, renorm=True, renorm_clipping=clipping, renorm_momentum=0.7,
              scale=scale)
    ours = jl.BatchNormalization(**kw)
    _, params, state = ours.init(KEY, (None, 3))
    assert set(state) == {"moving_mean", "moving_variance", "moving_stddev", "renorm_mean",
                          "renorm_stddev"}
    theirs = keras.layers.BatchNormalization(**kw)
    theirs.build(shape)
    params = {k: jnp.asarray(v) for k, v in zip(
        (["gamma"] if scale else []) + ["beta"], theirs.get_weights())}
    for i in range(4):
        x = rand(20 + i, shape) * (1 + i) + i
        y, state = ours.apply(params, state, x, train=True)
        np.testing.assert_allclose(y, keras_call(theirs, x, training=True), atol=1e-5)
    for k in state:
        np.testing.assert_allclose(state[k], np.asarray(getattr(theirs, k)), atol=1e-5, err_msg=k)
    np.testing.assert_allclose(ours.apply(params, state, x)[0],
                               keras_call(theirs, x, training=False), atol=1e-5)
    xv = jnp.asarray(rand(40, shape))
    grad = jax.grad(lambda x: jnp.sum(ours.apply(params, state, x, train=True)[0] ** 3))(xv)
    xk = keras.Variable(np.asarray(xv))
    with jax.numpy_rank_promotion("allow"):
        ref = jax.grad(lambda v: jnp.sum(theirs.stateless_call(
            [w.value for w in theirs.trainable_weights],
            [w.value for w in theirs.non_trainable_weights], v, training=True)[0] ** 3))(xk.value)
    np.testing.assert_allclose(grad, ref, atol=1e-4)


def test_batchnorm_renorm_and_synchronized_arguments_are_checked():
    with pytest.raises(ValueError, match=r"BatchNormalization: renorm_clipping takes the keys "
                                         r"rmin, rmax, dmax, received \['r_max'\]"):
        jl.BatchNormalization(renorm=True, renorm_clipping={"r_max": 2.0})
    with pytest.raises(ValueError, match="rmax >= rmin"):
        jl.BatchNormalization(renorm=True, renorm_clipping={"rmin": 2.0, "rmax": 1.0})
    with pytest.raises(ValueError, match="dmax >= 0"):
        jl.BatchNormalization(renorm=True, renorm_clipping={"dmax": -1})
    with pytest.raises(ValueError, match=r"renorm_momentum must be a number in \[0, 1\]"):
        jl.BatchNormalization(renorm=True, renorm_momentum=1.5)
    with pytest.raises(TypeError, match="BatchNormalization: synchronized must be True or False"):
        jl.BatchNormalization(synchronized="yes")
    x = rand(1, (4, 3))
    a, b = jl.BatchNormalization(), jl.BatchNormalization(synchronized=True)
    _, p, s = a.init(KEY, (None, 3))
    np.testing.assert_array_equal(a.apply(p, s, x, train=True)[0],
                                  b.apply(p, s, x, train=True)[0])


def test_batchnorm_list_of_axes_matches_numpy():
    # Keras 3 takes one int axis; a list keeps statistics per (axis1, axis2) position.
    layer = jl.BatchNormalization(axis=[1, 3], momentum=0.8)
    _, params, state = layer.init(KEY, (None, 2, 3, 4))
    assert params["gamma"].shape == (2, 4) and state["moving_mean"].shape == (2, 4)
    params = {"gamma": jnp.asarray(rand(1, (2, 4), 0.5, 1.5)), "beta": jnp.asarray(rand(2, (2, 4)))}
    x = rand(3, (5, 2, 3, 4))
    y, new = layer.apply(params, state, x, train=True)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    g, b = np.asarray(params["gamma"])[None, :, None], np.asarray(params["beta"])[None, :, None]
    ref = (x - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-3) * g + b
    np.testing.assert_allclose(y, ref, atol=1e-5)
    np.testing.assert_allclose(new["moving_mean"], 0.2 * mean, atol=1e-6)
    np.testing.assert_allclose(new["moving_variance"], 0.8 + 0.2 * var, atol=1e-6)


def test_batchnorm_bfloat16_keeps_float32_statistics():
    layer = jl.BatchNormalization()
    _, params, state = layer.init(KEY, (None, 3))
    assert all(v.dtype == jnp.float32 for v in state.values())
    x32 = rand(0, (16, 3)) * 3 + 1
    x16 = jnp.asarray(x32, jnp.bfloat16)
    y16, s16 = layer.apply(params, state, x16, train=True)
    assert y16.dtype == jnp.bfloat16
    assert all(v.dtype == jnp.float32 for v in s16.values())
    _, s32 = layer.apply(params, state, jnp.asarray(x16, jnp.float32), train=True)
    # Statistics of the bf16 values computed in float32: the same as from the upcast input.
    for k in state:
        np.testing.assert_allclose(s16[k], s32[k], rtol=1e-6)


def test_batchnorm_penalty_excludes_gamma_beta_unless_asked():
    model = jl.serial(jl.Dense(3, kernel_regularizer=jl.regularizers.L2(0.1)),
                      jl.BatchNormalization())
    _, params, _ = model.init(KEY, (None, 2))
    params = jax.tree_util.tree_map(lambda a: a + 1.0, params)
    expected = 0.1 * float(jnp.sum(params[0]["kernel"] ** 2))
    np.testing.assert_allclose(model.penalty(params), expected, rtol=1e-6)
    asked = jl.BatchNormalization(gamma_regularizer="l2", beta_regularizer=jl.regularizers.L1(0.5),
                                  gamma_constraint="non_neg")
    _, p, _ = asked.init(KEY, (None, 2))
    p = {"gamma": jnp.array([-1.0, 2.0]), "beta": jnp.array([3.0, -1.0])}
    np.testing.assert_allclose(asked.penalty(p), 0.01 * 5.0 + 0.5 * 4.0, rtol=1e-6)
    np.testing.assert_array_equal(asked.constrain(p)["gamma"], [0.0, 2.0])


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="BatchNormalization.*momentum"):
        jl.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="BatchNormalization.*axis"):
        jl.BatchNormalization(axis="channels")
    with pytest.raises(ValueError, match="BatchNormalization.*epsilon"):
        jl.BatchNormalization(epsilon=0)
    with pytest.raises(jl.ShapeError,
                       match=r"BatchNormalization.*axis 3 is out of range.*\(None, 4\)"):
        jl.BatchNormalization(axis=3).init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match="BatchNormalization.*batch axis"):
        jl.BatchNormalization(axis=0).init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match="BatchNormalization.*known sizes"):
        jl.BatchNormalization().init(KEY, (None, None))
    with pytest.raises(jl.ShapeError, match="BatchNormalization.*rank >= 2"):
        jl.BatchNormalization().init(KEY, (None,))
    layer = jl.BatchNormalization()
    _, params, state = layer.init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match=r"BatchNormalization.*\(\?, 4\).*\(2, 5\)"):
        layer.apply(params, state, jnp.ones((2, 5)))
    with pytest.raises(jl.ShapeError, match=r"serial\[1\] BatchNormalization"):
        jl.serial(jl.Dense(3), jl.BatchNormalization(axis=2)).init(KEY, (None, 4))


# --------------------------------------------------------------------------- state properties


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(rank=st.sampled_from([2, 4]), channels=st.sampled_from([1, 3]),
       batch=st.sampled_from([1, 4]),
       momentum=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 16), channels_first=st.booleans())
def test_eval_never_changes_state_and_modes_share_structure(rank, channels, batch, momentum,
                                                            seed, channels_first):
    # (few distinct shapes, so the eager op cache keeps the test fast)
    axis = 1 if channels_first else -1
    shape = [batch] + [2] * (rank - 1)
    shape[axis] = channels
    model = jl.serial(jl.BatchNormalization(axis=axis, momentum=momentum), jl.Dropout(0.3))
    _, params, state = model.init(jax.random.key(seed), (None,) + tuple(shape[1:]))
    state = jax.tree_util.tree_map(lambda a: a + 0.5, state)
    x = jnp.asarray(rand(seed, tuple(shape)))
    _, s_eval = model.apply(params, state, x, train=False)
    _, s_train = model.apply(params, state, x, rng=jax.random.key(seed), train=True)
    for a, b in zip(jax.tree_util.tree_leaves(s_eval), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(a, b)
    for t in (s_eval, s_train):
        assert jax.tree_util.tree_structure(t) == jax.tree_util.tree_structure(state)
        for a, b in zip(jax.tree_util.tree_leaves(t), jax.tree_util.tree_leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype == jnp.float32


def test_inference_freezes_batchnorm_and_dropout():
    backbone = jl.serial(jl.Dense(4), jl.BatchNormalization(), jl.Dropout(0.5))
    model = jl.serial(jl.inference(backbone), jl.Dense(2), jl.BatchNormalization())
    assert model.stateful
    _, params, state = model.init(KEY, (None, 3))
    x = rand(0, (8, 3))
    y1, new = model.apply(params, state, x, rng=jax.random.key(1), train=True)
    y2, _ = model.apply(params, state, x, rng=jax.random.key(2), train=True)
    # The frozen backbone's statistics do not move; the head's do.
    for a, b in zip(jax.tree_util.tree_leaves(new[0]), jax.tree_util.tree_leaves(state[0])):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(new[2]["moving_mean"], state[2]["moving_mean"])
    # No dropout inside: two different keys give the same output.
    np.testing.assert_array_equal(y1, y2)
    # inference() keeps the form and hooks of what it wraps.
    plain = jl.inference(jl.Dense(3, kernel_regularizer="l2"))
    assert not plain.stateful and plain.name == "inference(Dense(3))"
    _, p = plain.init(KEY, (None, 2))
    assert float(plain.penalty(p)) > 0


# --------------------------------------------------------------------------- per-example norms


@pytest.mark.parametrize("kwargs,shape", [
    ({}, (3, 5)),
    ({"axis": [-2, -1]}, (2, 3, 4)),
    ({"axis": 1}, (2, 3, 4)),
    ({"center": False}, (3, 5)),
    ({"scale": False, "epsilon": 1e-5}, (3, 5)),
    ({"rms_scaling": True}, (3, 5)),
])
def test_layernorm_matches_keras(kwargs, shape):
    ours = jl.LayerNormalization(**kwargs)
    _, params = ours.init(KEY, (None,) + shape[1:])
    params = {k: jnp.asarray(rand(i, v.shape) + (1.0 if k == "gamma" else 0.0))
              for i, (k, v) in enumerate(sorted(params.items()))}
    with pytest.warns(UserWarning) if kwargs.get("rms_scaling") else _nothing():
        theirs = keras.layers.LayerNormalization(**kwargs)
    theirs.build(shape)
    theirs.set_weights([np.asarray(params[k]) for k in ("gamma", "beta") if k in params])
    assert [w.shape for w in theirs.get_weights()] == [params[k].shape for k in ("gamma", "beta")
                                                      if k in params]
    x = rand(9, shape) * 3 + 1
    np.testing.assert_allclose(ours.apply(params, x), keras_call(theirs, x), atol=1e-5)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("axis,shape", [(-1, (3, 6)), ([1, 2], (2, 3, 4))])
def test_rmsnorm_matches_keras(axis, shape):
    ours = jl.RMSNormalization(axis=axis)
    _, params = ours.init(KEY, (None,) + shape[1:])
    params = {"scale": jnp.asarray(rand(1, params["scale"].shape) + 1)}
    theirs = keras.layers.RMSNormalization(axis=axis)
    theirs.build(shape)
    theirs.set_weights([np.asarray(params["scale"])])
    x = rand(2, shape)
    np.testing.assert_allclose(ours.apply(params, x), keras_call(theirs, x), atol=1e-5)


@pytest.mark.parametrize("groups,axis,shape,kw", [
    (2, -1, (2, 3, 4, 6), {}),
    (3, 1, (2, 6, 5), {}),          # channels first
    (-1, -1, (2, 5, 4), {}),        # instance normalization
    (1, -1, (3, 4), {"center": False}),
    (2, -2, (2, 4, 3), {"scale": False}),
])
def test_groupnorm_matches_keras(groups, axis, shape, kw):
    ours = jl.GroupNormalization(groups, axis=axis, **kw)
    _, params = ours.init(KEY, (None,) + shape[1:])
    params = {k: jnp.asarray(rand(i, v.shape) + (1.0 if k == "gamma" else 0.0))
              for i, (k, v) in enumerate(sorted(params.items()))}
    theirs = keras.layers.GroupNormalization(groups, axis=axis, **kw)
    theirs.build(shape)
    theirs.set_weights([np.asarray(params[k]) for k in ("gamma", "beta") if k in params])
    x = rand(3, shape) * 2 - 1
    np.testing.assert_allclose(ours.apply(params, x), keras_call(theirs, x), atol=1e-5)


@pytest.mark.parametrize("axis,shape", [(-1, (3, 5)), (1, (2, 3, 4)), ([1, 2], (2, 3, 4))])
def test_unitnorm_matches_keras(axis, shape):
    x = rand(4, shape)
    x[0] = 0.0  # a zero example stays zero
    ours = jl.UnitNormalization(axis=axis)
    ours.init(KEY, (None,) + shape[1:])
    y = ours.apply((), x)
    np.testing.assert_allclose(y, keras_call(keras.layers.UnitNormalization(axis=axis), x),
                               atol=1e-6)
    assert np.all(np.isfinite(jax.grad(lambda x: ours.apply((), x).sum())(jnp.asarray(x))))


def test_per_example_norm_errors():
    with pytest.raises(ValueError, match="GroupNormalization.*groups"):
        jl.GroupNormalization(0)
    with pytest.raises(jl.ShapeError, match=r"GroupNormalization\(4\).*multiple of groups"):
        jl.GroupNormalization(4).init(KEY, (None, 6))
    with pytest.raises(jl.ShapeError, match=r"GroupNormalization\(8\).*more than the number"):
        jl.GroupNormalization(8).init(KEY, (None, 6))
    with pytest.raises(ValueError, match="LayerNormalization.*axis"):
        jl.LayerNormalization(axis=[])
    with pytest.raises(jl.ShapeError, match=r"LayerNormalization.*out of range.*\(None, 3\)"):
        jl.LayerNormalization(axis=2).init(KEY, (None, 3))
    ln = jl.LayerNormalization()
    _, p = ln.init(KEY, (None, 3))
    with pytest.raises(jl.ShapeError, match=r"LayerNormalization.*\(\?, 3\).*\(2, 4\)"):
        ln.apply(p, jnp.ones((2, 4)))
    with pytest.raises(jl.ShapeError, match=r"RMSNormalization.*known sizes"):
        jl.RMSNormalization().init(KEY, (None, None))
    with pytest.raises(jl.ShapeError, match=r"UnitNormalization.*out of range"):
        jl.UnitNormalization(axis=3).init(KEY, (None, 3))


# --------------------------------------------------------------------------- training vs Keras


def _toy_data(n, seed):
    centers = np.random.default_rng(123).normal(size=(3, 6)) * 2.0
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = centers[y] + rng.normal(size=(n, 6)) * 0.7 + 3.0
    return x.astype(np.float32), y.astype(np.int32)


@pytest.mark.slow
def test_batchnorm_dropout_model_trains_and_inference_matches_keras():
    model = jl.serial(jl.Dense(16), jl.BatchNormalization(momentum=0.9), jl.relu, jl.Dropout(0.3),
                      jl.Dense(3, kernel_constraint=jl.constraints.MaxNorm(3.0)),
                      name="model")
    _, params, state = jl.with_state(model).init(KEY, (None, 6))
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)

    def loss_fn(params, state, x, y, rng):
        logits, state = model.apply(params, state, x, rng=rng, train=True)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss + model.penalty(params), state

    @jax.jit
    def step(params, state, opt_state, x, y, rng):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y, rng)
        updates, opt_state = tx.update(grads, opt_state, params)
        return model.constrain(optax.apply_updates(params, updates)), state, opt_state, loss

    x_train, y_train = _toy_data(256, 0)
    x_test, y_test = _toy_data(128, 1)
    rng = jax.random.key(3)
    for epoch in range(8):
        for i in range(0, 256, 32):
            rng, sub = jax.random.split(rng)
            params, state, opt_state, loss = step(params, state, opt_state, x_train[i:i + 32],
                                                  y_train[i:i + 32], sub)
    assert float(jnp.max(jnp.linalg.norm(params[4]["kernel"], axis=0))) <= 3.0 + 1e-5
    logits, same_state = jax.jit(lambda p, s, x: model.apply(p, s, x))(params, state, x_test)
    ours = float(np.mean(np.argmax(logits, -1) == y_test))
    assert ours > 0.8
    assert not np.allclose(state[1]["moving_mean"], 0.0)  # the statistics were tracked

    k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16),
                          keras.layers.BatchNormalization(), keras.layers.ReLU(),
                          keras.layers.Dropout(0.3), keras.layers.Dense(3)])
    k.layers[0].set_weights([params[0]["kernel"], params[0]["bias"]])
    k.layers[1].set_weights([params[1]["gamma"], params[1]["beta"], state[1]["moving_mean"],
                             state[1]["moving_variance"]])
    k.layers[4].set_weights([params[4]["kernel"], params[4]["bias"]])
    k.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with jax.numpy_rank_promotion("allow"):
        _, keras_acc = k.evaluate(x_test, y_test, verbose=0, batch_size=128)
        keras_logits = np.asarray(k.predict(x_test, verbose=0))
    np.testing.assert_allclose(logits, keras_logits, atol=1e-4)
    assert ours == pytest.approx(keras_acc, abs=1e-6)


def test_freezing_recipe_from_the_docs():
    backbone = jl.serial(jl.Dense(4), jl.BatchNormalization())
    model = jl.serial(jl.inference(backbone), jl.Dense(2))
    _, params, state = model.init(KEY, (None, 3))
    tx = optax.multi_transform({"frozen": optax.set_to_zero(), "train": optax.adam(1e-2)},
                               ("frozen", "train"))
    opt_state = tx.init(params)
    x, y = rand(0, (8, 3)), np.arange(8) % 2

    def loss_fn(p, s):
        logits, s = model.apply(p, s, x, train=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), s

    (_, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
    updates, _ = tx.update(grads, opt_state, params)
    new = optax.apply_updates(params, updates)
    for a, b in zip(jax.tree_util.tree_leaves(new[0]), jax.tree_util.tree_leaves(params[0])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(new[1]["kernel"], params[1]["kernel"])


def test_batchnorm_masked_statistics_match_keras():
    """With a time-step mask (Embedding(mask_zero=True) upstream) Keras' BatchNormalization
    takes its training statistics over the real steps only."""
    ids = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 0, 0, 0, 0], [4, 4, 4, 4, 4, 9], [2, 0, 0, 0, 0, 0]])
    mask = ids != 0
    x = np.asarray(jax.random.normal(jax.random.key(5), (4, 6, 3)), np.float32) * 2 + 1
    bn = jl.BatchNormalization(momentum=0.5)
    _, params, state = bn.init(jax.random.key(0), (None, None, 3))
    y, new = jax.jit(lambda x, m: bn.apply(params, state, x, train=True, mask=m))(x, mask)
    k = keras.layers.BatchNormalization(momentum=0.5)
    with jax.numpy_rank_promotion("allow"):
        k.build((None, None, 3))
        ky = np.asarray(k(x, training=True, mask=mask))
    np.testing.assert_allclose(y, ky, atol=1e-5)
    np.testing.assert_allclose(new["moving_mean"], np.asarray(k.moving_mean), atol=1e-6)
    np.testing.assert_allclose(new["moving_variance"], np.asarray(k.moving_variance), atol=1e-5)
    real = x[mask]                                   # (real steps, 3)
    np.testing.assert_allclose(new["moving_mean"], 0.5 * real.mean(0), rtol=1e-5)
    assert not np.allclose(new["moving_mean"], 0.5 * x.reshape(-1, 3).mean(0), atol=1e-3)
    # In a serial the mask arrives by itself; in inference it changes nothing.
    model = jl.serial(jl.Embedding(10, 3, mask_zero=True), jl.BatchNormalization(momentum=0.5))
    _, mparams, mstate = model.init(jax.random.key(0), (None, None))
    _, mnew = model.apply(mparams, mstate, ids, train=True)
    emb = np.asarray(mparams[0]["embeddings"])[ids]
    np.testing.assert_allclose(mnew[1]["moving_mean"], 0.5 * emb[mask].mean(0), rtol=1e-5)
    y_inf, _ = bn.apply(params, state, x, mask=mask)
    np.testing.assert_allclose(y_inf, bn.apply(params, state, x)[0])


@pytest.mark.parametrize("axis, center, scale", [(-1, True, True), ([1, 2], True, False),
                                                 (1, False, True), (-1, False, False)])
def test_layer_norm_derivatives_equal_autodiff_of_keras_arithmetic(axis, center, scale):
    """LayerNormalization's closed-form derivative (a custom_jvp) gives what differentiating
    Keras' own arithmetic gives, for x and the params, in reverse and forward mode and to
    second order; its values are Keras' bit for bit."""
    from jaxlayers.layers.norm_axes import _normalize
    layer = jl.LayerNormalization(axis=axis, epsilon=1e-3, center=center, scale=scale)
    _, params = layer.init(jax.random.key(0), (None, 3, 4, 5))
    params = jax.tree_util.tree_map(lambda p: p + jax.random.normal(jax.random.key(1), p.shape),
                                    params)
    x = jax.random.normal(jax.random.key(2), (2, 3, 4, 5)) * 3 + 1
    axes = tuple(sorted(a % 4 for a in ([axis] if isinstance(axis, int) else axis)))

    def keras_formula(p, x):
        shape = [1] * 4
        for a in axes:
            shape[a] = x.shape[a]
        g, b = (p[k].reshape(shape) if k in p else None for k in ("gamma", "beta"))
        return _normalize(x, jnp.mean(x, axes, keepdims=True), jnp.var(x, axes, keepdims=True),
                          1e-3, g, b)

    np.testing.assert_array_equal(layer.apply(params, x), keras_formula(params, x))
    w = jax.random.normal(jax.random.key(3), x.shape)

    def loss(f):
        return lambda p, x: jnp.sum(jnp.tanh(f(p, x)) * w)

    for got, want in zip(jax.tree_util.tree_leaves(jax.grad(loss(layer.apply), (0, 1))(params, x)),
                         jax.tree_util.tree_leaves(jax.grad(loss(keras_formula), (0, 1))(params, x))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    tangent = jax.jvp(lambda x: layer.apply(params, x), (x,), (w,))[1]
    np.testing.assert_allclose(tangent, jax.jvp(lambda x: keras_formula(params, x), (x,), (w,))[1],
                               rtol=1e-4, atol=1e-4)
    hvp = jax.jvp(jax.grad(lambda x: loss(layer.apply)(params, x)), (x,), (w,))[1]
    want = jax.jvp(jax.grad(lambda x: loss(keras_formula)(params, x)), (x,), (w,))[1]
    np.testing.assert_allclose(hvp, want, rtol=1e-3, atol=1e-3)
