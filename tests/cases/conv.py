"""Registry entries: convolution, pooling and spatial reshaping layers (issue 3).

Shapes are small so the cross-cutting checks (check_grads in float64 included) stay fast.
Max pooling is piecewise linear: its inputs are distinct values spread apart, so that
finite differences never cross a tie.
"""
import jax
import jax.numpy as jnp

import jaxlayers as jl
from tests.cases import Case

CF = "channels_first"


def _distinct(key, shape):
    """A random permutation of 0.1 * arange, so every window has a clear maximum."""
    n = 1
    for d in shape:
        n *= d
    return (jax.random.permutation(key, n).reshape(shape) * 0.1).astype(jnp.float32)


def _pool_case(id, make, shape):
    return Case(id, make, shape, make_input=_distinct)


CASES = [
    # Conv
    Case("Conv1D", lambda: jl.Conv1D(4, 3), (None, 7, 2)),
    Case("Conv1D-causal-dilated", lambda: jl.Conv1D(3, 2, padding="causal", dilation_rate=2),
         (None, 6, 2)),
    Case("Conv1D-same-strided-cf", lambda: jl.Conv1D(3, 3, strides=2, padding="same",
                                                     data_format=CF), (None, 2, 7)),
    Case("Conv2D", lambda: jl.Conv2D(4, (3, 3), activation="relu"), (None, 6, 6, 2)),
    Case("Conv2D-same-strided", lambda: jl.Conv2D(3, 3, strides=2, padding="same"),
         (None, 5, 6, 2)),
    Case("Conv2D-groups-cf", lambda: jl.Conv2D(4, 2, groups=2, data_format=CF), (None, 4, 5, 5)),
    Case("Conv2D-free-spatial", lambda: jl.Conv2D(2, 3, padding="same"), (None, None, None, 2)),
    Case("Conv3D-same-cf", lambda: jl.Conv3D(2, 2, strides=2, padding="same", data_format=CF),
         (None, 2, 3, 4, 3)),
    Case("Conv2D-activity_regularizer",
         lambda: jl.Conv2D(2, 2, kernel_regularizer="l2", activity_regularizer="l1"),
         (None, 4, 4, 1)),
    # ConvTranspose
    Case("Conv1DTranspose", lambda: jl.Conv1DTranspose(3, 3, strides=2), (None, 4, 2)),
    Case("Conv2DTranspose-same-output_padding-cf",
         lambda: jl.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1,
                                    data_format=CF), (None, 2, 3, 3)),
    Case("Conv3DTranspose", lambda: jl.Conv3DTranspose(2, 2, strides=2), (None, 2, 2, 2, 2)),
    # Depthwise / separable
    Case("DepthwiseConv1D", lambda: jl.DepthwiseConv1D(3, depth_multiplier=2), (None, 6, 3)),
    Case("DepthwiseConv2D-cf", lambda: jl.DepthwiseConv2D(3, depth_multiplier=2, data_format=CF),
         (None, 2, 5, 5)),
    Case("SeparableConv1D", lambda: jl.SeparableConv1D(4, 3, depth_multiplier=2), (None, 6, 2)),
    Case("SeparableConv2D-cf", lambda: jl.SeparableConv2D(3, 3, strides=2, data_format=CF),
         (None, 2, 6, 6)),
    # Pooling
    _pool_case("MaxPooling1D-same-cf", lambda: jl.MaxPooling1D(3, 2, "same", CF), (None, 2, 7)),
    _pool_case("MaxPooling2D", lambda: jl.MaxPooling2D(), (None, 4, 6, 2)),
    _pool_case("MaxPooling2D-reduce_window", lambda: jl.MaxPooling2D((3, 2), strides=1),
               (None, 5, 4, 2)),
    _pool_case("MaxPool2D-same-cf", lambda: jl.MaxPool2D(2, padding="same", data_format=CF),
               (None, 2, 5, 3)),
    _pool_case("MaxPooling3D", lambda: jl.MaxPooling3D(), (None, 4, 2, 4, 1)),
    _pool_case("MaxPooling3D-same-cf", lambda: jl.MaxPooling3D(2, padding="same", data_format=CF),
               (None, 1, 3, 3, 3)),
    Case("AveragePooling1D", lambda: jl.AveragePooling1D(3, 2, "same"), (None, 7, 2)),
    Case("AvgPool2D-same-cf", lambda: jl.AvgPool2D(3, 2, "same", CF), (None, 2, 5, 4)),
    Case("AveragePooling3D", lambda: jl.AveragePooling3D(2, padding="same"), (None, 3, 3, 2, 2)),
    _pool_case("GlobalMaxPooling1D", lambda: jl.GlobalMaxPooling1D(), (None, 5, 3)),
    _pool_case("GlobalMaxPooling2D-keepdims-cf",
               lambda: jl.GlobalMaxPooling2D(CF, keepdims=True), (None, 3, 4, 4)),
    _pool_case("GlobalMaxPooling3D-cf", lambda: jl.GlobalMaxPooling3D(CF), (None, 2, 3, 2, 2)),
    Case("GlobalAveragePooling1D-cf", lambda: jl.GlobalAveragePooling1D(CF), (None, 3, 5)),
    Case("GlobalAveragePooling2D", lambda: jl.GlobalAveragePooling2D(), (None, 3, 4, 2)),
    Case("GlobalAveragePooling3D-keepdims", lambda: jl.GlobalAveragePooling3D(keepdims=True),
         (None, 2, 3, 2, 2)),
    # Reshaping
    Case("UpSampling1D", lambda: jl.UpSampling1D(3), (None, 4, 2)),
    Case("UpSampling2D", lambda: jl.UpSampling2D((2, 3)), (None, 3, 2, 2)),
    Case("UpSampling2D-bilinear-cf", lambda: jl.UpSampling2D(2, CF, "bilinear"), (None, 2, 3, 4)),
    Case("UpSampling2D-bicubic", lambda: jl.UpSampling2D(2, interpolation="bicubic"),
         (None, 3, 3, 1)),
    Case("UpSampling3D-cf", lambda: jl.UpSampling3D((1, 2, 2), CF), (None, 2, 2, 2, 2)),
    Case("ZeroPadding1D", lambda: jl.ZeroPadding1D((1, 2)), (None, 3, 2)),
    Case("ZeroPadding2D-cf", lambda: jl.ZeroPadding2D(1, CF), (None, 2, 3, 3)),
    Case("ZeroPadding3D-cf", lambda: jl.ZeroPadding3D((1, 0, 2), CF), (None, 1, 2, 2, 2)),
    Case("Cropping1D", lambda: jl.Cropping1D((1, 2)), (None, 6, 2)),
    Case("Cropping2D-cf", lambda: jl.Cropping2D(1, CF), (None, 2, 4, 4)),
    Case("Cropping3D", lambda: jl.Cropping3D(), (None, 3, 4, 3, 2)),
    # The seed CNN
    Case("seed-cnn", lambda: jl.serial(jl.Conv2D(4, 3, activation="relu"), jl.MaxPooling2D(),
                                       jl.Flatten(), jl.Dense(3, activation="softmax")),
         (None, 6, 6, 1)),
]
