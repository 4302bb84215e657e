"""Keras 3 RNN options against Keras (JAX backend) with the same weights: every Keras
argument accepted, zero_output_for_mask, implementation, stacked cells (RNN([cell, cell]),
StackedRNNCells) and stateful RNNs with reset_states."""
import inspect

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from tests.test_recurrent import HOLES, MASK, B, F, T, U, close, data, keras_call, perturbed

KEY = jax.random.key(0)
PAIRS = ["LSTM", "GRU", "SimpleRNN", "RNN", "LSTMCell", "GRUCell", "SimpleRNNCell",
         "StackedRNNCells", "Bidirectional", "TimeDistributed"]
# Keras takes these through **kwargs (RNN's zero_output_for_mask, the cells' implementation).
KWARGS = {"LSTM": {"zero_output_for_mask": False, "implementation": 2},
          "GRU": {"zero_output_for_mask": False, "implementation": 2},
          "SimpleRNN": {"zero_output_for_mask": False},
          "LSTMCell": {"implementation": 2}, "GRUCell": {"implementation": 2}}


@pytest.mark.parametrize("name", PAIRS)
def test_every_keras_argument_is_accepted_with_keras_default(name):
    ours = inspect.signature(getattr(jl, name)).parameters
    theirs = dict(inspect.signature(getattr(keras.layers, name).__init__).parameters)
    theirs = {k: p.default for k, p in theirs.items() if k not in ("self", "kwargs")}
    theirs.update(KWARGS.get(name, {}))
    for arg, default in theirs.items():
        assert arg in ours, f"{name} lacks Keras' argument {arg}"
        assert ours[arg].default == default, (name, arg, ours[arg].default, default)


def keras_again(klayer, x):
    """A further call of an already built Keras layer, as numpy."""
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(klayer(x))


def keras_flat(params):
    """Keras' get_weights() order for one cell's params or a tuple of them."""
    if isinstance(params, tuple):
        return [w for p in params for w in keras_flat(p)]
    return [np.asarray(params[k]) for k in ("kernel", "recurrent_kernel", "bias") if k in params]


def init(layer, shape=(None, None, F)):
    out = layer.init(KEY, shape)
    return out[0], perturbed(out[1]), out[2:]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("opts", [{"return_sequences": True}, {"go_backwards": True,
                                                                 "return_sequences": True},
                                  {}], ids=["seq", "backwards-seq", "last"])
def test_zero_output_for_mask_matches_keras(kind, opts):
    layer = getattr(jl, kind)(U, zero_output_for_mask=True, **opts)
    _, params, _ = init(layer)
    x = data()
    mask = np.concatenate([MASK[:3], HOLES])
    mask[1, -1] = False          # a masked last step: the last output is zeros too
    y = layer.apply(params, x, mask=mask)
    ref = keras_call(getattr(keras.layers, kind)(U, zero_output_for_mask=True, **opts), x,
                     keras_flat(params), mask=mask)
    close(y, ref)
    if opts.get("return_sequences") and not opts.get("go_backwards"):
        assert np.all(np.asarray(y)[~mask] == 0)
    plain = getattr(jl, kind)(U, **opts).apply(params, x, mask=mask)
    assert not np.allclose(plain, y)       # the default repeats the previous output


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_implementation_is_a_hint_with_keras_numbers(kind):
    layer = getattr(jl, kind)(U, implementation=1, return_sequences=True)
    _, params, _ = init(layer)
    x = data()
    y = layer.apply(params, x)
    close(y, getattr(jl, kind)(U, return_sequences=True).apply(params, x))
    close(y, keras_call(getattr(keras.layers, kind)(U, implementation=1, return_sequences=True),
                        x, keras_flat(params)))
    with pytest.raises(ValueError, match=f"{kind}: implementation must be one of 1, 2, received 3"):
        getattr(jl, kind)(U, implementation=3)


def _stack(kinds):
    return [getattr(jl, k)(U) for k in kinds], [getattr(keras.layers, k)(U) for k in kinds]


STACKS = [("LSTMCell", "GRUCell"), ("LSTMCell", "LSTMCell"), ("GRUCell", "SimpleRNNCell")]


@pytest.mark.parametrize("kinds", STACKS, ids="-".join)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_stacked_cells_match_keras(kinds, masked):
    ours, theirs = _stack(kinds)
    layer = jl.RNN(ours, return_sequences=True, return_state=True)
    out_shape, params, _ = init(layer)
    assert isinstance(params, tuple) and len(params) == 2 and params[1]["kernel"].shape[0] == U
    x = data()
    kw = {"mask": np.concatenate([MASK[:3], HOLES])} if masked else {}
    y = layer.apply(params, x, **kw)
    ref = keras_call(keras.layers.RNN(theirs, return_sequences=True, return_state=True), x,
                     keras_flat(params), **kw)
    # Keras' structure: (output, states of cell 0, states of cell 1), (h, c) or (h,) each
    assert [len(s) for s in y[1:]] == [2 if k == "LSTMCell" else 1 for k in kinds]
    assert jax.tree_util.tree_structure(out_shape, is_leaf=lambda s: isinstance(s, jl.Shape)) \
        == jax.tree_util.tree_structure(y)
    close(y, ref)
    same = jl.RNN(jl.StackedRNNCells(ours), return_sequences=True, return_state=True)
    close(same.apply(params, x, **kw), y, atol=0)
    h = layer.apply(params, x, initial_state=y[1:], **kw)   # Keras' nesting goes back in
    close(h, keras_call(keras.layers.RNN(_stack(kinds)[1], return_sequences=True,
                                         return_state=True), x, keras_flat(params),
                        initial_state=[list(s) for s in y[1:]], **kw))


def test_stacked_cells_errors():
    with pytest.raises(ValueError, match="cells must be a non-empty list"):
        jl.StackedRNNCells([])
    with pytest.raises(ValueError, match=r"cells\[1\] must be a Cell"):
        jl.RNN([jl.LSTMCell(2), jl.Dense(2)])
    hoisting = jl.Cell(lambda k, n: {}, lambda p, x, s, e: (x, (x,)), 2, 2,
                       project=lambda p, xs, rng, train: (xs, None), name="Hoisting")
    with pytest.raises(ValueError, match=r"cells\[1\] Hoisting projects whole sequences"):
        jl.StackedRNNCells([jl.GRUCell(2), hoisting])
    layer = jl.RNN([jl.GRUCell(2), jl.LSTMCell(3)], return_state=True)
    _, params = layer.init(KEY, (None, 4, F))
    with pytest.raises(jl.ShapeError, match=r"initial_state must be 2 state\(s\)"):
        layer.apply(params, data((2, 4, F)), initial_state=(jnp.zeros((2, 2)),
                                                            jnp.zeros((2, 3))))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN", "stacked"])
def test_stateful_matches_keras_over_calls_and_reset(kind):
    if kind == "stacked":
        layer = jl.RNN([jl.LSTMCell(U), jl.GRUCell(U)], stateful=True, return_sequences=True)
        klayer = keras.layers.RNN([keras.layers.LSTMCell(U), keras.layers.GRUCell(U)],
                                  stateful=True, return_sequences=True)
    else:
        layer = getattr(jl, kind)(U, stateful=True, return_sequences=True)
        klayer = getattr(keras.layers, kind)(U, stateful=True, return_sequences=True)
    assert layer.stateful
    out_shape, params, (state,) = init(layer, (B, None, F))
    assert out_shape == (B, None, U)
    x1, x2 = data(seed=1), data(seed=2)
    step = jax.jit(layer.apply)
    y1, state = step(params, state, x1)
    y2, state = layer.apply(params, state, x2)           # eval: the states still advance
    close(y1, keras_call(klayer, x1, keras_flat(params)))
    close(y2, keras_again(klayer, x2))
    assert not np.allclose(y2, layer.apply(params, jl.reset_states(state), x2)[0])
    for v in keras.tree.flatten(klayer.states):   # reset_state() fails on nested states
        v.assign(np.zeros(v.shape, np.float32))
    y3, _ = layer.apply(params, jl.reset_states(state), x1)
    close(y3, keras_again(klayer, x1))
    close(y3, y1)


def test_stateful_in_a_model_reset_keeps_other_state():
    model = jl.serial(jl.BatchNormalization(), jl.LSTM(3, stateful=True, return_sequences=True),
                      jl.GRU(2, stateful=True))
    _, params, state = model.init(KEY, (2, 4, F))
    x = data((2, 4, F))
    _, state = model.apply(params, state, x, train=True)
    reset = jl.reset_states(state)
    assert jax.tree_util.tree_structure(reset) == jax.tree_util.tree_structure(state)
    close(reset[0], state[0], atol=0)                      # BatchNormalization untouched
    assert all(not np.any(np.asarray(a)) for a in jax.tree_util.tree_leaves(reset[1:]))
    assert any(np.any(np.asarray(a)) for a in jax.tree_util.tree_leaves(state[1:]))
    # an explicit initial_state wins over the kept one, and its end is kept
    lstm = jl.LSTM(3, stateful=True, return_state=True)
    _, p, s = lstm.init(KEY, (2, 4, F))
    h0 = (jnp.ones((2, 3)), jnp.ones((2, 3)))
    (y, h, c), s = lstm.apply(p, s, x, initial_state=h0)
    close((y, h, c), jl.LSTM(3, return_state=True).apply(p, x, initial_state=h0), atol=0)
    close(s["rnn_state"], (h, c), atol=0)


def test_stateful_errors():
    with pytest.raises(jl.ShapeError, match=r"LSTM\(3, stateful=True\): stateful=True needs a "
                                             r"fixed batch size.*\(None, 4, 3\)"):
        jl.LSTM(3, stateful=True).init(KEY, (None, 4, F))
    layer = jl.GRU(3, stateful=True)
    _, params, state = layer.init(KEY, (2, 4, F))
    with pytest.raises(jl.ShapeError, match=r"keeps states for a batch of 2, received an "
                                             r"input of shape \(5, 4, 3\)"):
        layer.apply(params, state, data((5, 4, F)))
    with pytest.raises(ValueError, match="stateful must be True or False"):
        jl.SimpleRNN(3, stateful="yes")


def test_stateful_bidirectional_and_time_distributed():
    bi = jl.Bidirectional(jl.LSTM(3, stateful=True))
    _, params, state = bi.init(KEY, (2, 4, F))
    x = data((2, 4, F))
    y1, state = bi.apply(params, state, x)
    y2, _ = bi.apply(params, state, x)
    assert not np.allclose(y1, y2)
    close(bi.apply(params, jl.reset_states(state), x)[0], y1, atol=0)
    td = jl.TimeDistributed(jl.GRU(2, stateful=True))
    out_shape, _, state = td.init(KEY, (2, 3, 4, F))       # the inner RNN sees batch 2 * 3
    assert out_shape == (2, 3, 2) and state["rnn_state"][0].shape == (6, 2)


def _keras_import_roundtrip(km, xs):
    layer, params, state = jl.from_keras(km)
    for x in xs:
        y, state = jl.with_state(layer).apply(params, state, x)
        close(y, keras_again(km, x))


def test_keras_import_stacked_and_stateful():
    with jax.numpy_rank_promotion("allow"):
        km = keras.Sequential([keras.Input(batch_shape=(B, T, F)),
                               keras.layers.RNN([keras.layers.LSTMCell(3),
                                                 keras.layers.GRUCell(2)], stateful=True,
                                                return_sequences=True),
                               keras.layers.LSTM(2, stateful=True)])
        km.set_weights([np.asarray(w) + 0.1 for w in km.get_weights()])
        _keras_import_roundtrip(km, [data(seed=1), data(seed=2)])


# --------------------------------------------------------------------------- constructor arguments


@pytest.mark.parametrize("make, match", [
    (lambda: jl.LSTM("3"), r"LSTM: units must be a positive int, received '3'"),
    (lambda: jl.LSTMCell(2.5), r"LSTMCell: units must be a positive int, received 2\.5"),
    (lambda: jl.SimpleRNN(3, use_bias="no"), r"SimpleRNN: use_bias must be True or False"),
    (lambda: jl.LSTM(3, unit_forget_bias=1), r"LSTM: unit_forget_bias must be True or False"),
    (lambda: jl.GRUCell(3, dropout="0.2"), r"GRUCell: dropout must be a number in \[0, 1\)"),
    (lambda: jl.GRU(3, seed="x"), r"GRU: seed must be a non-negative int, received 'x'"),
    (lambda: jl.RNN(jl.GRUCell(2), return_sequences="yes"),
     r"RNN\(GRUCell\(2\)\): return_sequences must be True or False, received 'yes'"),
    (lambda: jl.Bidirectional(3), r"Bidirectional: layer must be a recurrent layer"),
    (lambda: jl.Bidirectional(jl.LSTM(2), backward_layer=2.0),
     r"Bidirectional: backward_layer must be a recurrent layer"),
    (lambda: jl.TimeDistributed(None), r"TimeDistributed: layer must be a Layer, an \(init, "
                                        r"apply\) pair or a function, received None"),
])
def test_argument_of_the_wrong_type_is_a_clear_type_error(make, match):
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize("make, match", [
    (lambda: jl.LSTM(-1), r"LSTM: units must be a positive int, received -1"),
    (lambda: jl.SimpleRNNCell(2, recurrent_dropout=1.0), r"SimpleRNNCell: recurrent_dropout"),
    (lambda: jl.LSTM(3, use_cudnn="yes"), r"LSTM: use_cudnn must be one of 'auto', True, "
                                          r"False, received 'yes'"),
    (lambda: jl.LSTMCell(2, implementation=True), r"LSTMCell: implementation must be one of"),
    (lambda: jl.GRUCell(2, activity_regularizer="l2"),
     r"GRUCell: activity_regularizer='l2' is not supported \(a cell runs inside the RNN's "
     r"loop; give it to the RNN layer"),
    (lambda: jl.StackedRNNCells([jl.GRUCell(2)], activity_regularizer="l1"),
     r"StackedRNNCells: activity_regularizer='l1' is not supported"),
    (lambda: jl.Bidirectional(jl.LSTM(2), weights=[np.zeros(2)]),
     r"Bidirectional: weights=.* is not supported \(params are a pytree"),
    (lambda: jl.Bidirectional(jl.LSTM(2), merge_mode="max"),
     r"Bidirectional: merge_mode must be one of 'concat', 'sum', 'mul', 'ave', None"),
    (lambda: jl.LSTM(2, trainable=False), r"LSTM: trainable=False .*jl\.freeze"),
    (lambda: jl.GRUCell(2, dtype="float16"), r"GRUCell: dtype must be None or 'float32'"),
    (lambda: jl.TimeDistributed(jl.Dense(2), name="a/b"), r"TimeDistributed: name must be"),
])
def test_bad_values_are_refused_naming_layer_and_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_name_keys_a_model_and_labels_cells():
    x = jl.Input((T, F))
    h = jl.Bidirectional(jl.LSTM(U, return_sequences=True), name="encoder")(x)
    y = jl.RNN([jl.GRUCell(U, name="first"), jl.LSTMCell(U, name="second")], name="decoder")(h)
    _, params = jl.Model(x, y).init(KEY, None)
    assert list(params) == ["encoder", "decoder"]
    assert jl.GRUCell(U, name="first").label == "first" and jl.GRUCell(U).label == ""
    assert jl.StackedRNNCells([jl.GRUCell(U)], name="stack").label == "stack"


@pytest.mark.parametrize("wrapper", ["Bidirectional", "TimeDistributed"])
def test_wrapper_activity_regularizer_matches_keras(wrapper):
    """Keras' base-layer activity_regularizer on a wrapper: the penalty of its output
    (a new argument of both wrappers), divided by the batch."""
    reg = dict(activity_regularizer=jl.regularizers.L2(0.1))
    kreg = dict(activity_regularizer=keras.regularizers.L2(0.1))
    x = data()
    if wrapper == "Bidirectional":
        layer = jl.Bidirectional(jl.GRU(U, return_sequences=True), **reg)
        klayer = keras.layers.Bidirectional(keras.layers.GRU(U, return_sequences=True), **kreg)
    else:
        layer = jl.TimeDistributed(jl.Dense(U), **reg)
        klayer = keras.layers.TimeDistributed(keras.layers.Dense(U), **kreg)
    assert layer.stateful
    _, params, state = layer.init(KEY, (None, None, F))
    params = perturbed(params)
    y, state = layer.apply(params, state, x, train=True)
    ref = keras_call(klayer, x, keras_flat(params) if wrapper == "Bidirectional" else
                     [np.asarray(params["kernel"]), np.asarray(params["bias"])])
    close(y, ref)
    np.testing.assert_allclose(jl.activity_loss(state), float(klayer.losses[0]), rtol=1e-5)
    np.testing.assert_allclose(jl.activity_loss(state), 0.1 * np.sum(np.square(ref)) / B,
                               rtol=1e-5)
