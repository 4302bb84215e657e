"""Regularizers and constraints against Keras 3 on the same arrays; lookup by name; activity
losses through the state channel; `constrain_updates` with optax."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jaxlayers as jl
from jaxlayers import constraints as C
from jaxlayers import regularizers as R

KEY = jax.random.key(0)


def rand(seed, shape, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


W = [rand(0, (5, 3)), rand(1, (4, 6), 3.0), rand(2, (2, 3, 4), 0.1)]


@pytest.mark.parametrize("ours,theirs", [
    (R.L1(), keras.regularizers.L1()),
    (R.L1(0.3), keras.regularizers.L1(0.3)),
    (R.L2(), keras.regularizers.L2()),
    (R.L2(0.05), keras.regularizers.L2(0.05)),
    (R.L1L2(), keras.regularizers.L1L2()),
    (R.L1L2(l1=0.01, l2=0.02), keras.regularizers.L1L2(l1=0.01, l2=0.02)),
    (R.get("l1"), keras.regularizers.get("l1")),
    (R.get("l2"), keras.regularizers.get("l2")),
    (R.get("l1l2"), keras.regularizers.get("l1l2")),
    (R.get("l1_l2"), keras.regularizers.l1_l2()),
])
@pytest.mark.parametrize("w", W, ids=["5x3", "4x6", "2x3x4"])
def test_regularizer_values_match_keras(ours, theirs, w):
    np.testing.assert_allclose(ours(jnp.asarray(w)), np.asarray(theirs(w)), rtol=1e-6, atol=1e-7)


def test_none_factors_and_zero_terms_follow_keras():
    # Keras reads a None factor as the class default (0.01 for L1 / L2, 0 in L1L2) ...
    w = jnp.asarray(W[1])
    for ours, theirs in ((R.L1(None), keras.regularizers.L1(None)),
                         (R.L2(None), keras.regularizers.L2(None))):
        np.testing.assert_allclose(ours(w), np.asarray(theirs(w)), rtol=1e-6)
    assert R.L1(None) == R.L1(0.01) and R.L2(None) == R.L2(0.01)
    # ... and L1L2 leaves out a zero factor's term: an infinite weight costs no nan there.
    w = jnp.asarray([[np.inf, 1.0]], jnp.float32)
    assert float(R.L1L2(l1=0.0, l2=0.0)(w)) == float(keras.regularizers.L1L2(0.0, 0.0)(w)) == 0.0


@pytest.mark.parametrize("factor,mode", [(0.01, "rows"), (0.2, "columns"), (1.0, "rows")])
@pytest.mark.parametrize("w", W[:2], ids=["5x3", "4x6"])
def test_orthogonal_regularizer_matches_keras(factor, mode, w):
    ours = R.OrthogonalRegularizer(factor, mode)
    theirs = keras.regularizers.OrthogonalRegularizer(factor, mode)
    # (a backend tensor: Keras mis-normalizes a NumPy array with mode="columns")
    np.testing.assert_allclose(ours(jnp.asarray(w)), np.asarray(theirs(jnp.asarray(w))),
                               rtol=1e-5)
    w0 = w.copy()
    w0[0] = 0.0  # an all-zero row: same value as Keras, finite gradient
    w0[:, 0] = 0.0
    np.testing.assert_allclose(ours(jnp.asarray(w0)), np.asarray(theirs(jnp.asarray(w0))),
                               rtol=1e-5, atol=1e-8)
    if factor == 0.01:
        assert np.all(np.isfinite(jax.grad(ours)(jnp.asarray(w0))))


CONSTRAINTS = [
    (C.MaxNorm(), keras.constraints.MaxNorm()),
    (C.MaxNorm(1.5, axis=1), keras.constraints.MaxNorm(1.5, axis=1)),
    (C.MaxNorm(0.5, axis=[0, 1]), keras.constraints.MaxNorm(0.5, axis=[0, 1])),
    (C.MinMaxNorm(), keras.constraints.MinMaxNorm()),
    (C.MinMaxNorm(0.5, 2.0, rate=0.5, axis=1), keras.constraints.MinMaxNorm(0.5, 2.0, 0.5, 1)),
    (C.UnitNorm(), keras.constraints.UnitNorm()),
    (C.UnitNorm(axis=-1), keras.constraints.UnitNorm(axis=-1)),
    (C.NonNeg(), keras.constraints.NonNeg()),
    (C.get("max_norm"), keras.constraints.get("max_norm")),
    (C.get("min_max_norm"), keras.constraints.get("min_max_norm")),
    (C.get("unit_norm"), keras.constraints.get("unit_norm")),
    (C.get("non_neg"), keras.constraints.get("non_neg")),
]


@pytest.mark.parametrize("ours,theirs", CONSTRAINTS)
@pytest.mark.parametrize("w", W, ids=["5x3", "4x6", "2x3x4"])
def test_constraint_projections_match_keras(ours, theirs, w):
    np.testing.assert_allclose(ours(jnp.asarray(w)), np.asarray(theirs(w)), rtol=1e-6,
                               atol=1e-7)


def test_lookup_by_name_object_class_and_errors():
    assert R.get(None) is None and C.get(None) is None
    assert R.get("L2") == R.L2() and R.get(R.L1) == R.L1() and R.get("l2") == R.L2(0.01)
    reg = R.L1(0.5)
    assert R.get(reg) is reg
    assert C.get("MaxNorm") == C.MaxNorm() and C.get(C.NonNeg) == C.NonNeg()
    fn = lambda w: jnp.sum(w)  # noqa: E731
    assert R.get(fn) is fn
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'.*l1, l1_l2"):
        R.get("l3")
    with pytest.raises(ValueError, match="Unknown constraint 'max'.*max_norm"):
        C.get("max")
    with pytest.raises(ValueError, match="L1.*l1.*non-negative"):
        R.L1(-0.1)
    with pytest.raises(ValueError, match="L2.*l2.*non-negative"):
        R.L2(float("nan"))
    with pytest.raises(ValueError, match="L1L2.*l2"):
        R.L1L2(l2="big")
    with pytest.raises(ValueError, match="OrthogonalRegularizer.*mode"):
        R.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="OrthogonalRegularizer.*rank-2"):
        R.OrthogonalRegularizer()(jnp.ones((2, 2, 2)))
    assert R.L1L2(l1=None, l2=0.1) == R.L1L2(0.0, 0.1)  # Keras reads None as 0
    with pytest.raises(jl.ShapeError, match=r"Dense\(2\).*kernel.*Unknown regularizer"):
        jl.Dense(2, kernel_regularizer="l3")
    with pytest.raises(jl.ShapeError, match=r"Dense\(2\).*bias.*Unknown constraint"):
        jl.Dense(2, bias_constraint="positive")


def test_model_penalty_is_the_sum_of_weight_regularizers_like_keras():
    model = jl.serial(jl.Dense(4, kernel_regularizer="l2", bias_regularizer=R.L1(0.1)),
                      jl.BatchNormalization(),
                      jl.Dense(2, kernel_regularizer=R.L1L2(0.01, 0.02)))
    _, params, _ = model.init(KEY, (None, 3))
    params = jax.tree_util.tree_map(lambda a: a + 0.3, params)
    k = keras.Sequential([keras.Input((3,)),
                          keras.layers.Dense(4, kernel_regularizer="l2",
                                             bias_regularizer=keras.regularizers.L1(0.1)),
                          keras.layers.BatchNormalization(),
                          keras.layers.Dense(2, kernel_regularizer=keras.regularizers.L1L2(
                              0.01, 0.02))])
    k.layers[0].set_weights([params[0]["kernel"], params[0]["bias"]])
    k.layers[2].set_weights([params[2]["kernel"], params[2]["bias"]])
    np.testing.assert_allclose(model.penalty(params), float(sum(k.losses)), rtol=1e-6)


def test_activity_loss_through_state_matches_keras():
    model = jl.serial(jl.Dense(4, activity_regularizer=R.L2(0.1)), jl.relu,
                      jl.Dense(2, activity_regularizer="l1"),
                      jl.ActivityRegularization(l2=0.5))
    assert model.stateful
    _, params, state = model.init(KEY, (None, 3))
    assert float(jl.activity_loss(state)) == 0.0
    x = rand(3, (6, 3))
    _, eval_state = model.apply(params, state, x, train=False)
    assert float(jl.activity_loss(eval_state)) == 0.0  # eval leaves the losses untouched
    _, new = model.apply(params, state, x, train=True)
    k = keras.Sequential([keras.Input((3,)),
                          keras.layers.Dense(4, activity_regularizer=keras.regularizers.L2(0.1)),
                          keras.layers.ReLU(),
                          keras.layers.Dense(2, activity_regularizer="l1"),
                          keras.layers.ActivityRegularization(l2=0.5)])
    k.layers[0].set_weights([params[0]["kernel"], params[0]["bias"]])
    k.layers[2].set_weights([params[2]["kernel"], params[2]["bias"]])
    with jax.numpy_rank_promotion("allow"):
        k(x)
    np.testing.assert_allclose(jl.activity_loss(new), float(sum(k.losses)), rtol=1e-5)
    # one forward pass gives loss and gradient of the activity term
    def loss(p):
        _, s = model.apply(p, state, x, train=True)
        return jl.activity_loss(s)
    grads = jax.grad(loss)(params)
    assert float(jnp.abs(grads[0]["kernel"]).sum()) > 0


def test_activity_regularizer_multi_output_and_scalar():
    # Keras divides each output's loss by its batch size; a scalar output is not divided.
    reg = R.L1(1.0)
    two = R.with_activity_regularizer(jl.FanOut(2), reg)
    _, _, s = two.init(KEY, (None, 3))
    x = jnp.arange(6.0).reshape(2, 3)
    _, s = two.apply((), s, x, train=True)
    np.testing.assert_allclose(jl.activity_loss(s), 2 * 15.0 / 2)
    total = R.with_activity_regularizer(jl.Lambda(jnp.sum, output_shape=()), reg)
    _, _, s = total.init(KEY, (None, 3))
    _, s = total.apply((), s, x, train=True)
    np.testing.assert_allclose(jl.activity_loss(s), 15.0)


def test_constrain_updates_with_optax_equals_constrain_after_update():
    model = jl.serial(jl.Dense(4, kernel_constraint=C.MaxNorm(0.5)),
                      jl.Dense(2, kernel_constraint="non_neg", bias_constraint=C.UnitNorm()))
    _, params = model.init(KEY, (None, 3))
    grads = jax.tree_util.tree_map(lambda a: jnp.ones_like(a) * -3.0, params)
    sgd = optax.sgd(0.1)
    expected = model.constrain(optax.apply_updates(params, sgd.update(grads, sgd.init(params),
                                                                      params)[0]))
    tx = optax.chain(optax.sgd(0.1), jl.constrain_updates(model))
    opt_state = tx.init(params)
    updates, opt_state = jax.jit(tx.update)(grads, opt_state, params)
    got = optax.apply_updates(params, updates)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert float(jnp.max(jnp.linalg.norm(got[0]["kernel"], axis=0))) <= 0.5 + 1e-6
    assert float(jnp.min(got[1]["kernel"])) >= 0.0
    # without constraints it changes nothing; without params it says what is missing
    plain = optax.chain(optax.sgd(0.1), jl.constrain_updates(lambda p: p))
    u, _ = plain.update(grads, plain.init(params), params)
    ref, _ = sgd.update(grads, sgd.init(params), params)
    for a, b in zip(jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="constrain_updates.*params"):
        jl.constrain_updates(model).update(grads, optax.EmptyState())
    with pytest.raises(ValueError, match="constrain_updates.*Layer"):
        jl.constrain_updates(3)


def test_keras_objects_and_config_dicts_are_taken_as_keras_takes_them():
    """A Keras regularizer, constraint or initializer object, or its config dict, is rebuilt
    as jaxlayers' own of the same name and arguments (as `keras.*.get` takes them); an
    unknown name or a config the constructor refuses is a ValueError naming the kind."""
    from jaxlayers import initializers as I
    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for kobj in (keras.regularizers.L2(0.05), keras.regularizers.L1L2(0.01, 0.02),
                 keras.regularizers.OrthogonalRegularizer(0.1, "columns")):
        for given in (kobj, keras.regularizers.serialize(kobj)):
            ours = R.get(given)
            assert type(ours).__module__ == R.__name__
            np.testing.assert_allclose(ours(jnp.asarray(w)), kobj(jnp.asarray(w)), rtol=1e-5)
    for kobj in (keras.constraints.MaxNorm(0.5, axis=0), keras.constraints.NonNeg(),
                 keras.constraints.MinMaxNorm(0.2, 0.8, rate=0.5)):
        for given in (kobj, keras.constraints.serialize(kobj)):
            np.testing.assert_allclose(C.get(given)(jnp.asarray(w)), kobj(jnp.asarray(w)),
                                       rtol=1e-5)
    key = jax.random.key(0)
    for kobj, ours in ((keras.initializers.HeUniform(), I.HeUniform()),
                       (keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal"),
                        I.VarianceScaling(2.0, "fan_out", "truncated_normal")),
                       (keras.initializers.Constant(0.3), I.Constant(0.3))):
        for given in (kobj, keras.initializers.serialize(kobj)):
            np.testing.assert_array_equal(I.get(given)(key, (4, 3)), ours(key, (4, 3)))
    layer = jl.Dense(3, kernel_initializer=keras.initializers.GlorotNormal(),
                     kernel_regularizer=keras.regularizers.L2(0.1),
                     kernel_constraint=keras.constraints.MaxNorm(2.0))
    _, params = layer.init(key, (None, 4))
    np.testing.assert_allclose(layer.penalty(params),
                               0.1 * np.sum(np.square(params["kernel"])), rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown regularizer 'L3'"):
        R.get({"class_name": "L3", "config": {}})
    with pytest.raises(ValueError, match="initializer HeUniform cannot take"):
        I.get({"class_name": "HeUniform", "config": {"bogus": 1}})
    with pytest.raises(ValueError, match="needs a 'class_name'"):
        C.get({"max_value": 2})


def test_keras_initializers_with_nested_values_and_custom_keras_subclasses():
    """Keras' serialized values inside a config (a numpy array of Constant, a SeedGenerator
    seed) are read as Keras reads them; a Keras class is instantiated (as Keras' get does)
    and rebuilt; a Keras initializer jaxlayers has no constructor for (a user's subclass,
    STFT) is called as Keras calls it, ``init(shape, dtype)``."""
    from jaxlayers import initializers as I
    key = jax.random.key(0)
    const = keras.initializers.Constant(np.array([1.0, 2.0, 3.0]))
    with jax.numpy_rank_promotion("allow"):        # Keras' Constant broadcasts by promotion
        want = np.asarray(const((2, 3), "float32"))
    for given in (const, keras.initializers.serialize(const)):
        np.testing.assert_array_equal(I.get(given)(key, (2, 3), jnp.float32), want)
    seeded = keras.initializers.TruncatedNormal(seed=keras.random.SeedGenerator(3))
    assert I.get(seeded)(key, (4, 3)).shape == (4, 3)

    class Twos(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return keras.ops.full(shape, 2.0, dtype=dtype)

    layer = jl.Dense(3, kernel_initializer=Twos())
    _, params = layer.init(key, (None, 4))
    np.testing.assert_array_equal(params["kernel"], np.full((4, 3), 2.0, np.float32))
    # a Keras class, instantiated with its defaults as Keras' get does, then rebuilt as ours
    np.testing.assert_array_equal(I.get(keras.initializers.HeUniform)(key, (4, 3)),
                                  I.HeUniform()(key, (4, 3)))
    assert type(R.get(keras.regularizers.L2)).__module__ == R.__name__
    assert type(C.get(keras.constraints.NonNeg)).__module__ == C.__name__
    stft = keras.initializers.STFT()
    np.testing.assert_allclose(I.get(stft)(key, (8, 1, 10), jnp.float32),
                               np.asarray(stft((8, 1, 10), "float32")), rtol=1e-6)
