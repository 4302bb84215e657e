"""`jl.fold_for_inference`: the folded model equals the original in inference (numbers,
not just shapes), BatchNormalizations fold only where that is exact, dropouts go."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from tests.keras_ref import keras_model_outputs, normal, numpy_initializers

CF = "channels_first"


def randomized(tree, seed=0):
    """Every leaf random: vectors in [0.5, 1.5] (BN statistics, scales, biases), kernels
    normal, so that a wrong fold shows."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(treedef, [
        jnp.asarray(rng.uniform(0.5, 1.5, l.shape) if l.ndim == 1 else
                    rng.normal(size=l.shape) * 0.5, jnp.float32) for l in leaves])


def kinds(layer):
    nodes = layer.graph.nodes if layer.graph is not None else None
    return [n.layer.kind for n in nodes] if nodes else [c.kind for c in layer.children]


def check_fold(model, x, input_shape=None, left=0):
    """Fold `model` (random params and state) and compare with train=False; `left`
    BatchNormalizations may remain."""
    _, params, state = jl.with_state(model).init(jax.random.key(0), input_shape)
    params, state = randomized(params), randomized(state, 1)
    ref = jax.jit(lambda p, s, x: jl.with_state(model).apply(p, s, x, train=False)[0])(
        params, state, x)
    folded, fparams = jl.fold_for_inference(model, params, state, input_shape=input_shape)
    assert not folded.stateful
    assert kinds(folded).count("BatchNormalization") == left
    assert not {"Dropout", "GaussianNoise", "SpatialDropout2D"} & set(kinds(folded))
    y = jax.jit(folded.apply)(fparams, x)
    np.testing.assert_allclose(y, ref, rtol=2e-5, atol=2e-5 * float(jnp.abs(ref).max()))
    # the folded model is a plain layer: init gives the same param structure, vmap works
    _, fresh = folded.init(jax.random.key(1), input_shape)
    assert jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(fparams)
    batched = jax.vmap(folded.apply, (None, 0))(fparams, x[:, None])
    np.testing.assert_allclose(batched[:, 0], y, rtol=1e-5, atol=1e-5)
    return folded, fparams


def test_serial_folds_every_linear_bn_pair():
    model = jl.serial(
        jl.InputLayer((6, 6, 3)),
        jl.Conv2D(4, 3, use_bias=False), jl.BatchNormalization(), jl.relu,
        jl.DepthwiseConv2D(3, padding="same", depth_multiplier=2), jl.Dropout(0.5),
        jl.BatchNormalization(epsilon=0.1, center=False),   # the dropout goes: folds
        jl.SeparableConv2D(5, 2), jl.BatchNormalization(scale=False), jl.GaussianNoise(0.3),
        jl.Flatten(), jl.Dense(3, activation="linear"), jl.BatchNormalization(momentum=0.9))
    folded, params = check_fold(model, normal((2, 6, 6, 3)))
    assert "bias" in params[1]                  # the bias-free conv got one


def test_bn_on_another_axis_or_after_an_activation_is_kept():
    model = jl.serial(
        jl.InputLayer((5, 4, 3)),
        jl.Conv2D(3, 2, padding="same"), jl.BatchNormalization(axis=1),   # rows: no fold
        jl.Conv2D(3, 2, activation="relu"), jl.BatchNormalization(),       # after relu
        jl.Conv2D(2, 1, data_format=CF), jl.BatchNormalization(axis=1))    # folds
    check_fold(model, normal((2, 5, 4, 3)), left=2)


def test_channels_first_transpose_and_1d_fold():
    model = jl.serial(jl.Conv2DTranspose(3, 2, strides=2, data_format=CF, use_bias=False),
                      jl.BatchNormalization(axis=1))
    check_fold(model, normal((2, 2, 3, 3)), input_shape=(None, 2, 3, 3))
    model1d = jl.serial(jl.DepthwiseConv1D(3, depth_multiplier=3), jl.BatchNormalization(),
                        jl.Conv1D(2, 2, groups=1), jl.BatchNormalization())
    check_fold(model1d, normal((2, 7, 2)), input_shape=(None, 7, 2))


def test_serial_without_input_shape_is_refused():
    model = jl.serial(jl.Conv2D(2, 2), jl.BatchNormalization())
    _, p, s = model.init(jax.random.key(0), (None, 4, 4, 1))
    with pytest.raises(ValueError, match="serial.*input_shape"):
        jl.fold_for_inference(model, p, s)


def test_functional_model_folds_only_single_use_linear_outputs():
    inputs = jl.Input((6, 6, 2))
    a = jl.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    a = jl.BatchNormalization()(a)
    b = jl.Conv2D(4, 1)(inputs)
    c = jl.BatchNormalization()(b)              # b is also used below: no fold
    d = jl.Add()([jl.ReLU()(a), c, b])
    d = jl.Dropout(0.3)(d)
    e = jl.DepthwiseConv2D(3, strides=2, use_bias=False)(d)
    out = jl.GlobalAveragePooling2D()(jl.BatchNormalization()(e))
    model = jl.Model(inputs, [out, a])
    _, p, s = model.init(jax.random.key(0))
    p, s = randomized(p), randomized(s, 1)
    x = normal((2, 6, 6, 2))
    ref = model.apply(p, s, x, train=False)[0]
    folded, fp = jl.fold_for_inference(model, p, s)
    assert kinds(folded).count("BatchNormalization") == 1
    assert "Dropout" not in kinds(folded)
    for y, r in zip(folded.apply(fp, x), ref):
        np.testing.assert_allclose(y, r, rtol=2e-5, atol=2e-5 * float(jnp.abs(r).max()))


def test_imported_keras_mobilenetv2_folds_to_keras_numbers():
    with numpy_initializers():
        km = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                            weights=None, classes=10)
    rng = np.random.default_rng(0)
    for layer in km.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    model, params, state = jl.from_keras(km)
    folded, fparams = jl.fold_for_inference(model, params, state)
    assert "BatchNormalization" not in kinds(folded)
    x = normal((2, 32, 32, 3))
    ref = keras_model_outputs(km, x)[0]
    y = jax.jit(folded.apply)(fparams, x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))


def test_nested_stateless_container_in_a_model_folds():
    """A stateless container inside a functional Model (ConvNeXt's Sequential stem) is kept
    and still receives the model's mask= / return_mask= keywords."""
    inputs = jl.Input((6, 6, 2))
    stem = jl.Sequential([jl.Conv2D(3, 2), jl.LayerNormalization()], name="stem")(inputs)
    out = jl.BatchNormalization()(jl.Conv2D(4, 1)(stem))
    model = jl.Model(inputs, out)
    _, p, s = model.init(jax.random.key(0))
    p, s = randomized(p), randomized(s, 1)
    x = normal((2, 6, 6, 2))
    folded, fp = jl.fold_for_inference(model, p, s)
    assert "BatchNormalization" not in kinds(folded)
    np.testing.assert_allclose(folded.apply(fp, x), model.apply(p, s, x, train=False)[0],
                               rtol=2e-5, atol=2e-5)
