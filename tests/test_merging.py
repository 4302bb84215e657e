"""Merge layers against Keras 3 (JAX backend), as fan-ins in serial, and their errors."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)


def inputs(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(np.float32) for s in shapes]


def keras_out(layer, xs):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(layer([jnp.asarray(x) for x in xs]))


def keras_shape(layer, xs):
    return tuple(layer.compute_output_shape([(None,) + x.shape[1:] for x in xs]))


ELEMENTWISE = [
    ("Add", jl.Add, keras.layers.Add),
    ("Subtract", jl.Subtract, keras.layers.Subtract),
    ("Multiply", jl.Multiply, keras.layers.Multiply),
    ("Average", jl.Average, keras.layers.Average),
    ("Maximum", jl.Maximum, keras.layers.Maximum),
    ("Minimum", jl.Minimum, keras.layers.Minimum),
]
SHAPES = {
    "same": [(3, 4), (3, 4), (3, 4)],
    "same-3d": [(3, 2, 4), (3, 2, 4)],
    "broadcast-1": [(3, 1, 4), (3, 5, 4)],
    "broadcast-both": [(3, 5, 1), (3, 1, 4)],
    "rank": [(3, 4), (3, 5, 4)],
}


@pytest.mark.parametrize("shapes", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("kind,ours,theirs", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_matches_keras(kind, ours, theirs, shapes):
    if kind == "Subtract":
        shapes = shapes[:2]
    xs = inputs(*shapes)
    layer = ours()
    out_shape, params = layer.init(KEY, [(None,) + x.shape[1:] for x in xs])
    assert params == ()
    y = layer.apply(params, xs)
    ref = keras_out(theirs(), xs)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-5)
    assert out_shape == keras_shape(theirs(), xs)
    # a tuple of arrays works the same as a list
    np.testing.assert_allclose(layer.apply(params, tuple(xs)), ref, atol=1e-5)


@pytest.mark.parametrize("axis,shapes", [(-1, [(3, 2, 4), (3, 2, 1), (3, 2, 3)]),
                                         (1, [(3, 2, 4), (3, 5, 4)]),
                                         (-2, [(3, 1, 4), (3, 3, 4)])])
def test_concatenate_matches_keras(axis, shapes):
    xs = inputs(*shapes)
    layer = jl.Concatenate(axis=axis)
    out_shape, params = layer.init(KEY, [(None,) + x.shape[1:] for x in xs])
    ref = keras_out(keras.layers.Concatenate(axis=axis), xs)
    np.testing.assert_allclose(layer.apply(params, xs), ref, atol=1e-6)
    assert out_shape == keras_shape(keras.layers.Concatenate(axis=axis), xs)


@pytest.mark.parametrize("axes,normalize,shapes", [
    (1, False, [(3, 4), (3, 4)]),
    (-1, True, [(3, 4), (3, 4)]),
    ((1, 2), False, [(3, 5, 2), (3, 4, 5)]),
    ((2, 1), True, [(3, 5, 2), (3, 2, 6)]),
    (-1, False, [(3, 2, 4), (3, 4)]),
    ((1, 1), False, [(3, 4), (3, 4, 2)]),
    (2, False, [(3, 2, 3, 4), (3, 5, 3)]),
])
def test_dot_matches_keras(axes, normalize, shapes):
    xs = inputs(*shapes)
    layer = jl.Dot(axes, normalize=normalize)
    out_shape, params = layer.init(KEY, [(None,) + x.shape[1:] for x in xs])
    ref = keras_out(keras.layers.Dot(axes, normalize=normalize), xs)
    y = layer.apply(params, xs)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-5)
    assert out_shape == keras_shape(keras.layers.Dot(axes, normalize=normalize), xs)


def test_dot_normalize_of_zero_vector_is_finite():
    x = np.zeros((2, 3), np.float32)
    y = jl.Dot(1, normalize=True).apply((), [x, x + 1])
    assert np.all(np.isfinite(y)) and np.allclose(y, 0)


def test_free_dims_and_batch():
    out, _ = jl.Add().init(KEY, ((None, None, 4), (None, 5, 4)))
    assert out == (None, None, 4)
    out, _ = jl.Add().init(KEY, ((8, 4), (None, 4)))
    assert out == (8, 4)
    out, _ = jl.Concatenate(1).init(KEY, ((None, None, 4), (None, 5, 4)))
    assert out == (None, None, 4)
    out, _ = jl.Dot(1).init(KEY, ((None, 4), (None, 4)))
    assert out == (None, 1)


def test_merge_layers_as_fan_in_in_serial():
    model = jl.serial(jl.branch(jl.Dense(3), jl.Dense(3), jl.Dense(3)), jl.Average())
    out_shape, params = model.init(KEY, (None, 4))
    assert out_shape == (None, 3)
    x = inputs((2, 4))[0]
    b = params[0][1]
    ys = [x @ np.asarray(p["kernel"]) + np.asarray(p["bias"]) for p in b]
    np.testing.assert_allclose(model.apply(params, x), sum(ys) / 3, atol=1e-5)
    cat = jl.serial(jl.parallel(jl.Dense(2), jl.Dense(3)), jl.Concatenate())
    out_shape, params = cat.init(KEY, ((None, 4), (None, 5)))
    assert out_shape == (None, 5)
    assert cat.apply(params, tuple(inputs((2, 4), (2, 5)))).shape == (2, 5)


def test_bfloat16_stays_bfloat16():
    xs = [x.astype(jnp.bfloat16) for x in inputs((2, 3), (2, 3))]
    for layer in (jl.Add(), jl.Average(), jl.Concatenate(), jl.Dot(1, normalize=True)):
        assert layer.apply((), xs).dtype == jnp.bfloat16


# --------------------------------------------------------------------------- errors


def test_incompatible_shapes_name_the_layer_and_shapes():
    with pytest.raises(jl.ShapeError, match=r"Add\(\).*incompatible.*\(None, 3\), \(None, 4\)"):
        jl.Add().init(KEY, ((None, 3), (None, 4)))
    with pytest.raises(jl.ShapeError, match=r"Multiply\(\).*\(2, 3\), \(2, 4\)"):
        jl.Multiply().apply((), inputs((2, 3), (2, 4)))
    with pytest.raises(jl.ShapeError, match=r"different batch sizes.*\(4, 3\), \(5, 3\)"):
        jl.Add().init(KEY, ((4, 3), (5, 3)))


def test_not_a_list_of_inputs():
    with pytest.raises(jl.ShapeError, match=r"Add\(\).*list of input shapes"):
        jl.Add().init(KEY, (None, 3))
    with pytest.raises(jl.ShapeError, match=r"Maximum\(\).*list of input arrays"):
        jl.Maximum().apply((), np.ones((2, 3)))


def test_exact_input_counts():
    with pytest.raises(jl.ShapeError, match=r"Subtract\(\).*exactly 2 inputs, received 3"):
        jl.Subtract().init(KEY, ((None, 3),) * 3)
    with pytest.raises(jl.ShapeError, match=r"Dot\(1\).*exactly 2 inputs, received 1"):
        jl.Dot(1).init(KEY, ((None, 3),))
    with pytest.raises(jl.ShapeError, match=r"Subtract\(\).*exactly 2 inputs"):
        jl.Subtract().apply((), inputs((2, 3), (2, 3), (2, 3)))


def test_concatenate_errors():
    with pytest.raises(jl.ShapeError, match=r"Concatenate\(\).*every axis but.*"
                                            r"\(None, 2, 4\), \(None, 3, 4\)"):
        jl.Concatenate().init(KEY, ((None, 2, 4), (None, 3, 4)))
    with pytest.raises(jl.ShapeError, match=r"Concatenate\(axis=3\).*rank.*axis 3"):
        jl.Concatenate(axis=3).init(KEY, ((None, 2, 4), (None, 2, 4)))
    with pytest.raises(jl.ShapeError, match=r"Concatenate\(\).*one rank"):
        jl.Concatenate().init(KEY, ((None, 4), (None, 2, 4)))
    with pytest.raises(jl.ShapeError, match=r"Concatenate\(\).*\(2, 2, 4\), \(2, 3, 4\)"):
        jl.Concatenate().apply((), inputs((2, 2, 4), (2, 3, 4)))
    with pytest.raises(ValueError, match="Concatenate: axis must be an int"):
        jl.Concatenate(axis=1.5)


def test_dot_errors():
    with pytest.raises(jl.ShapeError, match=r"Dot\(1\).*axis 1 of the first input is 3, axis 1 "
                                            r"of the second is 4.*\(None, 3\), \(None, 4\)"):
        jl.Dot(1).init(KEY, ((None, 3), (None, 4)))
    with pytest.raises(jl.ShapeError, match=r"Dot\(0\).*batch axis"):
        jl.Dot(0).init(KEY, ((None, 3), (None, 3)))
    with pytest.raises(jl.ShapeError, match=r"Dot\(\(1, 3\)\).*axis 3 is out of range"):
        jl.Dot((1, 3)).init(KEY, ((None, 3), (None, 3, 2)))
    with pytest.raises(jl.ShapeError, match=r"Dot\(1\).*rank >= 2"):
        jl.Dot(1).init(KEY, ((None,), (None, 3)))
    with pytest.raises(jl.ShapeError, match=r"Dot\(1\).*differ in size"):
        jl.Dot(1).apply((), inputs((2, 3), (2, 4)))
    for bad in ("1", (1, 2, 3), (1.0, 2), [1], True):
        with pytest.raises(ValueError, match="Dot: axes must be an int or a pair"):
            jl.Dot(bad)
