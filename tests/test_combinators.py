"""Combinators: stax-style use, params layout, rng and state threading, penalties."""
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from jax.example_libraries import stax

import jaxlayers as jl

KEY = jax.random.key(0)


def test_stax_style_unpacking_runs():
    init, apply = jl.serial(jl.Dense(512), jl.relu, jl.Dense(10))
    out_shape, params = init(KEY, (-1, 784))
    assert out_shape == (None, 10)
    assert params[0]["kernel"].shape == (784, 512) and params[1] == ()
    y = apply(params, jnp.ones((2, 784)))
    assert y.shape == (2, 10)


def test_raw_stax_pairs_mix_with_layers():
    model = jl.serial(stax.Dense(8), stax.Relu, jl.Dense(3), stax.LogSoftmax)
    out_shape, params = model.init(KEY, (None, 4))
    assert out_shape == (None, 3)
    W, b = params[0]
    x = jax.random.normal(KEY, (5, 4))
    h = jnp.maximum(x @ W + b[None], 0)
    ref = jax.nn.log_softmax(h @ params[2]["kernel"] + params[2]["bias"][None])
    with jax.numpy_rank_promotion("allow"):  # stax's own Dense relies on rank promotion
        np.testing.assert_allclose(model.apply(params, x), ref, atol=1e-6)


def test_plain_functions_are_lifted():
    model = jl.serial(jnp.tanh, lambda x: x * 2)
    out_shape, params = model.init(KEY, (None, 3))
    assert out_shape == (None, 3) and params == ((), ())
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(model.apply(params, x), np.tanh(x) * 2, rtol=1e-6)


def test_serial_matches_manual_composition():
    model = jl.serial(jl.Dense(4, activation="relu"), jl.Dense(2))
    _, (p1, p2) = model.init(KEY, (None, 3))
    x = jax.random.normal(KEY, (6, 3))
    ref = jnp.maximum(x @ p1["kernel"] + p1["bias"][None], 0) @ p2["kernel"] + p2["bias"][None]
    np.testing.assert_allclose(model.apply((p1, p2), x), ref, atol=1e-6)


def test_parallel_and_branch():
    model = jl.parallel(jl.Dense(2), jnp.sin)
    shapes, params = model.init(KEY, ((None, 3), (None, 4)))
    assert shapes == ((None, 2), (None, 4))
    a, b = jnp.ones((2, 3)), jnp.ones((2, 4))
    ya, yb = model.apply(params, (a, b))
    np.testing.assert_allclose(yb, np.sin(b))
    np.testing.assert_allclose(ya, a @ params[0]["kernel"] + params[0]["bias"][None], atol=1e-6)

    br = jl.branch(jl.Dense(2), jl.Identity())
    shapes, params = br.init(KEY, (None, 3))
    assert shapes == ((None, 2), (None, 3))
    ys = br.apply(params, a)
    assert len(ys) == 2 and ys[1] is a


def test_fan_in_concat_and_sum():
    model = jl.serial(jl.FanOut(3), jl.parallel(jl.Dense(2), jl.Dense(3), jl.Identity()),
                      jl.FanInConcat(axis=-1))
    out_shape, params = model.init(KEY, (None, 4))
    assert out_shape == (None, 9)
    x = jax.random.normal(KEY, (2, 4))
    y = model.apply(params, x)
    np.testing.assert_allclose(y[:, 5:], x)
    s = jl.FanInSum()
    assert s.init(KEY, ((None, 4), (None, 4)))[0] == (None, 4)
    np.testing.assert_allclose(s.apply((), (x, x, x)), 3 * x, rtol=1e-6)


def test_residual_adds_input():
    model = jl.residual(jl.Dense(4), jnp.tanh)
    out_shape, params = model.init(KEY, (None, 4))
    assert out_shape == (None, 4)
    x = jax.random.normal(KEY, (3, 4))
    ref = x + jnp.tanh(x @ params[0]["kernel"] + params[0]["bias"][None])
    np.testing.assert_allclose(model.apply(params, x), ref, atol=1e-6)


def test_each_child_gets_a_distinct_rng():
    model = jl.serial(jl.Dropout(0.5), jl.Dropout(0.5))
    x = jnp.ones((1, 4096))
    first = jl.Dropout(0.5).apply((), x, rng=jax.random.fold_in(jax.random.key(7), 0), train=True)
    second_mask = model.apply(((), ()), x, rng=jax.random.key(7), train=True) != 0
    assert not np.array_equal(np.asarray(first != 0), np.asarray(second_mask))
    # Same parent key, same result: derivation is deterministic.
    a = model.apply(((), ()), x, rng=jax.random.key(7), train=True)
    b = model.apply(((), ()), x, rng=jax.random.key(7), train=True)
    np.testing.assert_array_equal(a, b)
    # Two sibling dropouts in a branch draw different masks.
    ya, yb = jl.branch(jl.Dropout(0.5), jl.Dropout(0.5)).apply(((), ((), ())), x,
                                                              rng=KEY, train=True)
    assert not np.array_equal(np.asarray(ya), np.asarray(yb))


def test_vmap_over_eight_keys_gives_eight_models():
    model = jl.serial(jl.Dense(16, activation="relu"), jl.Dense(1))
    keys = jax.random.split(KEY, 8)
    params = jax.vmap(lambda k: model.init(k, (None, 5))[1])(keys)
    assert params[0]["kernel"].shape == (8, 5, 16)
    x = jax.random.normal(KEY, (4, 5))
    ys = jax.vmap(model.apply, in_axes=(0, None))(params, x)
    assert ys.shape == (8, 4, 1)
    flat = np.asarray(ys).reshape(8, -1)
    assert len({tuple(np.round(r, 6)) for r in flat}) == 8


def test_init_under_jit_with_static_shape():
    model = jl.serial(jl.Dense(4), jl.relu, jl.Dense(2))
    out_shape, params = jax.jit(model.init, static_argnums=1)(KEY, (None, 3))
    assert out_shape == (None, 2) and isinstance(out_shape, jl.Shape)
    _, eager = model.init(KEY, (None, 3))
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, eager)


def test_grad_through_serial_matches_finite_differences():
    model = jl.serial(jl.Dense(5, activation="tanh"), jl.Dense(1, activation="sigmoid"))
    _, params = model.init(KEY, (None, 3))
    x = jax.random.normal(KEY, (4, 3))
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
        loss = lambda p: jnp.sum(model.apply(p, x.astype(jnp.float64)) ** 2)
        jax.test_util.check_grads(loss, (p64,), order=2, modes=("rev", "fwd"))


def test_statefulness_is_known_at_construction():
    stateless = jl.serial(jl.Dense(2), jl.relu)
    assert not stateless.stateful
    stateful = jl.serial(jl.Dense(2), jl.Dense(2, activity_regularizer="l2"))
    assert stateful.stateful
    out_shape, params, state = stateful.init(KEY, (None, 3))
    assert state[0] == ()
    y, new_state = stateful.apply(params, state, jnp.ones((2, 3)))
    assert y.shape == (2, 2)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)


def test_with_state_lifts_any_layer_and_is_idempotent():
    model = jl.with_state(jl.serial(jl.Dense(2)))
    assert model.stateful and jl.with_state(model) is model
    out_shape, params, state = model.init(KEY, (None, 3))
    assert state == ()
    y, s = model.apply(params, state, jnp.ones((1, 3)))
    assert y.shape == (1, 2) and s == ()


def test_penalty_and_constrain_compose():
    model = jl.serial(jl.Dense(3, kernel_regularizer=jl.regularizers.L2(0.1),
                               kernel_constraint="non_neg"),
                      jl.relu,
                      jl.serial(jl.Dense(2, bias_regularizer=jl.regularizers.L1(0.5),
                                         bias_initializer="ones")))
    _, params = model.init(KEY, (None, 4))
    k0, b1 = params[0]["kernel"], params[2][0]["bias"]
    expected = 0.1 * jnp.sum(k0 ** 2) + 0.5 * jnp.sum(jnp.abs(b1))
    np.testing.assert_allclose(model.penalty(params), expected, rtol=1e-6)
    constrained = model.constrain(params)
    assert (constrained[0]["kernel"] >= 0).all()
    np.testing.assert_array_equal(constrained[2][0]["kernel"], params[2][0]["kernel"])
    assert jax.tree_util.tree_structure(constrained) == jax.tree_util.tree_structure(params)
    assert jl.serial(jl.Dense(2)).penalty(model.init(KEY, (None, 4))[1][:1]) == 0.0


def test_user_layer_without_contract_kwargs_is_accepted():
    def init(key, input_shape):
        return input_shape, ()

    def apply(params, x):
        return x + 1

    model = jl.serial(jl.Layer(init, apply, name="PlusOne"), jl.Dense(2))
    _, params = model.init(KEY, (None, 2))
    assert model.apply(params, jnp.ones((1, 2)), train=True, rng=KEY).shape == (1, 2)
