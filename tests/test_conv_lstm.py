"""ConvLSTM1D/2D/3D against Keras 3 (JAX backend) with the same weights: every option of the
LSTM family that applies; from_keras."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from tests.keras_ref import normal

KEY = jax.random.key(0)
CF = "channels_first"


def _pair(kind, x, filters=3, kernel=2, **kwargs):
    """(jaxlayers output, Keras output) for the same random weights."""
    layer = getattr(jl, kind)(filters, kernel, **kwargs)
    out_shape, params = layer.init(KEY, (None,) + x.shape[1:])
    params = jax.tree_util.tree_map(lambda p: normal(p.shape, seed=p.size) * 0.4, params)
    y = jax.jit(layer.apply)(params, x)
    kl = getattr(keras.layers, kind)(filters, kernel, kernel_initializer="zeros",
                                     recurrent_initializer="zeros", **kwargs)
    with jax.numpy_rank_promotion("allow"):
        kl.build(x.shape)
        kl.set_weights([params[v.path.split("/")[-1]] for v in kl.weights])
        ref = kl(x)
    shapes = jax.tree_util.tree_leaves(out_shape, is_leaf=lambda s: isinstance(s, jl.Shape))
    for s, r in zip(shapes, jax.tree_util.tree_leaves(ref)):
        assert tuple(s[1:]) == tuple(r.shape[1:])
    return y, ref


@pytest.mark.parametrize("kind,shape,kwargs", [
    ("ConvLSTM1D", (2, 3, 6, 2), dict(padding="same", dilation_rate=2, return_sequences=True)),
    ("ConvLSTM1D", (2, 4, 2, 5), dict(data_format=CF, go_backwards=True, return_state=True)),
    ("ConvLSTM2D", (2, 3, 5, 4, 2), dict(strides=2, use_bias=False, activation="relu")),
    ("ConvLSTM2D", (2, 3, 2, 4, 5), dict(data_format=CF, padding="same", return_sequences=True,
                                         go_backwards=True, recurrent_activation="hard_sigmoid")),
    ("ConvLSTM3D", (1, 2, 3, 4, 3, 2), dict(return_state=True, unit_forget_bias=False)),
], ids=lambda v: str(v))
def test_matches_keras(kind, shape, kwargs):
    y, ref = _pair(kind, normal(shape), **kwargs)
    for a, b in zip(jax.tree_util.tree_leaves(y), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_initial_state_matches_keras():
    x = normal((2, 4, 5, 2))
    layer = jl.ConvLSTM1D(2, 3, padding="same", return_sequences=True)
    _, params = layer.init(KEY, (None, 4, 5, 2))
    h0, c0 = normal((2, 5, 2), seed=3), normal((2, 5, 2), seed=4)
    y = layer.apply(params, x, initial_state=[h0, c0])
    kl = keras.layers.ConvLSTM1D(2, 3, padding="same", return_sequences=True)
    with jax.numpy_rank_promotion("allow"):
        kl.build(x.shape)
        kl.set_weights([np.asarray(params[v.path.split("/")[-1]]) for v in kl.weights])
        ref = kl(x, initial_state=[h0, c0])
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_mask_skips_steps():
    """A masked step keeps the states (Keras' RNN rule; Keras' own ConvLSTM fails on a mask
    on the JAX backend, so the reference is the sequence without the masked steps)."""
    x = normal((1, 4, 5, 2))
    mask = np.array([[True, True, False, True]])
    layer = jl.ConvLSTM1D(2, 3, padding="same", return_sequences=True)
    _, params = layer.init(KEY, (None, 4, 5, 2))
    y = layer.apply(params, x, mask=mask)
    kept = layer.apply(params, x[:, [0, 1, 3]])
    np.testing.assert_allclose(y[:, [0, 1, 3]], kept, rtol=1e-6)
    np.testing.assert_allclose(y[0, 2], y[0, 1])          # a masked step repeats the output
    zeros = jl.ConvLSTM1D(2, 3, padding="same", return_sequences=True,
                          zero_output_for_mask=True).apply(params, x, mask=mask)
    assert np.all(np.asarray(zeros)[0, 2] == 0)


def test_stateful_carries_states_and_resets():
    layer = jl.ConvLSTM2D(2, 2, stateful=True)
    _, params, state = layer.init(KEY, (2, 3, 4, 4, 1))
    x = normal((2, 3, 4, 4, 1))
    y1, state = layer.apply(params, state, x)
    y2, state = layer.apply(params, state, x)
    plain = jl.ConvLSTM2D(2, 2, return_state=True)
    out, h, c = plain.apply(params, x)
    np.testing.assert_allclose(y1, out, rtol=1e-6)
    np.testing.assert_allclose(y2, plain.apply(params, x, initial_state=[h, c])[0], rtol=1e-5)
    reset = jl.reset_states(state)
    np.testing.assert_allclose(layer.apply(params, reset, x)[0], y1, rtol=1e-6)


def test_dropout_needs_rng_and_draws_per_gate_masks():
    layer = jl.ConvLSTM1D(2, 2, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
    _, params = layer.init(KEY, (None, 3, 4, 2))
    x = normal((2, 3, 4, 2))
    with pytest.raises(ValueError, match="ConvLSTM1D.*rng"):
        layer.apply(params, x, train=True)
    a = layer.apply(params, x, train=True, rng=jax.random.key(1))
    b = layer.apply(params, x, train=True, rng=jax.random.key(2))
    assert not np.allclose(a, b)
    np.testing.assert_allclose(layer.apply(params, x), jl.ConvLSTM1D(2, 2, return_sequences=True)
                               .apply(params, x), rtol=1e-6)   # inference: no dropout


def test_from_keras_and_errors():
    km = keras.Sequential([keras.Input((3, 4, 4, 2)), keras.layers.ConvLSTM2D(
        2, 3, padding="same", kernel_initializer="zeros", recurrent_initializer="zeros",
        bias_initializer="ones")])
    model, params, _ = jl.from_keras(km)
    x = normal((1, 3, 4, 4, 2))
    with jax.numpy_rank_promotion("allow"):
        ref = np.asarray(km(x))
    np.testing.assert_allclose(np.asarray(model.apply(params, x)), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="ConvLSTM2D: strides > 1 is not compatible with "
                                         "dilation_rate > 1"):
        jl.ConvLSTM2D(2, 2, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="ConvLSTM3D: filters must be a positive int"):
        jl.ConvLSTM3D(0, 2)
    with pytest.raises(jl.ShapeError, match="spatial axes of the input must be known"):
        jl.ConvLSTM1D(2, 2).init(KEY, (None, 3, None, 2))
    with pytest.raises(jl.ShapeError, match="ConvLSTM2D.*rank-5"):
        jl.ConvLSTM2D(2, 2).init(KEY, (None, 3, 4, 2))
