"""The functional API (Input, Model, named), its summary and plot, against Keras 3."""
import dataclasses
import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.graph import Node, SymbolicTensor, snake_case

KEY = jax.random.key(0)
L = keras.layers


def data(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    out = [rng.normal(size=s).astype(np.float32) for s in shapes]
    return out if len(out) > 1 else out[0]


def copy_to_keras(kmodel, params):
    """Set every Keras layer named like a params entry to that entry's weights."""
    for name, p in params.items():
        if isinstance(p, dict) and "kernel" in p:
            w = [np.asarray(p["kernel"])] + ([np.asarray(p["bias"])] if "bias" in p else [])
            kmodel.get_layer(name).set_weights(w)


def keras_call(kmodel, x):
    with jax.numpy_rank_promotion("allow"):
        y = kmodel(x)
    return jax.tree_util.tree_map(np.asarray, y)


# --------------------------------------------------------------------------- vs Keras


def test_residual_block_matches_keras():
    inp = jl.Input((6,))
    h = jl.Dense(6, activation="relu")(inp)
    h = jl.Dense(6)(h)
    h = jl.Activation("relu")(jl.Add()([inp, h]))
    model = jl.Model(inp, jl.Dense(3)(h))
    out_shape, params = model.init(KEY)
    assert out_shape == (None, 3)
    assert sorted(params) == ["activation", "add", "dense", "dense_1", "dense_2"]

    kin = keras.Input((6,))
    kh = L.Dense(6, activation="relu", name="dense")(kin)
    kh = L.Dense(6, name="dense_1")(kh)
    kh = L.Activation("relu")(L.Add()([kin, kh]))
    kmodel = keras.Model(kin, L.Dense(3, name="dense_2")(kh))
    copy_to_keras(kmodel, params)
    x = data((4, 6))
    np.testing.assert_allclose(model.apply(params, x), keras_call(kmodel, x), atol=1e-5)


def test_inception_block_matches_keras():
    inp = jl.Input((5,))
    a = jl.Dense(4, activation="relu")(inp)
    b = jl.Dense(5, activation="tanh")(jl.Dense(3)(inp))
    c = jl.Maximum()([jl.Dense(2)(inp), jl.Dense(2)(inp)])
    model = jl.Model(inp, jl.Dense(3)(jl.Concatenate()([a, b, c])))
    out_shape, params = model.init(KEY)
    assert params["dense_5"]["kernel"].shape == (11, 3)

    kin = keras.Input((5,))
    ka = L.Dense(4, activation="relu", name="dense")(kin)
    kb = L.Dense(5, activation="tanh", name="dense_2")(L.Dense(3, name="dense_1")(kin))
    kc = L.Maximum()([L.Dense(2, name="dense_3")(kin), L.Dense(2, name="dense_4")(kin)])
    kmodel = keras.Model(kin, L.Dense(3, name="dense_5")(L.Concatenate()([ka, kb, kc])))
    copy_to_keras(kmodel, params)
    x = data((4, 5))
    np.testing.assert_allclose(model.apply(params, x), keras_call(kmodel, x), atol=1e-5)


def two_in_two_out():
    a, b = jl.Input((5,), name="a"), jl.Input((3,), name="b")
    h = jl.Dense(6, activation="relu")(jl.Concatenate()([a, b]))
    out1 = jl.Dense(2)(h)
    out2 = jl.Dense(1)(jl.Multiply()([jl.Dense(6)(b), h]))
    return a, b, out1, out2


def test_two_inputs_two_outputs_match_keras():
    a, b, out1, out2 = two_in_two_out()
    model = jl.Model([a, b], [out1, out2])
    out_shape, params = model.init(KEY)
    assert out_shape == ((None, 2), (None, 1))

    ka, kb = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    kh = L.Dense(6, activation="relu", name="dense")(L.Concatenate()([ka, kb]))
    k1 = L.Dense(2, name="dense_1")(kh)
    k2 = L.Dense(1, name="dense_3")(L.Multiply()([L.Dense(6, name="dense_2")(kb), kh]))
    kmodel = keras.Model([ka, kb], [k1, k2])
    copy_to_keras(kmodel, params)
    xa, xb = data((4, 5), (4, 3))
    y1, y2 = model.apply(params, [xa, xb])
    r1, r2 = keras_call(kmodel, [xa, xb])
    np.testing.assert_allclose(y1, r1, atol=1e-5)
    np.testing.assert_allclose(y2, r2, atol=1e-5)
    # tuples and lists are both accepted; outputs come back as a tuple
    assert isinstance(model.apply(params, (xa, xb)), tuple)


def test_dict_inputs_and_outputs():
    a, b, out1, out2 = two_in_two_out()
    model = jl.Model({"x": a, "y": b}, {"logits": out1, "score": out2})
    out_shape, params = model.init(KEY, {"x": (7, 5), "y": (7, 3)})
    assert out_shape == {"logits": (7, 2), "score": (7, 1)}
    xa, xb = data((4, 5), (4, 3))
    ys = model.apply(params, {"x": xa, "y": xb})
    ref = jl.Model([a, b], [out1, out2]).apply(params, [xa, xb])
    np.testing.assert_array_equal(ys["logits"], ref[0])
    np.testing.assert_array_equal(ys["score"], ref[1])


def siamese():
    shared = jl.Dense(4, activation="tanh")
    a, b = jl.Input((3,)), jl.Input((3,))
    d = jl.Subtract()([shared(a), shared(b)])
    return a, b, shared, jl.Dense(1)(d)


def test_siamese_shares_weights_and_matches_keras():
    a, b, shared, out = siamese()
    model = jl.Model([a, b], out)
    _, params = model.init(KEY)
    assert sorted(params) == ["dense", "dense_1", "subtract"]

    ks = L.Dense(4, activation="tanh", name="dense")
    ka, kb = keras.Input((3,)), keras.Input((3,))
    kmodel = keras.Model([ka, kb], L.Dense(1, name="dense_1")(L.Subtract()([ks(ka), ks(kb)])))
    copy_to_keras(kmodel, params)
    xa, xb = data((4, 3), (4, 3))
    np.testing.assert_allclose(model.apply(params, [xa, xb]), keras_call(kmodel, [xa, xb]),
                               atol=1e-5)


def test_shared_kernel_gets_the_sum_of_both_branches_gradients():
    a, b, shared, out = siamese()
    model = jl.Model([a, b], out)
    _, params = model.init(KEY)
    # The same graph with two distinct layers holding copies of the shared weights.
    a2, b2 = jl.Input((3,)), jl.Input((3,))
    left, right = jl.Dense(4, activation="tanh"), jl.Dense(4, activation="tanh")
    untied = jl.Model([a2, b2], jl.Dense(1)(jl.Subtract()([left(a2), right(b2)])))
    _, p2 = untied.init(KEY)
    p2 = {"dense": params["dense"], "dense_1": params["dense"], "subtract": (),
          "dense_2": params["dense_1"]}
    xs = data((4, 3), (4, 3))
    loss = lambda m, p: jnp.sum(m.apply(p, xs) ** 2)
    g = jax.grad(lambda p: loss(model, p))(params)
    g2 = jax.grad(lambda p: loss(untied, p))(p2)
    np.testing.assert_allclose(loss(model, params), loss(untied, p2), atol=1e-6)
    for k in ("kernel", "bias"):
        np.testing.assert_allclose(g["dense"][k], g2["dense"][k] + g2["dense_1"][k], atol=1e-5)
        assert not np.allclose(g2["dense"][k], 0) and not np.allclose(g2["dense_1"][k], 0)
    np.testing.assert_allclose(g["dense_1"]["kernel"], g2["dense_2"]["kernel"], atol=1e-5)


# --------------------------------------------------------------------------- vs serial


def test_functional_and_serial_give_identical_outputs():
    inp = jl.Input((5,))
    h = jl.Dense(8)(inp)
    h = jl.Activation("relu")(h)
    h = jl.Dropout(0.5)(h)
    func = jl.Model(inp, jl.Dense(3)(h))
    ser = jl.serial(jl.Dense(8), jl.Activation("relu"), jl.Dropout(0.5), jl.Dense(3))
    _, sp = ser.init(KEY, (None, 5))
    fp = {"dense": sp[0], "activation": sp[1], "dropout": sp[2], "dense_1": sp[3]}
    assert jax.tree_util.tree_structure(fp) == jax.tree_util.tree_structure(
        func.init(KEY)[1])
    x = data((4, 5))
    np.testing.assert_array_equal(func.apply(fp, x), ser.apply(sp, x))
    # node i gets fold_in(rng, i), as child i of serial: even dropout masks agree
    rng = jax.random.key(3)
    np.testing.assert_array_equal(func.apply(fp, x, rng=rng, train=True),
                                  ser.apply(sp, x, rng=rng, train=True))


def test_models_nest_in_models_and_in_serial():
    inp = jl.Input((4,))
    inner = jl.Model(inp, jl.Dense(3, activation="tanh")(inp), name="block")
    x = jl.Input((4,))
    outer = jl.Model(x, jl.Dense(2)(inner(x)))
    _, params = outer.init(KEY)
    assert sorted(params) == ["block", "dense"] and sorted(params["block"]) == ["dense"]
    xs = data((3, 4))
    h = inner.apply(params["block"], xs)
    np.testing.assert_allclose(outer.apply(params, xs),
                               jl.Dense(2).apply(params["dense"], h), atol=1e-6)
    ser = jl.serial(inner, jl.Dense(2))
    out_shape, sp = ser.init(KEY, (None, 4))
    assert out_shape == (None, 2) and sorted(sp[0]) == ["dense"]
    # an unnamed nested model is called "functional"
    y = jl.Input((4,))
    other = jl.Model(y, jl.Model(inp, jl.Dense(3)(inp))(y))
    assert sorted(other.init(KEY)[1]) == ["functional"]


def test_serial_called_on_symbolic_tensors():
    inp = jl.Input((4,))
    block = jl.serial(jl.Dense(5), jl.relu, jl.Dense(2))
    t = block(inp)
    assert isinstance(t, SymbolicTensor) and t.shape == (None, 2)
    model = jl.Model(inp, t)
    _, params = model.init(KEY)
    x = data((3, 4))
    np.testing.assert_array_equal(model.apply(params, x), block.apply(params["serial"], x))
    # a branch returns a tuple of tensors, which a merge layer takes
    u, v = jl.branch(jl.Dense(2), jl.Dense(2))(inp)
    assert jl.Model(inp, jl.Add()([u, v])).init(KEY)[0] == (None, 2)


def test_names_user_given_and_automatic():
    inp = jl.Input((4,), name="features")
    h = jl.named(jl.Dense(3), "dense")(jl.Dense(4)(inp))   # the user's "dense" wins
    model = jl.Model(inp, jl.named(jl.Dense(2), "head")(h), name="net")
    _, params = model.init(KEY)
    assert sorted(params) == ["dense", "dense_1", "head"]
    assert params["dense"]["kernel"].shape == (4, 3)
    assert params["dense_1"]["kernel"].shape == (4, 4)
    assert model.label == "net" and model.name == "Functional('net')"
    assert snake_case("Conv2D") == "conv2d"
    assert snake_case("BatchNormalization") == "batch_normalization"
    assert snake_case("GlobalAveragePooling2D") == "global_average_pooling2d"


def test_init_is_deterministic_and_layers_get_distinct_keys():
    inp = jl.Input((4,))
    model = jl.Model(inp, jl.Dense(4)(jl.Dense(4)(inp)))
    _, p1 = model.init(KEY)
    _, p2 = model.init(KEY)
    np.testing.assert_array_equal(p1["dense"]["kernel"], p2["dense"]["kernel"])
    assert not np.allclose(p1["dense"]["kernel"], p1["dense_1"]["kernel"])


def test_dtype_of_inputs_propagates():
    ids = jl.Input((3,), dtype=jnp.int32)
    doubled = jl.Lambda(lambda x: x * 2)(ids)
    assert doubled.dtype == jnp.int32
    assert jl.Lambda(lambda x: x * 0.5)(ids).dtype == jnp.float32


def test_stateful_model_penalty_and_constrain():
    inp = jl.Input((3,))
    h = jl.Dense(4, kernel_regularizer="l2", activity_regularizer="l2")(inp)
    out = jl.Dense(2, kernel_constraint="non_neg")(h)
    model = jl.Model(inp, out)
    assert model.stateful
    out_shape, params, state = model.init(KEY)
    assert sorted(state) == ["dense", "dense_1"] and state["dense_1"] == ()
    x = data((5, 3))
    y, new_state = model.apply(params, state, x, train=True)
    assert float(new_state["dense"]["activity_loss"]) > 0
    k = params["dense"]["kernel"]
    expected = float(jl.Dense(4, kernel_regularizer="l2").penalty(params["dense"]))
    np.testing.assert_allclose(float(model.penalty(params)), expected, rtol=1e-6)
    assert expected > 0
    constrained = model.constrain(params)
    assert np.all(np.asarray(constrained["dense_1"]["kernel"]) >= 0)
    np.testing.assert_array_equal(constrained["dense"]["kernel"], k)


def test_shared_dropout_gets_a_key_per_call():
    inp = jl.Input((50,))
    drop = jl.Dropout(0.5)
    model = jl.Model(inp, [drop(inp), drop(inp)])
    _, params = model.init(KEY)
    x = np.ones((2, 50), np.float32)
    y1, y2 = model.apply(params, x, rng=jax.random.key(1), train=True)
    assert not np.array_equal(y1, y2)
    again = model.apply(params, x, rng=jax.random.key(1), train=True)
    np.testing.assert_array_equal(again[0], y1)
    with pytest.raises(ValueError, match=r"Dropout\(0.5\).*rng"):
        model.apply(params, x, train=True)


def test_jit_grad_and_vmap_through_a_model():
    a, b, out1, out2 = two_in_two_out()
    model = jl.Model([a, b], [out1, out2])
    _, params = model.init(KEY)
    xs = data((4, 5), (4, 3))
    ref = model.apply(params, xs)
    jitted = jax.jit(model.apply)(params, xs)
    np.testing.assert_allclose(jitted[0], ref[0], atol=1e-6)
    g = jax.grad(lambda p: jnp.sum(model.apply(p, xs)[1]))(params)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(params)
    stacked = jax.vmap(lambda k: model.init(k)[1])(jax.random.split(KEY, 2))
    assert stacked["dense"]["kernel"].shape == (2, 8, 6)


# --------------------------------------------------------------------------- errors


def test_shape_mismatch_in_a_merge_is_raised_when_calling():
    inp = jl.Input((4,))
    x, y = jl.Dense(3)(inp), jl.Dense(5)(inp)
    with pytest.raises(jl.ShapeError, match=r"Add\(\) called on \[Dense\(3\) -> \(None, 3\), "
                                            r"Dense\(5\) -> \(None, 5\)\].*incompatible"):
        jl.Add()([x, y])
    with pytest.raises(jl.ShapeError, match=r"'head' Dense\(2\) called on \[InputLayer"):
        jl.named(jl.Dense(2), "head")(jl.Input(()))


def test_disconnected_graph_names_the_layers():
    a, b = jl.Input((3,), name="a"), jl.Input((3,), name="b")
    out = jl.Add()([jl.Dense(2)(a), jl.named(jl.Dense(2), "from_b")(b)])
    with pytest.raises(ValueError, match=r"disconnected: layer\(s\) 'from_b' use Input 'b' "
                                         r"\(None, 3\), which is not among the model's inputs \(a\)"):
        jl.Model(a, out)
    with pytest.raises(ValueError, match=r"disconnected: the outputs include Input 'b' "):
        jl.Model(a, b)   # an output that is itself a foreign Input: no layer to name


def test_cycle_is_reported_with_the_layers_on_it():
    inp = jl.Input((3,))
    h = jl.named(jl.Dense(3), "first")(inp)
    out = jl.named(jl.Dense(3), "second")(h)
    # Nodes are immutable through the API; forge a cycle to check the graph walk.
    h.node.inputs = out
    with pytest.raises(ValueError, match=r"cycle: .*'first' Dense\(3\) -> 'second' Dense\(3\)"):
        jl.Model(inp, out)


def test_duplicate_names():
    inp = jl.Input((3,))
    out = jl.named(jl.Dense(3), "x")(jl.named(jl.Dense(3), "x")(inp))
    with pytest.raises(ValueError, match=r"two layers are named 'x': Dense\(3\) and Dense\(3\)"):
        jl.Model(inp, out)
    inp = jl.Input((3,), name="x")
    with pytest.raises(ValueError, match="two layers are named 'x'"):
        jl.Model(inp, jl.named(jl.Dense(3), "x")(inp))
    with pytest.raises(ValueError, match="named: a layer name must be a non-empty string"):
        jl.named(jl.Dense(3), "")


def test_shared_layer_with_incompatible_inputs():
    d = jl.Dense(2)
    a, b = jl.Input((3,)), jl.Input((4,))
    out = jl.Concatenate()([d(a), d(b)])
    with pytest.raises(jl.ShapeError, match=r"dense Dense\(2\): the layer is shared, but its "
                                            r"calls on .*\(None, 3\).* and on .*\(None, 4\)"):
        jl.Model([a, b], out)


def test_bad_calls_and_bad_model_arguments():
    with pytest.raises(TypeError, match=r"Dense\(2\) is not called on arrays"):
        jl.Dense(2)(np.ones((2, 3)))
    inp = jl.Input((3,))
    with pytest.raises(TypeError, match="keyword arguments"):
        jl.Dense(2)(inp, training=True)
    with pytest.raises(TypeError, match="one tensor"):
        jl.Dense(2)(inp, inp)
    h = jl.Dense(2)(inp)
    with pytest.raises(ValueError, match="every input must be a tensor made by jl.Input"):
        jl.Model(h, jl.Dense(2)(h))
    with pytest.raises(ValueError, match="every output must be a symbolic tensor"):
        jl.Model(inp, np.ones(3))
    with pytest.raises(TypeError, match="cannot be unpacked"):
        u, v = h
    with pytest.raises(ValueError, match="Input: give the shape"):
        jl.Input()


def test_init_and_apply_check_inputs():
    a, b, out1, out2 = two_in_two_out()
    model = jl.Model([a, b], [out1, out2], name="two")
    with pytest.raises(jl.ShapeError, match=r"two: input 'b' expects shape \(None, 3\), "
                                            r"received \(None, 4\)"):
        model.init(KEY, ((None, 5), (None, 4)))
    with pytest.raises(jl.ShapeError, match="two: expected input shapes structured like"):
        model.init(KEY, (None, 5))
    _, params = model.init(KEY)
    with pytest.raises(jl.ShapeError, match=r"two > b.*\(2, 4\)"):
        model.apply(params, data((2, 5), (2, 4)))
    with pytest.raises(jl.ShapeError, match="two: expected inputs structured like"):
        model.apply(params, data((2, 5)))


# --------------------------------------------------------------------------- summary, plot


def test_summary_has_connected_to_column():
    a, b, shared, out = siamese()
    model = jl.Model([a, b], out, name="siamese")
    result = jl.summary(model, print_fn=None)
    text = str(result)
    assert 'Model: "siamese"' in text and "Connected to" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line[:1].isalpha()}
    assert lines["dense"].rstrip().endswith("input_layer[0][0], input_layer_1[0][0]")
    assert lines["subtract"].rstrip().endswith("dense[0][0], dense[1][0]")
    assert lines["input_layer"].rstrip().endswith("-")
    assert result.total_params == (3 * 4 + 4) + (4 + 1)
    assert [r.label for r in result.rows] == ["input_layer", "input_layer_1", "dense",
                                              "subtract", "dense_1"]
    # a concrete batch flows through the rows
    assert jl.summary(model, ((8, 3), (8, 3)), print_fn=None).rows[-1].output_shape == (8, 1)


def test_serial_summary_is_unchanged():
    text = str(jl.summary(jl.serial(jl.Dense(3), jl.relu), (None, 4), print_fn=None))
    assert "Connected to" not in text
    assert "serial[0] Dense(3)" in text and "serial[1] relu" in text


def test_plot_model_writes_png_and_svg(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    a, b, out1, out2 = two_in_two_out()
    model = jl.Model([a, b], [out1, out2])
    png = jl.plot_model(model, to_file=str(tmp_path / "m.png"))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "m.svg")
    jl.plot_model(model, to_file=str(svg))
    text = svg.read_text()
    for name in ("a", "b", "concatenate", "dense_3", "multiply", "(None, 6)"):
        assert name in text
    jl.plot_model(jl.serial(jl.Dense(3), jl.relu), (None, 4), to_file=str(tmp_path / "s.svg"),
                  show_shapes=False)
    assert "serial[1]" in (tmp_path / "s.svg").read_text()
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        jl.plot_model(model, to_file=str(tmp_path / "m.gif"))


def test_plot_layout_ranks_follow_the_graph():
    from jaxlayers.plot import layout
    # 0 -> 1 -> 3, 0 -> 2 -> 3: a diamond
    places = layout(4, [(0, 1), (0, 2), (1, 3), (2, 3)])
    assert [r for r, _ in places] == [0, 1, 1, 2]
    assert places[1][1] < places[2][1] and places[0][1] == places[3][1] == 0


def test_plot_model_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    inp = jl.Input((3,))
    with pytest.raises(ImportError, match=r"pip install 'jaxlayers\[plot\]'"):
        jl.plot_model(jl.Model(inp, jl.Dense(2)(inp)), to_file=str(tmp_path / "m.png"))


# --------------------------------------------------------------------------- masks


def test_masks_travel_through_the_graph_and_merges():
    """A mask made by Embedding(mask_zero=True) reaches the LSTM through a Dense and an Add
    (Keras' merge rule: the OR of the inputs' masks, here the same mask; checked
    against Keras in test_keras_import)."""
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 0, 0, 0]], np.int32)
    emb, dense, lstm = jl.Embedding(8, 3, mask_zero=True), jl.Dense(3), jl.LSTM(2)
    inp = jl.Input((5,), dtype=jnp.int32)
    e = emb(inp)
    model = jl.Model(inp, lstm(jl.Add()([e, dense(e)])))
    _, params = model.init(KEY)
    h = emb.apply(params["embedding"], tokens)
    h = h + dense.apply(params["dense"], h)
    want = lstm.apply(params["lstm"], h, mask=tokens != 0)
    np.testing.assert_allclose(model.apply(params, tokens), want, rtol=1e-6)
    assert not np.allclose(lstm.apply(params["lstm"], h), want)    # the mask mattered


IDS = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 0, 0, 0, 0], [4, 4, 4, 4, 4, 9], [0] * 6])
IDS_B = np.array([[1, 2, 0, 0, 0, 0], [6, 1, 2, 3, 0, 0], [0, 0, 0, 0, 0, 0], [8] * 6])


def noisy(params, seed=3):
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(
        tree, [np.asarray(l) + 0.3 * rng.standard_normal(l.shape).astype(np.float32)
               for l in leaves])


def keras_weights(p):
    """Keras' weight list of a leaf's params dict, or of a (forward, backward) pair."""
    if isinstance(p, tuple):
        return [w for q in p for w in keras_weights(q)]
    order = ("embeddings", "kernel", "recurrent_kernel", "bias")
    return [np.asarray(p[k]) for k in order if k in p]


def set_all(kmodel, params):
    for name, p in params.items():
        if jax.tree_util.tree_leaves(p):
            kmodel.get_layer(name).set_weights(keras_weights(p))


def test_embedding_mask_zero_feeds_lstm_like_keras():
    inputs = jl.Input((None,), dtype=jnp.int32)
    x = jl.Embedding(10, 3, mask_zero=True)(inputs)
    model = jl.Model(inputs, jl.LSTM(4)(x))
    assert model.masking.takes and model.masking.out == "self"   # threads masks
    _, params = model.init(KEY)
    params = noisy(params)
    y = jax.jit(model.apply)(params, IDS)

    with jax.numpy_rank_promotion("allow"):  # Keras relies on it
        kin = keras.Input((None,), dtype="int32")
        kx = L.Embedding(10, 3, mask_zero=True, name="embedding")(kin)
        kmodel = keras.Model(kin, L.LSTM(4, name="lstm")(kx))
        set_all(kmodel, params)
    np.testing.assert_allclose(y, keras_call(kmodel, IDS), atol=1e-5)
    # the same graph as a serial gives the same numbers; without the mask they differ
    flat = jl.serial(jl.Embedding(10, 3, mask_zero=True), jl.LSTM(4))
    np.testing.assert_allclose(y, flat.apply((params["embedding"], params["lstm"]), IDS),
                               atol=1e-6)
    unmasked = jl.LSTM(4).apply(params["lstm"], jnp.take(params["embedding"]["embeddings"],
                                                         IDS, axis=0))
    assert not np.allclose(y, unmasked, atol=1e-3)


def test_masking_feeds_bidirectional_gru_like_keras():
    x = data((4, 6, 3))
    lengths = np.array([6, 4, 1, 0])
    x[np.arange(6)[None, :] >= lengths[:, None]] = -1.0
    inputs = jl.Input((None, 3))
    h = jl.Masking(-1.0)(inputs)
    h = jl.Dense(3, activation="tanh")(h)
    model = jl.Model(inputs, jl.Bidirectional(jl.GRU(4, return_sequences=True))(h))
    _, params = model.init(KEY)
    params = noisy(params)
    (y, mask) = model.apply(params, x, return_mask=True)
    np.testing.assert_array_equal(mask, np.arange(6)[None, :] < lengths[:, None])

    with jax.numpy_rank_promotion("allow"):
        kin = keras.Input((None, 3))
        kh = L.Masking(-1.0)(kin)
        kh = L.Dense(3, activation="tanh", name="dense")(kh)
        kmodel = keras.Model(kin, L.Bidirectional(L.GRU(4, return_sequences=True),
                                                  name="bidirectional")(kh))
        set_all(kmodel, params)
    np.testing.assert_allclose(y, keras_call(kmodel, x), atol=1e-5)


@pytest.mark.parametrize("merge", ["Concatenate", "Add", "Maximum"])
def test_two_masked_branches_merged_then_lstm_like_keras(merge):
    """Keras ORs the masks of merged inputs (Maximum also lets the unmasked side win)."""
    a, b = jl.Input((None,), dtype=jnp.int32), jl.Input((None,), dtype=jnp.int32)
    ea = jl.Embedding(10, 3, mask_zero=True)(a)
    eb = jl.Embedding(10, 3, mask_zero=True)(b)
    merged = getattr(jl, merge)()([ea, eb])
    model = jl.Model([a, b], jl.LSTM(4, return_sequences=True)(merged))
    _, params = model.init(KEY)
    params = noisy(params)
    y, mask = jax.jit(lambda p, x: model.apply(p, x, return_mask=True))(params, [IDS, IDS_B])
    np.testing.assert_array_equal(mask, (IDS != 0) | (IDS_B != 0))

    with jax.numpy_rank_promotion("allow"):
        ka, kb = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
        kea = L.Embedding(10, 3, mask_zero=True, name="embedding")(ka)
        keb = L.Embedding(10, 3, mask_zero=True, name="embedding_1")(kb)
        kmerged = getattr(L, merge)()([kea, keb])
        kmodel = keras.Model([ka, kb], L.LSTM(4, return_sequences=True, name="lstm")(kmerged))
        set_all(kmodel, params)
    np.testing.assert_allclose(y, keras_call(kmodel, [IDS, IDS_B]), atol=1e-5)


def test_masks_cross_nested_models_and_serials():
    inputs = jl.Input((None,), dtype=jnp.int32)
    encoder = jl.Model(inputs, jl.Dense(3)(jl.Embedding(10, 3, mask_zero=True)(inputs)),
                       name="encoder")
    outer_in = jl.Input((None,), dtype=jnp.int32)
    model = jl.Model(outer_in, jl.LSTM(4)(encoder(outer_in)))
    in_serial = jl.serial(encoder, jl.LSTM(4))
    _, params = model.init(KEY)
    y = model.apply(params, IDS)
    np.testing.assert_allclose(y, in_serial.apply((params["encoder"], params["lstm"]), IDS),
                               atol=1e-6)
    flat = jl.serial(jl.Embedding(10, 3, mask_zero=True), jl.Dense(3), jl.LSTM(4))
    enc = params["encoder"]
    np.testing.assert_allclose(
        y, flat.apply((enc["embedding"], enc["dense"], params["lstm"]), IDS), atol=1e-6)
    # an explicit mask for a model input; a wrongly structured one is a ShapeError
    x = data((4, 6, 3))
    seq_in = jl.Input((None, 3))
    seq = jl.Model(seq_in, jl.LSTM(4)(jl.Dense(3)(seq_in)))
    _, p = seq.init(KEY)
    m = IDS != 0
    np.testing.assert_allclose(
        seq.apply(p, x, mask=m),
        jl.LSTM(4).apply(p["lstm"], jl.Dense(3).apply(p["dense"], x), mask=m), atol=1e-6)
    with pytest.raises(jl.ShapeError, match="masks structured like the inputs"):
        seq.apply(p, x, mask=[m, m])
