"""Depthwise and separable convolution layers: DepthwiseConv1D/2D, SeparableConv1D/2D,
with Keras' names, arguments, defaults and weight layouts. The depthwise step is
lowered per backend by `depthwise.depthwise_conv`."""
from __future__ import annotations

from jax import lax

from ..core import Layer
from .args import boolean
from .conv import _RANKED, _conv_layer, _conv_weights, _name, _positive, _window
from .depthwise import depthwise_conv
from .docstrings import per_rank, weight_args


def _depthwise_conv(x, w, window):
    """The depthwise conv of `x` with w: (*kernel, in, dm), lowered by `depthwise_conv`."""
    pads = window.padding(window.layout.split(x.shape)[1])
    return depthwise_conv(x, w, window.layout, window.strides, pads, window.dilation)


# --------------------------------------------------------------------------- Depthwise


def _depthwise(kind, rank, kernel_size, strides=1, padding="valid", depth_multiplier=1,
               data_format=None, dilation_rate=1, activation=None, use_bias=True,
               depthwise_initializer="glorot_uniform", bias_initializer="zeros",
               depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
               depthwise_constraint=None, bias_constraint=None) -> Layer:
    dm = _positive(kind, depth_multiplier, "depth_multiplier")
    use_bias = boolean(kind, "use_bias", use_bias)
    win = _window(kind, rank, kernel_size, strides, padding, data_format, dilation_rate)
    name = _name(kind, win.kernel, strides=win.strides, padding=win.mode, depth_multiplier=dm,
                 dilation_rate=win.dilation, data_format=win.layout.data_format,
                 activation=activation, use_bias=use_bias)
    return _conv_layer(name, win, activation, use_bias,
                       _conv_weights("kernel", depthwise_initializer, bias_initializer,
                                     depthwise_regularizer, bias_regularizer,
                                     depthwise_constraint, bias_constraint),
                       lambda c_in, shape: ({"kernel": win.kernel + (c_in, dm),
                                             "bias": (c_in * dm,)}, c_in * dm),
                       lambda x, w: _depthwise_conv(x, w["kernel"], win),
                       lambda params: params["kernel"].shape[-2], activity_regularizer)


_DEPTHWISE_DOC = """{n}-D depthwise convolution (Keras' `{kind}`): each input channel convolved
    with its own `depth_multiplier` filters; output channel ``c * depth_multiplier + m`` reads
    input channel c. Lowered per backend for speed (jaxlayers.layers.depthwise).

    Args:
      kernel_size: int or {n}-tuple, the window.
      strides: int or {n}-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" or "same".
      depth_multiplier: output channels per input channel.
      {data_format}
      dilation_rate: int or {n}-tuple, the spacing between kernel taps.
      {weights}

    Params: ``kernel`` (*kernel_size, in, depth_multiplier), ``bias`` (in * depth_multiplier,).

    Input shape: ``(batch, {spatial}, in)`` (channels_last) or ``(batch, in, {spatial})``.

    Output shape: ``(batch, {new_spatial}, in * depth_multiplier)`` or channels first; the
    spatial dims as for `Conv{n}D`.
    """


DepthwiseConv1D, DepthwiseConv2D = (
    per_rank(_depthwise, f"DepthwiseConv{r}D", r, _DEPTHWISE_DOC, ranked=_RANKED,
             weights=weight_args("depthwise", bias="(in * depth_multiplier,)")) for r in (1, 2))


# --------------------------------------------------------------------------- Separable


def _separable(kind, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
               dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
               depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
               bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
               bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
               pointwise_constraint=None, bias_constraint=None) -> Layer:
    filters = _positive(kind, filters, "filters")
    dm = _positive(kind, depth_multiplier, "depth_multiplier")
    use_bias = boolean(kind, "use_bias", use_bias)
    win = _window(kind, rank, kernel_size, strides, padding, data_format, dilation_rate)
    name = _name(kind, filters, win.kernel, strides=win.strides, padding=win.mode,
                 depth_multiplier=dm, dilation_rate=win.dilation,
                 data_format=win.layout.data_format, activation=activation, use_bias=use_bias)
    ones = (1,) * rank
    weights = {"depthwise_kernel": (depthwise_initializer, depthwise_regularizer,
                                    depthwise_constraint),
               "pointwise_kernel": (pointwise_initializer, pointwise_regularizer,
                                    pointwise_constraint),
               "bias": (bias_initializer, bias_regularizer, bias_constraint)}

    def shapes(c_in, shape):
        return {"depthwise_kernel": win.kernel + (c_in, dm),
                "pointwise_kernel": ones + (c_in * dm, filters), "bias": (filters,)}, filters

    def conv(x, w):
        y = _depthwise_conv(x, w["depthwise_kernel"], win)
        return lax.conv_general_dilated(y, w["pointwise_kernel"], ones, "VALID",
                                        dimension_numbers=win.layout.conv_dims())

    return _conv_layer(name, win, activation, use_bias, weights, shapes, conv,
                       lambda params: params["depthwise_kernel"].shape[-2], activity_regularizer)


_SEPARABLE_DOC = """{n}-D separable convolution (Keras' `{kind}`): a depthwise conv (strides,
    padding and dilation apply here), a pointwise conv to `filters` channels, one bias, the
    activation.

    Args:
      filters: number of output channels.
      kernel_size: int or {n}-tuple, the depthwise window.
      strides: int or {n}-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" or "same".
      {data_format}
      dilation_rate: int or {n}-tuple, the spacing between depthwise kernel taps.
      depth_multiplier: depthwise output channels per input channel.
      {weights}

    Params: ``depthwise_kernel`` (*kernel_size, in, depth_multiplier), ``pointwise_kernel``
    ({ones}, in * depth_multiplier, filters), ``bias`` (filters,).

    Input shape: ``(batch, {spatial}, in)`` (channels_last) or ``(batch, in, {spatial})``.

    Output shape: ``(batch, {new_spatial}, filters)`` or channels first; the spatial dims
    as for `Conv{n}D`.
    """


SeparableConv1D, SeparableConv2D = (
    per_rank(_separable, f"SeparableConv{r}D", r, _SEPARABLE_DOC, ranked=_RANKED,
             weights=weight_args("depthwise", "pointwise")) for r in (1, 2))
