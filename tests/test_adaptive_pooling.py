"""Adaptive pooling against Keras 3 (JAX backend) and a numpy formula; errors."""
import jax
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers.adaptive_pooling import adaptive_windows
from tests.keras_ref import keras_apply, normal

CF = "channels_first"
KEY = jax.random.key(0)

CASES = [
    # (kind, output_size, kwargs, input shape)
    ("AdaptiveAveragePooling1D", 3, {}, (2, 7, 3)),
    ("AdaptiveMaxPooling1D", 4, {"data_format": CF}, (2, 2, 10)),
    ("AdaptiveAveragePooling2D", (2, 3), {}, (2, 5, 7, 2)),
    ("AdaptiveMaxPooling2D", 3, {}, (2, 7, 5, 2)),
    ("AdaptiveAveragePooling2D", 2, {"data_format": CF}, (2, 3, 6, 5)),
    ("AdaptiveMaxPooling2D", (4, 2), {"data_format": CF}, (1, 2, 3, 5)),   # upsampling axis
    ("AdaptiveAveragePooling3D", (2, 1, 3), {}, (1, 4, 3, 5, 2)),
    ("AdaptiveMaxPooling3D", 2, {"data_format": CF}, (1, 2, 5, 3, 4)),
]


@pytest.mark.parametrize("kind,size,kwargs,shape", CASES, ids=lambda v: str(v))
def test_adaptive_pooling_matches_keras(kind, size, kwargs, shape):
    x = normal(shape)
    layer = getattr(jl, kind)(size, **kwargs)
    out_shape, params = layer.init(KEY, (None,) + shape[1:])
    y = jax.jit(layer.apply)(params, x)
    ref = keras_apply(getattr(keras.layers, kind)(size, **kwargs), x)
    assert tuple(out_shape[1:]) == ref.shape[1:] == y.shape[1:]
    np.testing.assert_allclose(np.asarray(y), ref, atol=1e-6, rtol=1e-6)


def _numpy_adaptive(x, m, reduce):
    """PyTorch's definition, one window at a time (1-D, channels_last)."""
    n = x.shape[1]
    out = [reduce(x[:, (i * n) // m: -(-((i + 1) * n) // m)], axis=1) for i in range(m)]
    return np.stack(out, axis=1)


@pytest.mark.parametrize("n,m", [(7, 3), (5, 5), (3, 5), (10, 4), (1, 2)])
def test_windows_follow_the_floor_ceil_rule(n, m):
    x = normal((2, n, 3))
    for kind, reduce in (("AdaptiveAveragePooling1D", np.mean), ("AdaptiveMaxPooling1D", np.max)):
        layer = getattr(jl, kind)(m)
        _, params = layer.init(KEY, x.shape)
        np.testing.assert_allclose(np.asarray(layer.apply(params, x)),
                                   _numpy_adaptive(x, m, reduce), rtol=1e-6, atol=1e-6)
    index, valid = adaptive_windows(n, m)
    assert index.shape[0] == m and valid[:, 0].all()


def test_average_gradient_spreads_over_each_window():
    layer = jl.AdaptiveAveragePooling1D(2)
    _, params = layer.init(KEY, (1, 3, 1))
    g = jax.grad(lambda x: layer.apply(params, x).sum())(np.ones((1, 3, 1), np.float32))
    # windows [0, 2) and [1, 3): the middle element is in both
    np.testing.assert_allclose(np.asarray(g)[0, :, 0], [0.5, 1.0, 0.5])


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="AdaptiveMaxPooling2D: output_size must be a positive "
                                         "int or a tuple of 2"):
        jl.AdaptiveMaxPooling2D((2, 2, 2))
    with pytest.raises(ValueError, match="AdaptiveAveragePooling1D: data_format"):
        jl.AdaptiveAveragePooling1D(2, data_format="nhwc")
    with pytest.raises(jl.ShapeError, match="spatial axes of the input must be known"):
        jl.AdaptiveAveragePooling2D(2).init(KEY, (None, None, 4, 3))
    with pytest.raises(jl.ShapeError, match="AdaptiveMaxPooling1D"):
        jl.AdaptiveMaxPooling1D(2).init(KEY, (None, 4, 3, 3))
