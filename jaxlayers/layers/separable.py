"""Depthwise and separable convolution layers: DepthwiseConv1D/2D, SeparableConv1D/2D,
with Keras' names, arguments, defaults and weight layouts. The depthwise step is
lowered per backend by `depthwise.depthwise_conv`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..core import Layer
from .args import boolean, keras_layer
from .checks import cast_like
from .conv import _bias_act, _finish, _name, _positive, _window_args
from .core import _activation, _initializer
from .depthwise import depthwise_conv
from .spatial import Layout, all_window_padding, data_format as _data_format, window_outputs


# --------------------------------------------------------------------------- Depthwise


def _depthwise_conv(x, w, layout, kernel, strides, dilation, mode):
    """The depthwise conv of `x` with w: (*kernel, in, dm), lowered by `depthwise_conv`."""
    spatial = layout.split(x.shape)[1]
    return depthwise_conv(x, w, layout, strides,
                          all_window_padding(spatial, kernel, strides, dilation, mode), dilation)


def _depthwise(kind, rank, kernel_size, strides=1, padding="valid", depth_multiplier=1,
               data_format=None, dilation_rate=1, activation=None, use_bias=True,
               depthwise_initializer="glorot_uniform", bias_initializer="zeros",
               depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
               depthwise_constraint=None, bias_constraint=None) -> Layer:
    dm = _positive(kind, depth_multiplier, "depth_multiplier")
    use_bias = boolean(kind, "use_bias", use_bias)
    kernel, strides, mode, dilation = _window_args(kind, rank, kernel_size, strides, padding,
                                                   dilation_rate)
    layout = Layout(rank, _data_format(kind, data_format))
    name = _name(kind, kernel, strides=strides, padding=mode, depth_multiplier=dm,
                 dilation_rate=dilation, data_format=layout.data_format, activation=activation,
                 use_bias=use_bias)
    act = _activation(name, activation)
    kinit, binit = _initializer(name, depthwise_initializer), _initializer(name, bias_initializer)

    def init(key, input_shape):
        shape = layout.check(name, input_shape)
        batch, spatial, c_in = layout.split(shape)
        out = window_outputs(name, shape, spatial, kernel, strides, dilation, mode)
        k_kernel, k_bias = jax.random.split(key)
        params = {"kernel": kinit(k_kernel, kernel + (c_in, dm), jnp.float32)}
        if use_bias:
            params["bias"] = binit(k_bias, (c_in * dm,), jnp.float32)
        return layout.join(batch, out, c_in * dm), params

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x, params["kernel"].shape[-2])
        window_outputs(name, x.shape, spatial, kernel, strides, dilation, mode)
        w, b = cast_like(x, params["kernel"], params.get("bias"))
        y = _depthwise_conv(x, w, layout, kernel, strides, dilation, mode)
        return _bias_act(y, b, layout, act)

    return _finish(init, apply, name, activity_regularizer,
                   kernel=(depthwise_regularizer, depthwise_constraint),
                   bias=(bias_regularizer, bias_constraint))


@keras_layer
def DepthwiseConv1D(kernel_size, strides=1, padding="valid", depth_multiplier=1,
                    data_format=None, dilation_rate=1, activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                    depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, bias_constraint=None) -> Layer:
    """1-D depthwise convolution (Keras' `DepthwiseConv1D`): each input channel convolved with
    its own `depth_multiplier` filters; output channel ``c * depth_multiplier + m`` reads
    input channel c. Lowered per backend for speed (jaxlayers.layers.depthwise).

    Args:
      kernel_size: int or 1-tuple, the window.
      strides: int or 1-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" or "same".
      depth_multiplier: output channels per input channel.
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 1-tuple, the spacing between kernel taps.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (in * depth_multiplier,).
      depthwise_initializer, bias_initializer: initializer names or functions.
      depthwise_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      depthwise_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (kernel_size, in, depth_multiplier), ``bias`` (in * depth_multiplier,).

    Input shape: ``(batch, steps, in)`` (channels_last) or ``(batch, in, steps)``.

    Output shape: ``(batch, new_steps, in * depth_multiplier)`` or channels first; the
    spatial dims as for `Conv1D`.
    """
    return _depthwise("DepthwiseConv1D", 1, kernel_size, strides, padding, depth_multiplier,
                      data_format, dilation_rate, activation, use_bias, depthwise_initializer,
                      bias_initializer, depthwise_regularizer, bias_regularizer,
                      activity_regularizer, depthwise_constraint, bias_constraint)


@keras_layer
def DepthwiseConv2D(kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                    depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, bias_constraint=None) -> Layer:
    """2-D depthwise convolution (Keras' `DepthwiseConv2D`): each input channel convolved with
    its own `depth_multiplier` filters; output channel ``c * depth_multiplier + m`` reads
    input channel c. Lowered per backend for speed (jaxlayers.layers.depthwise).

    Args:
      kernel_size: int or 2-tuple, the window.
      strides: int or 2-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" or "same".
      depth_multiplier: output channels per input channel.
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 2-tuple, the spacing between kernel taps.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (in * depth_multiplier,).
      depthwise_initializer, bias_initializer: initializer names or functions.
      depthwise_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      depthwise_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (rows, cols, in, depth_multiplier), ``bias`` (in * depth_multiplier,).

    Input shape: ``(batch, rows, cols, in)`` (channels_last) or ``(batch, in, rows, cols)``.

    Output shape: ``(batch, new_rows, new_cols, in * depth_multiplier)`` or channels first; the
    spatial dims as for `Conv2D`.
    """
    return _depthwise("DepthwiseConv2D", 2, kernel_size, strides, padding, depth_multiplier,
                      data_format, dilation_rate, activation, use_bias, depthwise_initializer,
                      bias_initializer, depthwise_regularizer, bias_regularizer,
                      activity_regularizer, depthwise_constraint, bias_constraint)


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
    kernel, strides, mode, dilation = _window_args(kind, rank, kernel_size, strides, padding,
                                                   dilation_rate)
    layout = Layout(rank, _data_format(kind, data_format))
    name = _name(kind, filters, kernel, strides=strides, padding=mode, depth_multiplier=dm,
                 dilation_rate=dilation, data_format=layout.data_format, activation=activation,
                 use_bias=use_bias)
    act = _activation(name, activation)
    dinit = _initializer(name, depthwise_initializer)
    pinit = _initializer(name, pointwise_initializer)
    binit = _initializer(name, bias_initializer)
    ones = (1,) * rank

    def init(key, input_shape):
        shape = layout.check(name, input_shape)
        batch, spatial, c_in = layout.split(shape)
        out = window_outputs(name, shape, spatial, kernel, strides, dilation, mode)
        k_dw, k_pw, k_bias = jax.random.split(key, 3)
        params = {"depthwise_kernel": dinit(k_dw, kernel + (c_in, dm), jnp.float32),
                  "pointwise_kernel": pinit(k_pw, ones + (c_in * dm, filters), jnp.float32)}
        if use_bias:
            params["bias"] = binit(k_bias, (filters,), jnp.float32)
        return layout.join(batch, out, filters), params

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x, params["depthwise_kernel"].shape[-2])
        window_outputs(name, x.shape, spatial, kernel, strides, dilation, mode)
        dw, pw, b = cast_like(x, params["depthwise_kernel"], params["pointwise_kernel"],
                              params.get("bias"))
        y = _depthwise_conv(x, dw, layout, kernel, strides, dilation, mode)
        y = lax.conv_general_dilated(y, pw, ones, "VALID", dimension_numbers=layout.conv_dims())
        return _bias_act(y, b, layout, act)

    return _finish(init, apply, name, activity_regularizer,
                   depthwise_kernel=(depthwise_regularizer, depthwise_constraint),
                   pointwise_kernel=(pointwise_regularizer, pointwise_constraint),
                   bias=(bias_regularizer, bias_constraint))


@keras_layer
def SeparableConv1D(filters, kernel_size, strides=1, padding="valid", data_format=None,
                    dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                    bias_initializer="zeros", depthwise_regularizer=None,
                    pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, pointwise_constraint=None,
                    bias_constraint=None) -> Layer:
    """1-D separable convolution (Keras' `SeparableConv1D`): a depthwise conv (strides, padding
    and dilation apply here), a pointwise conv to `filters` channels, one bias, the
    activation.

    Args:
      filters: number of output channels.
      kernel_size: int or 1-tuple, the depthwise window.
      strides: int or 1-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" or "same".
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 1-tuple, the spacing between depthwise kernel taps.
      depth_multiplier: depthwise output channels per input channel.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      depthwise_initializer, pointwise_initializer, bias_initializer: initializers.
      depthwise_regularizer, pointwise_regularizer, bias_regularizer: weight penalties.
      activity_regularizer: a penalty on the output; makes the layer stateful.
      depthwise_constraint, pointwise_constraint, bias_constraint: projections applied
        by ``layer.constrain``.

    Params: ``depthwise_kernel`` (kernel_size, in, depth_multiplier), ``pointwise_kernel``
    (1, in * depth_multiplier, filters), ``bias`` (filters,).

    Input shape: ``(batch, steps, in)`` (channels_last) or ``(batch, in, steps)``.

    Output shape: ``(batch, new_steps, filters)`` or channels first; the spatial dims as for
    `Conv1D`.
    """
    return _separable("SeparableConv1D", 1, filters, kernel_size, strides, padding, data_format,
                      dilation_rate, depth_multiplier, activation, use_bias,
                      depthwise_initializer, pointwise_initializer, bias_initializer,
                      depthwise_regularizer, pointwise_regularizer, bias_regularizer,
                      activity_regularizer, depthwise_constraint, pointwise_constraint,
                      bias_constraint)


@keras_layer
def SeparableConv2D(filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                    dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                    bias_initializer="zeros", depthwise_regularizer=None,
                    pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, pointwise_constraint=None,
                    bias_constraint=None) -> Layer:
    """2-D separable convolution (Keras' `SeparableConv2D`): a depthwise conv (strides, padding
    and dilation apply here), a pointwise conv to `filters` channels, one bias, the
    activation.

    Args:
      filters: number of output channels.
      kernel_size: int or 2-tuple, the depthwise window.
      strides: int or 2-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" or "same".
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 2-tuple, the spacing between depthwise kernel taps.
      depth_multiplier: depthwise output channels per input channel.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      depthwise_initializer, pointwise_initializer, bias_initializer: initializers.
      depthwise_regularizer, pointwise_regularizer, bias_regularizer: weight penalties.
      activity_regularizer: a penalty on the output; makes the layer stateful.
      depthwise_constraint, pointwise_constraint, bias_constraint: projections applied
        by ``layer.constrain``.

    Params: ``depthwise_kernel`` (rows, cols, in, depth_multiplier), ``pointwise_kernel``
    (1, 1, in * depth_multiplier, filters), ``bias`` (filters,).

    Input shape: ``(batch, rows, cols, in)`` (channels_last) or ``(batch, in, rows, cols)``.

    Output shape: ``(batch, new_rows, new_cols, filters)`` or channels first; the spatial dims as for
    `Conv2D`.
    """
    return _separable("SeparableConv2D", 2, filters, kernel_size, strides, padding, data_format,
                      dilation_rate, depth_multiplier, activation, use_bias,
                      depthwise_initializer, pointwise_initializer, bias_initializer,
                      depthwise_regularizer, pointwise_regularizer, bias_regularizer,
                      activity_regularizer, depthwise_constraint, pointwise_constraint,
                      bias_constraint)
