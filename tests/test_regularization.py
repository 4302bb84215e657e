"""Regularization layers: inference mode against Keras 3, training-mode statistics and
structure (masks cannot be shared with Keras' generator), rng handling, property tests for
Dropout, ActivityRegularization's loss against Keras' `layer.losses`."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxlayers as jl

KEY = jax.random.key(0)
RANDOM = [
    (lambda: jl.SpatialDropout1D(0.4), lambda: keras.layers.SpatialDropout1D(0.4), (4, 5, 6)),
    (lambda: jl.SpatialDropout2D(0.4), lambda: keras.layers.SpatialDropout2D(0.4), (2, 3, 4, 5)),
    (lambda: jl.SpatialDropout3D(0.4, "channels_first"),
     lambda: keras.layers.SpatialDropout3D(0.4, "channels_first"), (2, 3, 2, 2, 2)),
    (lambda: jl.GaussianNoise(0.3), lambda: keras.layers.GaussianNoise(0.3), (3, 7)),
    (lambda: jl.GaussianDropout(0.3), lambda: keras.layers.GaussianDropout(0.3), (3, 7)),
    (lambda: jl.AlphaDropout(0.3), lambda: keras.layers.AlphaDropout(0.3), (3, 7)),
]


def rand(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("ours,theirs,shape", RANDOM)
def test_inference_mode_is_identity_like_keras(ours, theirs, shape):
    layer = ours()
    out_shape, params = layer.init(KEY, (None,) + shape[1:])
    assert out_shape == (None,) + shape[1:] and params == ()
    x = rand(0, shape)
    y = layer.apply(params, x)  # no rng needed
    with jax.numpy_rank_promotion("allow"):
        np.testing.assert_array_equal(y, np.asarray(theirs()(x, training=False)))
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("ours,theirs,shape", RANDOM)
def test_training_needs_rng_and_varies_with_it(ours, theirs, shape):
    layer = ours()
    x = jnp.asarray(rand(0, shape))
    with pytest.raises(ValueError, match=layer.kind + r".*rng"):
        layer.apply((), x, train=True)
    a = layer.apply((), x, rng=jax.random.key(1), train=True)
    b = layer.apply((), x, rng=jax.random.key(2), train=True)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, layer.apply((), x, rng=jax.random.key(1), train=True))


@pytest.mark.parametrize("make,channel", [
    (lambda: jl.SpatialDropout1D(0.5), -1),
    (lambda: jl.SpatialDropout2D(0.5), -1),
    (lambda: jl.SpatialDropout2D(0.5, data_format="channels_first"), 1),
    (lambda: jl.SpatialDropout3D(0.5), -1),
    (lambda: jl.SpatialDropout3D(0.5, data_format="channels_first"), 1),
])
def test_spatial_dropout_drops_whole_channels(make, channel):
    layer = make()
    rank = {"SpatialDropout1D": 3, "SpatialDropout2D": 4, "SpatialDropout3D": 5}[layer.kind]
    shape = [16] + [3] * (rank - 1)
    shape[channel] = 8
    x = jnp.asarray(np.abs(rand(0, tuple(shape))) + 0.1)
    y = np.asarray(layer.apply((), x, rng=jax.random.key(3), train=True))
    y = np.moveaxis(y, channel, 1).reshape(16, 8, -1)
    xs = np.moveaxis(np.asarray(x), channel, 1).reshape(16, 8, -1)
    dropped = np.all(y == 0, axis=-1)
    kept = np.all(np.isclose(y, xs * 2.0), axis=-1)
    assert np.all(dropped | kept)  # each (example, channel) map is dropped or kept whole
    assert 0.3 < dropped.mean() < 0.7


def test_gaussian_layers_statistics_match_keras():
    x = jnp.ones((400, 250))
    for ours, theirs in [(jl.GaussianNoise(0.5), keras.layers.GaussianNoise(0.5, seed=1)),
                         (jl.GaussianDropout(0.5), keras.layers.GaussianDropout(0.5, seed=1))]:
        y = np.asarray(ours.apply((), x, rng=jax.random.key(0), train=True))
        k = np.asarray(theirs(np.ones((400, 250), np.float32), training=True))
        np.testing.assert_allclose(y.mean(), k.mean(), atol=0.01)
        np.testing.assert_allclose(y.std(), k.std(), rtol=0.02)
    np.testing.assert_allclose(y.std(), 1.0, rtol=0.02)  # sqrt(rate / (1 - rate)) = 1


def test_alpha_dropout_formula_and_self_normalization():
    rate = 0.2
    x = jax.nn.selu(jax.random.normal(jax.random.key(0), (500, 200)))  # ~ mean 0, var 1
    y = np.asarray(jl.AlphaDropout(rate).apply((), x, rng=jax.random.key(1), train=True))
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    dropped = np.isclose(y, a * alpha_p + b, atol=1e-6)
    kept_ok = np.isclose(y, a * np.asarray(x) + b, atol=1e-5)
    assert np.all(dropped | kept_ok)
    assert abs(dropped.mean() - rate) < 0.01
    k = np.asarray(keras.layers.AlphaDropout(rate, seed=2)(np.asarray(x), training=True))
    np.testing.assert_allclose([y.mean(), y.var()], [k.mean(), k.var()], atol=0.02)
    np.testing.assert_allclose([y.mean(), y.var()], [float(x.mean()), float(x.var())], atol=0.03)


def test_activity_regularization_matches_keras_losses():
    layer = jl.ActivityRegularization(l1=0.01, l2=0.02)
    assert layer.stateful
    _, params, state = layer.init(KEY, (None, 3, 4))
    x = rand(1, (5, 3, 4))
    y, new = layer.apply(params, state, x, train=True)
    np.testing.assert_array_equal(y, x)
    theirs = keras.layers.ActivityRegularization(l1=0.01, l2=0.02)
    theirs(x)
    np.testing.assert_allclose(jl.activity_loss(new), float(sum(theirs.losses)), rtol=1e-6)
    # eval leaves the recorded loss alone
    _, kept = layer.apply(params, state, x, train=False)
    assert float(jl.activity_loss(kept)) == 0.0
    with pytest.raises(ValueError, match="ActivityRegularization.*l1"):
        jl.ActivityRegularization(l1=-1.0)


def test_constructor_and_shape_errors():
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="SpatialDropout1D.*rate"):
            jl.SpatialDropout1D(bad)
        with pytest.raises(ValueError, match="AlphaDropout.*rate"):
            jl.AlphaDropout(bad)
    with pytest.raises(ValueError, match="GaussianNoise.*stddev"):
        jl.GaussianNoise(2.0)
    with pytest.raises(ValueError, match=r"GaussianDropout: rate must be a number in \[0, 1\), received 1"):
        jl.GaussianDropout(1.0)
    with pytest.raises(ValueError, match="SpatialDropout2D.*data_format"):
        jl.SpatialDropout2D(0.1, data_format="NHWC")
    with pytest.raises(jl.ShapeError, match=r"SpatialDropout2D\(0.1\).*rank-4.*\(None, 3, 4\)"):
        jl.SpatialDropout2D(0.1).init(KEY, (None, 3, 4))
    with pytest.raises(jl.ShapeError, match=r"SpatialDropout1D\(0.1\).*rank-3.*\(2, 3\)"):
        jl.SpatialDropout1D(0.1).apply((), jnp.ones((2, 3)), rng=KEY, train=True)
    with pytest.raises(jl.ShapeError, match=r"AlphaDropout\(0.1\).*rank-2"):
        jl.AlphaDropout(0.1, noise_shape=(None, 1)).init(KEY, (None, 3, 4))


def test_zero_rate_needs_no_rng():
    x = jnp.ones((2, 3, 4))
    for layer in (jl.SpatialDropout1D(0.0), jl.GaussianNoise(0.0), jl.GaussianDropout(0.0),
                  jl.AlphaDropout(0.0)):
        np.testing.assert_array_equal(layer.apply((), x, train=True), x)


# --------------------------------------------------------------------------- Dropout properties


@settings(max_examples=12, deadline=None)
@given(rate=st.floats(0.05, 0.9), seed=st.integers(0, 2 ** 16))
def test_dropout_keeps_about_one_minus_rate_and_preserves_the_mean(rate, seed):
    x = jnp.full((200, 100), 2.0)
    y = np.asarray(jl.Dropout(rate).apply((), x, rng=jax.random.key(seed), train=True))
    kept = (y != 0).mean()
    assert abs(kept - (1 - rate)) < 0.02  # 20000 draws: > 6 standard deviations
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - rate), rtol=1e-6)
    sigma = 2.0 * np.sqrt(rate / (1 - rate)) / np.sqrt(y.size)  # std of the mean
    assert abs(y.mean() - 2.0) < 6 * sigma


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2 ** 16),
       make=st.sampled_from([lambda: jl.Dropout(0.5), lambda: jl.SpatialDropout1D(0.5),
                             lambda: jl.GaussianDropout(0.5), lambda: jl.AlphaDropout(0.5),
                             lambda: jl.GaussianNoise(0.5)]))
def test_two_layers_under_one_parent_key_draw_different_noise(seed, make):
    model = jl.serial(make(), make())
    parallel = jl.branch(make(), make())
    x = jnp.ones((4, 6, 8))
    _, p = parallel.init(KEY, (None, 6, 8))
    a, b = parallel.apply(p, x, rng=jax.random.key(seed), train=True)
    assert not np.allclose(a, b)
    # in serial, the second layer's noise is not the first one's replayed
    first = model.children[0].apply((), x, rng=jax.random.fold_in(jax.random.key(seed), 0),
                                    train=True)
    second_same_key = model.children[1].apply((), first, rng=jax.random.fold_in(
        jax.random.key(seed), 0), train=True)
    y = model.apply(((), ()), x, rng=jax.random.key(seed), train=True)
    assert not np.allclose(y, second_same_key)
