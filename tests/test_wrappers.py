"""Bidirectional and TimeDistributed as containers (core.init_child / call_child /
from_stateful): the place of the wrapped layer in errors, summary rows, extra call keywords,
state, penalties and activity losses. Numbers against Keras are in test_recurrent.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.summary import count

KEY = jax.random.key(0)


def data(shape, seed=1):
    return np.array(jax.random.normal(jax.random.key(seed), shape), np.float32)


def test_shape_error_inside_bidirectional_names_its_place():
    model = jl.serial(jl.Dense(4), jl.Bidirectional(jl.LSTM(2, return_sequences=True)))
    _, params = model.init(KEY, (None, 5, 3))
    wrong = (params[0], (params[1][0], {**params[1][1], "kernel": jnp.zeros((7, 8))}))
    with pytest.raises(jl.ShapeError, match=r"^serial\[1\] > Bidirectional\.backward_layer "
                                            r"LSTM\(2, return_sequences=True\): "
                                            r"params\['kernel'\] has shape \(7, 8\), "
                                            r"expected \(4, 8\)"):
        model.apply(wrong, data((2, 5, 3)))
    with pytest.raises(jl.ShapeError, match=r"^serial\[1\] Bidirectional\(LSTM\(2, "
                                            r"return_sequences=True\)\): expects 2 params "
                                            r"entries \(one per child\), got 3"):
        model.apply((params[0], params[1] + ({},)), data((2, 5, 3)))


def test_shape_error_inside_time_distributed_names_its_place():
    with pytest.raises(jl.ShapeError, match=r"^serial\[0\] > TimeDistributed\.layer "
                                            r"Conv2D\(2, \(3, 3\)\): expected a rank-4 input"):
        jl.serial(jl.TimeDistributed(jl.Conv2D(2, 3))).init(KEY, (None, 4, 8, 3))
    td = jl.TimeDistributed(jl.Dense(2))
    _, params = td.init(KEY, (None, 4, 3))
    with pytest.raises(jl.ShapeError, match=r"^TimeDistributed\.layer Dense\(2\): "):
        td.apply(params, data((2, 4, 5)))


def test_summary_shows_the_wrapped_layers():
    model = jl.serial(jl.Bidirectional(jl.LSTM(2, return_sequences=True)),
                      jl.TimeDistributed(jl.Dense(3)))
    result = jl.summary(model, (None, 5, 4), print_fn=None)
    lstm = 4 * (4 * 2) + 2 * (4 * 2) + 4 * 2           # kernel, recurrent_kernel, bias
    rows = [(r.depth, r.label, r.layer.name, r.output_shape, count(r.params))
            for r in result.rows]
    assert rows == [
        (0, "serial[0]", "Bidirectional(LSTM(2, return_sequences=True))", (None, 5, 4),
         2 * lstm),
        (1, "Bidirectional.forward_layer", "LSTM(2, return_sequences=True)", (None, 5, 2),
         lstm),
        (1, "Bidirectional.backward_layer", "LSTM(2, return_sequences=True)", (None, 5, 2),
         lstm),
        (0, "serial[1]", "TimeDistributed(Dense(3))", (None, 5, 3), 4 * 3 + 3),
        (1, "TimeDistributed.layer", "Dense(3)", (None, 3), 4 * 3 + 3),   # sees batch * time
    ]
    assert result.total_params == 2 * lstm + (4 * 3 + 3)
    text = str(result)
    assert "  Bidirectional.forward_layer LSTM(2, return_sequences=True)" in text
    assert "  TimeDistributed.layer Dense(3)" in text


def test_unknown_call_keyword_is_refused_naming_the_layer():
    td = jl.TimeDistributed(jl.Dense(2))
    _, params = td.init(KEY, (None, 4, 3))
    with pytest.raises(TypeError, match=r"TimeDistributed\(Dense\(2\)\): apply got an "
                                        r"unexpected keyword argument 'initial_state'"):
        td.apply(params, data((2, 4, 3)), initial_state=())


def test_initial_state_reaches_both_copies_through_a_stateful_wrapper():
    """initial_state travels through from_stateful and call_child, in the stateful form too
    (an activity regularizer makes the wrapper stateful)."""
    plain = jl.Bidirectional(jl.GRU(2))
    reg = jl.Bidirectional(jl.GRU(2), activity_regularizer="l2")
    _, params = plain.init(KEY, (None, 4, 3))
    _, _, state = reg.init(KEY, (None, 4, 3))
    x, h0 = data((2, 4, 3)), (data((2, 2), 5), data((2, 2), 6))
    y = plain.apply(params, x, initial_state=h0)
    assert not np.allclose(y, plain.apply(params, x), atol=1e-4)
    np.testing.assert_allclose(reg.apply(params, state, x, initial_state=h0)[0], y, atol=1e-6)
    fwd = jl.GRU(2).apply(params[0], x, initial_state=h0[:1])
    np.testing.assert_allclose(y[:, :2], fwd, atol=1e-6)


def test_activity_loss_of_a_wrapper_in_a_masked_chain_counts_only_its_output():
    """In a chain the wrapper is asked for its mask too; the activity loss is still Keras'
    ``l2 * sum(y ** 2) / batch`` of its output alone."""
    model = jl.serial(jl.Masking(0.0), jl.TimeDistributed(jl.Dense(3), activity_regularizer="l2"))
    _, params, state = model.init(KEY, (None, 5, 4))
    x = data((2, 5, 4))
    x[0, 3:] = 0.0
    y, state = model.apply(params, state, x, train=True)
    np.testing.assert_allclose(jl.activity_loss(state), 0.01 * np.sum(np.square(y)) / 2,
                               rtol=1e-5)


def test_time_distributed_batchnorm_updates_statistics_over_batch_and_time():
    td = jl.TimeDistributed(jl.BatchNormalization())
    _, params, state = td.init(KEY, (None, 3, 2))
    x = data((4, 3, 2))
    y, new = td.apply(params, state, x, train=True)
    flat = x.reshape(12, 2)
    np.testing.assert_allclose(new["moving_mean"], 0.01 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(y, (x - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3), atol=1e-5)
    with pytest.raises(TypeError, match=r"TimeDistributed\(BatchNormalization\(\)\) is "
                                        r"stateful \(its BatchNormalization\(\) carries state\)"):
        td.apply(params, x)


def test_penalty_and_constrain_reach_each_copy():
    bi = jl.Bidirectional(jl.SimpleRNN(2, kernel_regularizer=jl.regularizers.L2(0.5),
                                       kernel_constraint=jl.constraints.NonNeg()))
    _, params = bi.init(KEY, (None, 4, 3))
    expected = sum(0.5 * np.sum(np.square(p["kernel"])) for p in params)
    np.testing.assert_allclose(bi.penalty(params), expected, rtol=1e-6)
    assert all(np.all(p["kernel"] >= 0) for p in bi.constrain(params))
