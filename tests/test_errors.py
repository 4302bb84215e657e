"""Bad input gets a clear jl.ShapeError naming the layer, its place and the shapes."""
import jax
import jax.numpy as jnp
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)


def test_shape_error_is_a_value_error():
    assert issubclass(jl.ShapeError, ValueError)


def test_dense_on_rank_one_input_names_place_and_shapes():
    with pytest.raises(jl.ShapeError, match=r"serial\[2\] Dense\(32\).*rank >= 2.*\(4,\)"):
        jl.serial(jl.relu, jl.tanh, jl.Dense(32)).init(KEY, (4,))


def test_nested_place_is_a_path():
    model = jl.serial(jl.Dense(3), jl.serial(jl.Flatten(), jl.Reshape((7,))))
    with pytest.raises(jl.ShapeError, match=r"serial\[1\] > serial\[1\] Reshape\(\(7,\)\)"):
        model.init(KEY, (None, 4))


def test_reshape_that_does_not_divide():
    with pytest.raises(jl.ShapeError, match=r"Reshape\(\(-1, 4\)\).*\(None, 3, 3\).*9 elements"):
        jl.Reshape((-1, 4)).init(KEY, (None, 3, 3))
    with pytest.raises(jl.ShapeError, match=r"Reshape\(\(5,\)\).*\(6 elements per"):
        jl.Reshape((5,)).init(KEY, (None, 2, 3))


def test_flatten_over_a_free_dimension():
    with pytest.raises(jl.ShapeError, match=r"serial\[1\] Flatten\(\).*free.*\(None, None, 8\)"):
        jl.serial(jl.Dense(8), jl.Flatten()).init(KEY, (None, None, 3))


def test_input_layer_with_wrong_shape():
    with pytest.raises(jl.ShapeError, match=r"InputLayer\(\(10,\)\).*expected input shape "
                                            r"\(None, 10\), received \(None, 10, 1\)"):
        jl.serial(jl.InputLayer((10,)), jl.Dense(2)).init(KEY, (None, 10, 1))
    with pytest.raises(jl.ShapeError, match=r"received \(None, 9\)"):
        jl.InputLayer((10,)).init(KEY, (None, 9))


def test_unknown_activation_and_initializer_names():
    with pytest.raises(jl.ShapeError, match=r"Dense.*relus.*relu"):
        jl.Dense(3, activation="relus")
    with pytest.raises(ValueError, match=r"relus.*(relu|sigmoid)"):
        jl.Activation("relus")
    with pytest.raises(jl.ShapeError, match=r"Dense.*glorot_unifrom.*glorot_uniform"):
        jl.Dense(3, kernel_initializer="glorot_unifrom")


def test_apply_with_mismatching_input_names_layer_not_xla():
    model = jl.serial(jl.Dense(4), jl.relu, jl.Dense(2))
    _, params = model.init(KEY, (None, 3))
    with pytest.raises(jl.ShapeError, match=r"serial\[0\] Dense\(4\).*\(batch, \.\.\., 3\).*"
                                            r"\(2, 5\)"):
        model.apply(params, jnp.ones((2, 5)))
    with pytest.raises(jl.ShapeError, match=r"serial\[0\] Dense\(4\)"):
        jax.jit(model.apply)(params, jnp.ones((2, 5)))
    inp = jl.serial(jl.InputLayer((3,)), jl.Dense(1))
    _, params = inp.init(KEY, None)
    with pytest.raises(jl.ShapeError, match=r"InputLayer.*\(2, 3, 1\).*\(None, 3\)"):
        inp.apply(params, jnp.ones((2, 3, 1)))


def test_combinator_shape_mismatches():
    with pytest.raises(jl.ShapeError, match=r"FanInSum.*same shape.*\(None, 2\).*\(None, 3\)"):
        jl.serial(jl.branch(jl.Dense(2), jl.Dense(3)), jl.FanInSum()).init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match=r"FanInConcat.*every axis but"):
        jl.FanInConcat(-1).init(KEY, ((None, 2, 3), (None, 4, 3)))
    with pytest.raises(jl.ShapeError, match=r"residual.*\(None, 4\) to \(None, 3\)"):
        jl.residual(jl.Dense(3)).init(KEY, (None, 4))
    with pytest.raises(jl.ShapeError, match=r"parallel.*tuple of 2 input shapes"):
        jl.parallel(jl.Dense(1), jl.Dense(1)).init(KEY, (None, 3))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Dense: units"):
        jl.Dense(0)
    with pytest.raises(ValueError, match="Dropout: rate"):
        jl.Dropout(1.5)
    with pytest.raises(ValueError, match="Permute: dims"):
        jl.Permute((1, 3))
    with pytest.raises(ValueError, match="Reshape: target_shape"):
        jl.Reshape((-1, -1))
    with pytest.raises(ValueError, match="RepeatVector: n"):
        jl.RepeatVector(0)


def test_dropout_without_rng_in_training():
    with pytest.raises(ValueError, match=r"Dropout\(0.5\).*rng"):
        jl.serial(jl.Dense(2), jl.Dropout(0.5)).apply(
            jl.serial(jl.Dense(2), jl.Dropout(0.5)).init(KEY, (None, 2))[1], jnp.ones((1, 2)),
            train=True)


def test_wrong_rank_for_fixed_rank_layers():
    with pytest.raises(jl.ShapeError, match=r"RepeatVector\(3\).*rank-2.*\(None, 2, 2\)"):
        jl.RepeatVector(3).init(KEY, (None, 2, 2))
    with pytest.raises(jl.ShapeError, match=r"Permute\(\(2, 1\)\).*rank-3.*\(None, 4\)"):
        jl.Permute((2, 1)).init(KEY, (None, 4))


def test_layer_is_not_called_on_arrays():
    with pytest.raises(TypeError, match="Dense"):
        jl.Dense(2)(jnp.ones((1, 2)))


@pytest.mark.parametrize("build,error,message", [
    (lambda: jl.Dropout("0.5"), TypeError, r"Dropout: rate must be a number in \[0, 1\], "
                                           r"received '0.5'"),
    (lambda: jl.Dropout(1.5), ValueError, r"Dropout: rate must be a number in \[0, 1\], "
                                          r"received 1.5"),
    (lambda: jl.ELU(alpha="a"), TypeError, r"ELU: alpha must be a number, received 'a'"),
    (lambda: jl.Dense(True), TypeError, r"Dense: units must be a positive int, received True"),
    (lambda: jl.Dense(3, use_bias="yes"), TypeError, r"Dense: use_bias must be True or False"),
    (lambda: jl.constraints.MaxNorm(-1), ValueError,
     r"MaxNorm: max_value must be a number in \[0, inf\), received -1"),
    (lambda: jl.constraints.UnitNorm(axis="0"), TypeError, r"UnitNorm: axis must be an int"),
    (lambda: jl.AlphaDropout(1.0), ValueError,
     r"AlphaDropout: rate must be a number in \[0, 1\), received 1.0"),
    (lambda: jl.GaussianNoise(0.1, seed="s"), TypeError, r"GaussianNoise: seed must be a "
                                                          r"non-negative int"),
    (lambda: jl.Dropout(0.5, noise_shape=(None, 0)), TypeError, r"Dropout: noise_shape"),
    (lambda: jl.RepeatVector(2.0), TypeError, r"RepeatVector: n must be a positive int"),
    (lambda: jl.Reshape("23"), TypeError, r"Reshape: target_shape must be a tuple of ints"),
    (lambda: jl.Dot(1, normalize=1), TypeError, r"Dot: normalize must be True or False"),
    (lambda: jl.GlobalMaxPooling1D(keepdims=1), TypeError, r"GlobalMaxPooling1D: keepdims"),
    (lambda: jl.LayerNormalization(epsilon=0), ValueError, r"LayerNormalization: epsilon"),
    (lambda: jl.Masking("x"), TypeError, r"Masking: mask_value must be a number"),
    (lambda: jl.Dense(2, lora_rank=4), ValueError, r"Dense: lora_rank=4 is not supported"),
    (lambda: jl.InputLayer((3,), sparse=True), ValueError, r"InputLayer: sparse=True is not"),
])
def test_construction_types_fail_at_construction_naming_layer_and_argument(build, error,
                                                                          message):
    with pytest.raises(error, match=message):
        build()
