"""Convolution layers against Keras 3 (JAX backend) with the same weights, plus shape
inference, regularizer/constraint hooks and error messages."""
import jax
import jax.test_util
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers import depthwise
from tests.keras_ref import keras_apply, keras_layer, normal, random_params

CF = "channels_first"
KEY = jax.random.key(0)


@pytest.fixture(params=["xla", "shifted"])
def lowering(request, monkeypatch):
    """Run the test once with each grouped/depthwise lowering forced (depthwise.LOWERING)."""
    monkeypatch.setattr(depthwise, "LOWERING", request.param)
    return request.param


def check_against_keras(layer, klayer, input_shape, order=("kernel", "bias")):
    """Init `layer` for `input_shape`, randomize its params, compare with Keras' output."""
    x = normal(input_shape)
    out_shape, params = random_params(layer, (None,) + tuple(input_shape[1:]))
    y = layer.apply(params, x)
    ref = keras_apply(klayer, x, [params[k] for k in order if k in params])
    assert y.shape == ref.shape
    assert tuple(out_shape[1:]) == ref.shape[1:]
    np.testing.assert_allclose(np.asarray(y), ref, atol=1e-5, rtol=1e-5)


CONV = [
    # (rank, kwargs, input shape)
    (1, dict(filters=3, kernel_size=3), (2, 9, 2)),
    (1, dict(filters=3, kernel_size=2, strides=3), (2, 10, 2)),
    (1, dict(filters=3, kernel_size=4, strides=2, padding="same"), (2, 9, 2)),
    (1, dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2), (2, 8, 2)),
    (1, dict(filters=4, kernel_size=3, groups=2, activation="relu"), (2, 7, 4)),
    (1, dict(filters=3, kernel_size=3, padding="same", data_format=CF), (2, 2, 7)),
    (1, dict(filters=2, kernel_size=2, padding="causal", data_format=CF), (2, 3, 5)),
    (2, dict(filters=3, kernel_size=(3, 2)), (2, 6, 5, 2)),
    (2, dict(filters=3, kernel_size=3, strides=(2, 1), padding="same"), (2, 7, 6, 2)),
    (2, dict(filters=3, kernel_size=(2, 3), padding="same", strides=2), (2, 6, 7, 3)),
    (2, dict(filters=2, kernel_size=2, dilation_rate=(2, 1), use_bias=False), (2, 6, 5, 2)),
    (2, dict(filters=6, kernel_size=2, groups=3), (2, 5, 5, 6)),
    (2, dict(filters=4, kernel_size=3, groups=2, padding="same", data_format=CF), (2, 4, 5, 5)),
    (2, dict(filters=3, kernel_size=3, strides=2, data_format=CF, activation="tanh"),
     (2, 2, 7, 6)),
    (3, dict(filters=2, kernel_size=2), (2, 4, 3, 4, 2)),
    (3, dict(filters=2, kernel_size=(3, 2, 2), strides=2, padding="same"), (2, 5, 4, 3, 2)),
    (3, dict(filters=4, kernel_size=2, groups=2, dilation_rate=2), (2, 4, 4, 4, 2)),
    (3, dict(filters=2, kernel_size=2, padding="same", data_format=CF), (2, 2, 3, 4, 3)),
    (1, dict(filters=6, kernel_size=3, groups=3, padding="causal", dilation_rate=2), (2, 8, 3)),
    (2, dict(filters=6, kernel_size=3, groups=3, strides=2, padding="same"), (2, 7, 6, 6)),
    (2, dict(filters=4, kernel_size=(3, 2), groups=4, data_format=CF), (2, 4, 6, 5)),
]


@pytest.mark.parametrize("rank,kwargs,shape", CONV, ids=lambda v: str(v))
def test_conv_matches_keras(rank, kwargs, shape, lowering):
    kind = f"Conv{rank}D"
    check_against_keras(getattr(jl, kind)(**kwargs), keras_layer(kind, **kwargs), shape)


TRANSPOSE = [
    (1, dict(filters=3, kernel_size=3), (2, 5, 2)),
    (1, dict(filters=3, kernel_size=2, strides=3), (2, 4, 2)),
    (1, dict(filters=2, kernel_size=3, strides=2, padding="same"), (2, 4, 3)),
    (1, dict(filters=2, kernel_size=3, strides=2, output_padding=1), (2, 4, 3)),
    (1, dict(filters=2, kernel_size=4, strides=3, padding="same", output_padding=2), (2, 4, 3)),
    (1, dict(filters=2, kernel_size=3, dilation_rate=2, data_format=CF), (2, 3, 4)),
    (2, dict(filters=3, kernel_size=(3, 2), strides=(2, 1)), (2, 3, 4, 2)),
    (2, dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 3, 4, 2)),
    (2, dict(filters=2, kernel_size=3, strides=2, padding="same", output_padding=(1, 0)),
     (2, 3, 3, 2)),
    (2, dict(filters=2, kernel_size=2, strides=(3, 2), output_padding=(2, 1)), (2, 3, 3, 2)),
    (2, dict(filters=2, kernel_size=2, dilation_rate=2, padding="same"), (2, 4, 3, 2)),
    (2, dict(filters=3, kernel_size=3, strides=2, data_format=CF, activation="relu"),
     (2, 2, 3, 4)),
    (2, dict(filters=2, kernel_size=4, strides=2, padding="same", output_padding=1,
             data_format=CF), (2, 3, 3, 3)),
    (3, dict(filters=2, kernel_size=2, strides=2), (2, 2, 3, 2, 2)),
    (3, dict(filters=2, kernel_size=3, strides=(1, 2, 2), padding="same", use_bias=False),
     (2, 2, 2, 3, 2)),
    (3, dict(filters=2, kernel_size=2, strides=2, output_padding=1, data_format=CF),
     (2, 2, 2, 2, 3)),
]


@pytest.mark.parametrize("rank,kwargs,shape", TRANSPOSE, ids=lambda v: str(v))
def test_conv_transpose_matches_keras(rank, kwargs, shape):
    kind = f"Conv{rank}DTranspose"
    check_against_keras(getattr(jl, kind)(**kwargs), keras_layer(kind, **kwargs), shape)


DEPTHWISE = [
    (1, dict(kernel_size=3), (2, 7, 3)),
    (1, dict(kernel_size=2, depth_multiplier=3, strides=2, padding="same"), (2, 7, 2)),
    (1, dict(kernel_size=3, dilation_rate=2, data_format=CF), (2, 3, 8)),
    (2, dict(kernel_size=(3, 2), depth_multiplier=2), (2, 5, 5, 3)),
    (2, dict(kernel_size=3, strides=2, padding="same", activation="relu"), (2, 6, 5, 2)),
    (2, dict(kernel_size=2, depth_multiplier=2, dilation_rate=2, use_bias=False), (2, 5, 5, 2)),
    (2, dict(kernel_size=3, depth_multiplier=3, padding="same", data_format=CF), (2, 2, 5, 4)),
    (2, dict(kernel_size=(3, 2), strides=(2, 3), depth_multiplier=2, data_format=CF),
     (2, 3, 7, 8)),
    (2, dict(kernel_size=4, strides=2, padding="same"), (2, 7, 6, 3)),
    (2, dict(kernel_size=(2, 3), dilation_rate=(1, 2), padding="same", data_format=CF),
     (2, 2, 5, 6)),
]


@pytest.mark.parametrize("rank,kwargs,shape", DEPTHWISE, ids=lambda v: str(v))
def test_depthwise_matches_keras(rank, kwargs, shape, lowering):
    kind = f"DepthwiseConv{rank}D"
    check_against_keras(getattr(jl, kind)(**kwargs), keras_layer(kind, **kwargs), shape)


SEPARABLE = [
    (1, dict(filters=3, kernel_size=3), (2, 7, 2)),
    (1, dict(filters=4, kernel_size=2, depth_multiplier=2, strides=2, padding="same"), (2, 7, 3)),
    (1, dict(filters=2, kernel_size=3, dilation_rate=2, data_format=CF), (2, 2, 8)),
    (2, dict(filters=3, kernel_size=(3, 2)), (2, 5, 5, 2)),
    (2, dict(filters=4, kernel_size=3, depth_multiplier=2, strides=2, padding="same",
             activation="relu"), (2, 6, 5, 3)),
    (2, dict(filters=2, kernel_size=2, dilation_rate=2, use_bias=False), (2, 5, 5, 2)),
    (2, dict(filters=3, kernel_size=3, depth_multiplier=2, padding="same", data_format=CF),
     (2, 2, 5, 4)),
]


@pytest.mark.parametrize("rank,kwargs,shape", SEPARABLE, ids=lambda v: str(v))
def test_separable_matches_keras(rank, kwargs, shape, lowering):
    kind = f"SeparableConv{rank}D"
    check_against_keras(getattr(jl, kind)(**kwargs), keras_layer(kind, **kwargs),
                        shape, order=("depthwise_kernel", "pointwise_kernel", "bias"))


# --------------------------------------------------------------------------- lowerings

LOWERED = [
    (lambda: jl.DepthwiseConv2D(3, padding="same", depth_multiplier=2), (2, 5, 4, 3)),
    (lambda: jl.DepthwiseConv2D((2, 3), strides=2, data_format=CF, use_bias=False),
     (2, 2, 6, 7)),
    (lambda: jl.DepthwiseConv1D(3, dilation_rate=2, padding="same"), (2, 8, 2)),
    (lambda: jl.DepthwiseConv2D(2, strides=3, depth_multiplier=2), (2, 8, 7, 2)),  # remainder
    (lambda: jl.SeparableConv2D(3, 3, strides=2, padding="same", depth_multiplier=2),
     (2, 5, 6, 2)),
    (lambda: jl.Conv2D(4, 3, groups=2, padding="same", data_format=CF), (2, 4, 5, 4)),
    (lambda: jl.Conv1D(6, 2, groups=3, padding="causal", dilation_rate=2), (2, 6, 3)),
]


def _loss(layer):
    return lambda params, x: jnp.sum(jnp.sin(layer.apply(params, x)))


@pytest.mark.parametrize("make,shape", LOWERED)
def test_lowerings_check_grads(make, shape, lowering):
    """Both lowerings' gradients (reverse and forward mode, jitted) against finite
    differences, in float64."""
    layer = make()
    with jax.enable_x64(True):
        _, params = random_params(layer, (None,) + shape[1:])
        params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float64) * 0.5, params)
        x = jnp.asarray(normal(shape), jnp.float64)
        jax.test_util.check_grads(jax.jit(_loss(layer)), (params, x), order=1,
                                  modes=("rev", "fwd"), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("make,shape", LOWERED)
def test_lowerings_agree_under_jit_grad_and_vmap(make, shape, monkeypatch):
    """The shifted lowering's outputs and gradients equal XLA's grouped conv, under jit
    and under vmap over a stack of inputs."""
    layer = make()
    _, params = random_params(layer, (None,) + shape[1:])
    xs = jnp.stack([normal(shape, seed=s) for s in range(3)])
    results = {}
    for mode in ("xla", "shifted"):
        monkeypatch.setattr(depthwise, "LOWERING", mode)
        y = jax.jit(jax.vmap(layer.apply, (None, 0)))(params, xs)
        g = jax.jit(jax.grad(_loss(layer), argnums=(0, 1)))(params, xs[0])
        results[mode] = (y, g)
    for a, b in zip(jax.tree_util.tree_leaves(results["xla"]),
                    jax.tree_util.tree_leaves(results["shifted"])):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)


def _grouped_convs(fn, *args):
    """The feature_group_count of every convolution in fn's jaxpr, gradient included."""
    text = str(jax.make_jaxpr(fn)(*args))
    return [int(part.split()[0].strip(",")) for part in text.split("feature_group_count=")[1:]]


def test_cpu_rule_avoids_xla_grouped_convs_in_training():
    """On CPU (the measured rule) no grouped convolution runs in a depthwise layer's
    forward or gradient, nor in a grouped Conv2D's gradient."""
    assert jax.default_backend() == "cpu"
    layer = jl.DepthwiseConv2D(3, padding="same")
    _, params = random_params(layer, (None, 5, 5, 4))
    x = normal((2, 5, 5, 4))
    assert max(_grouped_convs(jax.grad(_loss(layer), argnums=(0, 1)), params, x), default=1) == 1
    grouped = jl.Conv2D(4, 3, groups=2)
    _, gparams = random_params(grouped, (None, 5, 5, 4))
    counts = _grouped_convs(jax.grad(_loss(grouped), argnums=(0, 1)), gparams, x)
    assert counts.count(2) == 1      # the forward only; the gradient uses the shifted form


def test_unknown_lowering_is_refused(monkeypatch):
    monkeypatch.setattr(depthwise, "LOWERING", "im2col")
    layer = jl.DepthwiseConv1D(2)
    _, params = random_params(layer, (None, 4, 2))
    with pytest.raises(ValueError, match="lowering.*'im2col'"):
        layer.apply(params, normal((1, 4, 2)))


# --------------------------------------------------------------------------- layouts and shapes


@pytest.mark.parametrize("make,kmake,shape,names", [
    (lambda: jl.Conv2D(6, (3, 2), groups=2), lambda: keras_layer("Conv2D", filters=6, kernel_size=(3, 2), groups=2),
     (5, 5, 4), ["kernel", "bias"]),
    (lambda: jl.Conv1DTranspose(5, 3), lambda: keras_layer("Conv1DTranspose", filters=5, kernel_size=3), (5, 2),
     ["kernel", "bias"]),
    (lambda: jl.DepthwiseConv2D(2, depth_multiplier=3),
     lambda: keras_layer("DepthwiseConv2D", kernel_size=2, depth_multiplier=3), (4, 4, 2), ["kernel", "bias"]),
    (lambda: jl.SeparableConv2D(5, 2, depth_multiplier=3),
     lambda: keras_layer("SeparableConv2D", filters=5, kernel_size=2,
                              depth_multiplier=3), (4, 4, 2),
     ["depthwise_kernel", "pointwise_kernel", "bias"]),
    (lambda: jl.Conv3D(3, 2, data_format=CF), lambda: keras_layer("Conv3D", filters=3, kernel_size=2,
                                                                data_format=CF),
     (2, 3, 3, 3), ["kernel", "bias"]),
])
def test_weight_layout_is_keras(make, kmake, shape, names):
    _, params = random_params(make(), (None,) + shape)
    klayer = kmake()
    klayer.build((None,) + shape)
    assert sorted(params) == sorted(names)
    assert [params[n].shape for n in names] == [tuple(w.shape) for w in klayer.weights]


def test_output_shape_matches_keras_compute_output_shape():
    cases = [
        (jl.Conv2D(3, 3, strides=2, padding="same"), keras.layers.Conv2D(3, 3, strides=2,
                                                                         padding="same"),
         (None, 9, 8, 2)),
        (jl.Conv1D(3, 3, padding="causal", dilation_rate=3),
         keras.layers.Conv1D(3, 3, padding="causal", dilation_rate=3), (None, 10, 2)),
        (jl.Conv2DTranspose(3, 3, strides=3, padding="same", output_padding=2),
         keras.layers.Conv2DTranspose(3, 3, strides=3, padding="same", output_padding=2),
         (None, 4, 5, 2)),
        (jl.Conv3DTranspose(2, (2, 3, 4), strides=(3, 1, 2)),
         keras.layers.Conv3DTranspose(2, (2, 3, 4), strides=(3, 1, 2)), (None, 2, 3, 4, 1)),
    ]
    for layer, klayer, shape in cases:
        out, _ = random_params(layer, shape)
        assert tuple(out) == tuple(klayer.compute_output_shape(shape)), layer.name


def test_free_spatial_dims_stay_free_and_apply_any_size():
    layer = jl.Conv2D(2, 3, strides=2, padding="same")
    out, params = layer.init(KEY, (None, None, 7, 3))
    assert out == (None, None, 4, 2)
    assert layer.apply(params, jnp.ones((1, 9, 7, 3))).shape == (1, 5, 4, 2)
    out, _ = jl.Conv1D(2, 3).init(KEY, (None, None, 3))
    assert out == (None, None, 2)


def test_bfloat16_input_computes_in_bfloat16():
    layer = jl.SeparableConv2D(3, 2)
    _, params = layer.init(KEY, (None, 4, 4, 2))
    y = layer.apply(params, jnp.ones((1, 4, 4, 2), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16


# --------------------------------------------------------------------------- hooks


def test_regularizers_and_constraints_follow_keras():
    layer = jl.Conv2D(3, 2, kernel_regularizer=jl.regularizers.L2(0.1),
                      bias_regularizer="l1", kernel_constraint="non_neg",
                      bias_constraint=jl.constraints.MaxNorm(0.5))
    _, params = random_params(layer, (None, 4, 4, 2))
    expected = 0.1 * np.sum(np.square(params["kernel"])) + 0.01 * np.sum(np.abs(params["bias"]))
    np.testing.assert_allclose(layer.penalty(params), expected, rtol=1e-5)
    constrained = layer.constrain(params)
    assert np.all(np.asarray(constrained["kernel"]) >= 0)
    assert np.linalg.norm(constrained["bias"]) <= 0.5 + 1e-6


def test_separable_hooks_reach_each_kernel():
    layer = jl.SeparableConv1D(2, 2, depthwise_regularizer=jl.regularizers.L1(1.0),
                               pointwise_regularizer=jl.regularizers.L2(1.0),
                               pointwise_constraint="non_neg")
    _, params = random_params(layer, (None, 5, 3))
    expected = np.sum(np.abs(params["depthwise_kernel"])) + np.sum(
        np.square(params["pointwise_kernel"]))
    np.testing.assert_allclose(layer.penalty(params), expected, rtol=1e-5)
    c = layer.constrain(params)
    assert np.all(np.asarray(c["pointwise_kernel"]) >= 0)
    np.testing.assert_array_equal(c["depthwise_kernel"], params["depthwise_kernel"])


def test_depthwise_regularizer_targets_its_kernel():
    layer = jl.DepthwiseConv2D(2, depthwise_regularizer=jl.regularizers.L2(1.0))
    _, params = random_params(layer, (None, 4, 4, 2))
    np.testing.assert_allclose(layer.penalty(params), np.sum(np.square(params["kernel"])),
                               rtol=1e-5)


def test_activity_regularizer_matches_keras_loss():
    layer = jl.Conv1D(3, 2, activity_regularizer=jl.regularizers.L2(0.1))
    assert layer.stateful
    x = normal((4, 6, 2))
    _, params, state = layer.init(KEY, (None, 6, 2))
    params = random_params(layer, (None, 6, 2))[1]
    y, state = layer.apply(params, state, x, train=True)
    klayer = keras_layer("Conv1D", filters=3, kernel_size=2, activity_regularizer=keras.regularizers.L2(0.1))
    with jax.numpy_rank_promotion("allow"):
        klayer.build(x.shape)
        klayer.set_weights([np.asarray(params["kernel"]), np.asarray(params["bias"])])
        klayer(np.asarray(x))
        ref = float(klayer.losses[0])
    np.testing.assert_allclose(jl.regularizers.activity_loss(state), ref, rtol=1e-5)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make,words", [
    (lambda: jl.Conv2D(0, 3), ["Conv2D", "filters"]),
    (lambda: jl.Conv2D(3, (3, 3, 3)), ["Conv2D", "kernel_size"]),
    (lambda: jl.Conv1D(3, 0), ["Conv1D", "kernel_size"]),
    (lambda: jl.Conv2D(3, 3, strides=0), ["Conv2D", "strides"]),
    (lambda: jl.Conv2D(3, 3, padding="causal"), ["Conv2D", "padding", "causal"]),
    (lambda: jl.Conv2D(3, 3, padding="full"), ["Conv2D", "padding"]),
    (lambda: jl.Conv2D(3, 3, strides=2, dilation_rate=2), ["strides", "dilation_rate"]),
    (lambda: jl.Conv2D(3, 3, groups=2), ["filters=3", "groups=2"]),
    (lambda: jl.Conv2D(4, 3, groups=0), ["groups"]),
    (lambda: jl.Conv2D(4, 3, data_format="NHWC"), ["data_format"]),
    (lambda: jl.Conv2D(4, 3, activation="nope"), ["Conv2D", "nope"]),
    (lambda: jl.Conv2DTranspose(4, 3, strides=2, output_padding=2), ["output_padding", "strides"]),
    (lambda: jl.DepthwiseConv2D(3, depth_multiplier=0), ["DepthwiseConv2D", "depth_multiplier"]),
    (lambda: jl.SeparableConv1D(2, 3, padding="causal"), ["SeparableConv1D", "padding"]),
])
def test_bad_configuration_raises_valueerror(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("layer,shape,words", [
    (jl.Conv2D(3, 5), (None, 4, 6, 2), ["Conv2D", "(None, 4, 6, 2)", "kernel_size=(5, 5)",
                                         "'valid'"]),
    (jl.Conv1D(3, 3, dilation_rate=3), (None, 6, 2), ["dilated to 7", "kernel_size=(3,)"]),
    (jl.Conv2D(4, 3, groups=2), (None, 5, 5, 3), ["3 channels", "groups=2", "(None, 5, 5, 3)"]),
    (jl.Conv2D(3, 2), (None, 5, 5), ["Conv2D", "rank-4", "(None, 5, 5)"]),
    (jl.Conv2D(3, 2), (None, 5, 5, None), ["channel", "(None, 5, 5, None)"]),
    (jl.Conv2D(3, 2, data_format=CF), (None, None, 5, 5), ["channels_first"]),
    (jl.DepthwiseConv1D(4), (None, 3, 2), ["DepthwiseConv1D", "kernel_size=(4,)"]),
    (jl.SeparableConv2D(2, 3, strides=2), (None, 2, 8, 2), ["SeparableConv2D", "(None, 2, 8, 2)"]),
])
def test_impossible_shapes_raise_shapeerror_at_init(layer, shape, words):
    with pytest.raises(jl.ShapeError) as e:
        layer.init(KEY, shape)
    for w in words:
        assert w in str(e.value)


def test_shape_error_names_place_in_model():
    model = jl.serial(jl.Conv2D(4, 3), jl.Conv2D(4, 5))
    with pytest.raises(jl.ShapeError, match=r"serial\[1\] Conv2D\(4, \(5, 5\)\)"):
        random_params(model, (None, 6, 6, 1))


def test_apply_with_wrong_input_raises_shapeerror():
    layer = jl.Conv2D(3, 3)
    _, params = layer.init(KEY, (None, 5, 5, 2))
    with pytest.raises(jl.ShapeError, match=r"Conv2D.*2 input channels.*\(1, 5, 5, 4\)"):
        layer.apply(params, jnp.ones((1, 5, 5, 4)))
    with pytest.raises(jl.ShapeError, match=r"rank-4.*\(5, 5, 2\)"):
        layer.apply(params, jnp.ones((5, 5, 2)))
    with pytest.raises(jl.ShapeError, match=r"kernel_size=\(3, 3\).*\(1, 2, 5, 2\)"):
        layer.apply(params, jnp.ones((1, 2, 5, 2)))
    t = jl.Conv2DTranspose(3, 3)
    _, tp = t.init(KEY, (None, 4, 4, 2))
    with pytest.raises(jl.ShapeError, match="Conv2DTranspose.*2 input channels"):
        t.apply(tp, jnp.ones((1, 4, 4, 3)))


def test_initializers_are_used_with_keras_fans():
    _, p = jl.Conv2D(4, 3, kernel_initializer="ones", bias_initializer="ones").init(
        KEY, (None, 5, 5, 2))
    np.testing.assert_array_equal(p["kernel"], np.ones((3, 3, 2, 4)))
    np.testing.assert_array_equal(p["bias"], np.ones(4))
    _, p = jl.SeparableConv1D(3, 2, depthwise_initializer="zeros",
                              pointwise_initializer="ones").init(KEY, (None, 5, 2))
    assert not np.any(p["depthwise_kernel"]) and np.all(p["pointwise_kernel"] == 1)
    # glorot_uniform's limit uses Keras' fans: receptive field * in / groups and * filters.
    _, p = jl.Conv2D(8, 3, groups=2).init(KEY, (None, 5, 5, 4))
    limit = np.sqrt(6.0 / (9 * 2 + 9 * 8))
    assert np.abs(p["kernel"]).max() <= limit and np.abs(p["kernel"]).max() > 0.8 * limit


# --------------------------------------------------------------------------- constructor arguments


@pytest.mark.parametrize("make, match", [
    (lambda: jl.Conv2D("3", 3), r"Conv2D: filters must be a positive int, received '3'"),
    (lambda: jl.Conv1D(2.0, 3), r"Conv1D: filters must be a positive int, received 2\.0"),
    (lambda: jl.Conv3D(4, 3, groups=True), r"Conv3D: groups must be a positive int, received "
                                           r"True"),
    (lambda: jl.Conv2DTranspose(None, 3), r"Conv2DTranspose: filters must be a positive int"),
    (lambda: jl.DepthwiseConv2D(3, depth_multiplier="2"),
     r"DepthwiseConv2D: depth_multiplier must be a positive int, received '2'"),
    (lambda: jl.SeparableConv1D(2, 3, use_bias="yes"),
     r"SeparableConv1D: use_bias must be True or False, received 'yes'"),
    (lambda: jl.Conv1DTranspose(2, 3, use_bias=1),
     r"Conv1DTranspose: use_bias must be True or False, received 1"),
    (lambda: jl.DepthwiseConv1D(3, use_bias=None),
     r"DepthwiseConv1D: use_bias must be True or False, received None"),
])
def test_argument_of_the_wrong_type_is_a_clear_type_error(make, match):
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize("kind, args, rank", [
    ("Conv1D", (2, 3), 1), ("Conv2DTranspose", (2, 3), 2), ("DepthwiseConv2D", (3,), 2),
    ("SeparableConv2D", (2, 3), 2), ("Convolution3D", (2, 3), 3),
])
def test_keras_base_arguments(kind, args, rank):
    make = getattr(jl, kind)
    canonical = make.__name__                      # an alias reports its canonical layer
    layer = make(*args, name="stem", trainable=True, dtype="float32", autocast=False)
    x = jl.Input((4,) * rank + (2,))
    _, params = jl.Model(x, layer(x)).init(KEY, None)
    assert list(params) == ["stem"] and layer.label == "stem"
    with pytest.raises(ValueError, match=rf"{canonical}: trainable=False .*jl\.freeze"):
        make(*args, trainable=False)
    with pytest.raises(ValueError, match=rf"{canonical}: dtype must be None or 'float32'"):
        make(*args, dtype="bfloat16")
    with pytest.raises(ValueError, match=rf"{canonical}: name must be a non-empty string"):
        make(*args, name="")
