"""The convolution family in one place: `conv`, `conv_transpose` and `separable` (with
depthwise), and Keras' long aliases."""
from .conv import Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D, Convolution3D
from .conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from .separable import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D

Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = (
    Conv1DTranspose, Conv2DTranspose, Conv3DTranspose)
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
           "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
           "Convolution1D", "Convolution2D", "Convolution3D", "Convolution1DTranspose",
           "Convolution2DTranspose", "Convolution3DTranspose", "SeparableConvolution1D",
           "SeparableConvolution2D"]
