"""jl.summary: rows, shapes and parameter counts, from shapes alone."""
import jax
import jax.numpy as jnp

import jaxlayers as jl


def test_seed_model_counts_like_keras():
    model = jl.serial(jl.InputLayer((10,)), jl.Dense(32, activation="relu"),
                      jl.Dense(1, activation="sigmoid"))
    lines = []
    s = jl.summary(model, None, print_fn=lines.append)
    assert s.total_params == 385 and s.trainable_params == 385 and s.non_trainable_params == 0
    assert [jl.summary.__module__ and r.layer.kind for r in s.rows] == ["InputLayer", "Dense",
                                                                     "Dense"]
    counts = [r for r in str(s).splitlines() if "Dense" in r]
    assert counts[0].rstrip().endswith("352") and counts[1].rstrip().endswith("33")
    assert "(None, 32)" in counts[0] and "(None, 1)" in counts[1]
    assert "Total params: 385" in lines[0]


def test_nested_rows_are_indented_and_counted():
    model = jl.serial(jl.Dense(4), jl.serial(jl.Dense(3), jl.relu), jl.Flatten())
    s = jl.summary(model, (None, 2), print_fn=None)
    depths = [(r.depth, r.layer.kind) for r in s.rows]
    assert depths == [(0, "Dense"), (0, "serial"), (1, "Dense"), (1, "relu"), (0, "Flatten")]
    text = str(s).splitlines()
    nested = next(l for l in text if "serial[0] Dense(3)" in l)
    assert nested.startswith("  ")
    assert s.total_params == 2 * 4 + 4 + 4 * 3 + 3


def test_state_counts_as_non_trainable():
    def init(key, shape):
        return shape, {"w": jnp.ones(3)}, {"moving": jnp.zeros(5)}

    def apply(params, state, x, **kw):
        return x, state

    model = jl.serial(jl.Dense(3), jl.Layer(init, apply, name="Stats", stateful=True))
    s = jl.summary(model, (None, 2), print_fn=None)
    assert s.trainable_params == 9 + 3 and s.non_trainable_params == 5


def test_summary_runs_no_computation():
    calls = []

    def init(key, shape):
        calls.append(type(key).__name__)
        return shape, {"w": jax.random.normal(key, (1000, 1000))}

    jl.summary(jl.Layer(init, lambda p, x: x, name="Big"), (None, 3), print_fn=None)
    assert calls and all("Tracer" in c for c in calls)


def test_single_layer_and_multi_output_shapes():
    s = jl.summary(jl.Dense(2), (None, 3), print_fn=None)
    assert len(s.rows) == 1 and s.total_params == 8
    s = jl.summary(jl.branch(jl.Dense(2), jl.Identity()), (None, 3), print_fn=None)
    assert "[(None, 2), (None, 3)]" in str(s)


def test_frozen_weights_count_as_non_trainable():
    import keras
    import numpy as np
    model = jl.serial(jl.Dense(8), jl.relu, jl.Dense(3), jl.BatchNormalization())
    s = jl.summary(model, (None, 4), print_fn=None, frozen=(True, False, False, False))
    assert (s.trainable_params, s.non_trainable_params) == (27 + 6, 40 + 6)
    _, params, _state = model.init(jax.random.key(0), (None, 4))
    mask = jl.trainable_mask(params, (True, False, False, False))
    lines = []
    same = jl.summary(model, (None, 4), print_fn=lines.append, trainable=mask)
    assert same.trainable_params == s.trainable_params and same.total_params == 79
    assert "Non-trainable params: 46" in lines[0]
    # Keras counts a frozen Dense the same way
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.ReLU(),
                          keras.layers.Dense(3), keras.layers.BatchNormalization()])
    k.layers[0].trainable = False
    trainable = sum(int(np.prod(w.shape)) for w in k.trainable_weights)
    assert trainable == s.trainable_params and k.count_params() == s.total_params
    # a function (path, leaf) -> frozen, as for jl.freeze
    biases = jl.summary(model, (None, 4), print_fn=None,
                        frozen=lambda path, leaf: path[-1].key == "bias")
    assert biases.non_trainable_params == 6 + 8 + 3
    import pytest
    with pytest.raises(ValueError, match="not both"):
        jl.summary(model, (None, 4), print_fn=None, frozen=True, trainable=mask)
    with pytest.raises(ValueError, match="structure of the model's params"):
        jl.summary(model, (None, 4), print_fn=None, trainable=mask[:2])
