"""Convolution layers: Conv1D/2D/3D here, with the helpers the family shares; the
transposed convs (`conv_transpose`) and the depthwise / separable convs (`separable`)
are re-exported. Keras' names, arguments, defaults and weight layouts.

One N-D implementation per family (`_conv`, `_conv_transpose`, `_depthwise`,
`_separable`), parameterised by the spatial rank; the public constructors are thin.
Grouped and depthwise convs go through `depthwise.grouped_conv`, which picks the
fastest lowering per backend.
Both data formats run natively through ``lax.conv_general_dilated`` dimension numbers
(no transposes); kernels are stored as Keras stores them, whatever the data format:

- Conv: ``kernel`` (*kernel_size, in / groups, filters), ``bias`` (filters,)
- ConvTranspose: ``kernel`` (*kernel_size, filters, in), ``bias`` (filters,)
- DepthwiseConv: ``kernel`` (*kernel_size, in, depth_multiplier), ``bias`` (in * depth_multiplier,)
- SeparableConv: ``depthwise_kernel`` (*kernel_size, in, depth_multiplier),
  ``pointwise_kernel`` (1, ..., 1, in * depth_multiplier, filters), ``bias`` (filters,)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from .weights import weight_hooks
from ..core import Layer, ShapeError, describe
from .args import boolean, keras_layer, positive_int
from .checks import bias_add, cast_like
from ..regularizers import with_activity_regularizer
from .core import _activation, _initializer
from .depthwise import grouped_conv
from .spatial import (Layout, all_window_padding, data_format as _data_format, int_tuple,
                      padding_mode, window_outputs)

_DEFAULTS = {"strides": 1, "padding": "valid", "data_format": "channels_last",
             "dilation_rate": 1, "groups": 1, "activation": None, "use_bias": True,
             "output_padding": None, "depth_multiplier": 1}


def _name(kind, *args, **opts):
    """``Kind(args, key=value)`` listing only the options that differ from Keras' defaults."""
    def default(k, v):
        d = _DEFAULTS.get(k, object())
        return v == d or (isinstance(v, tuple) and isinstance(d, int) and set(v) == {d})
    return describe(kind, *args, **{k: v for k, v in opts.items() if not default(k, v)})


def _window_args(kind, rank, kernel_size, strides, padding, dilation_rate, causal=False):
    """Validated ``(kernel, strides, padding, dilation)`` in Keras' conventions."""
    kernel = int_tuple(kind, kernel_size, rank, "kernel_size")
    strides = int_tuple(kind, strides, rank, "strides")
    dilation = int_tuple(kind, dilation_rate, rank, "dilation_rate")
    mode = padding_mode(kind, padding, ("valid", "same", "causal") if causal else ("valid", "same"))
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(f"{kind}: strides > 1 is not supported together with dilation_rate > 1, "
                         f"got strides={strides} and dilation_rate={dilation}")
    return kernel, strides, mode, dilation


def _positive(kind, value, arg):
    return positive_int(kind, arg, value)


def _finish(init, apply, name, activity_regularizer, **rules):
    """The Layer with its weight regularizers / constraints and activity regularizer."""
    penalty, constrain = weight_hooks(name, **rules)
    layer = Layer(init, apply, name=name, penalty=penalty, constrain=constrain)
    return with_activity_regularizer(layer, activity_regularizer)


def _bias_act(y, bias, layout, act):
    if bias is not None:
        y = bias_add(y, bias, layout.channel_axis)
    return act(y)


# --------------------------------------------------------------------------- Conv


def _conv(kind, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
          dilation_rate=1, groups=1, activation=None, use_bias=True,
          kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
          bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
          bias_constraint=None) -> Layer:
    filters = _positive(kind, filters, "filters")
    groups = _positive(kind, groups, "groups")
    use_bias = boolean(kind, "use_bias", use_bias)
    if filters % groups:
        raise ValueError(f"{kind}: filters={filters} must be divisible by groups={groups}")
    kernel, strides, mode, dilation = _window_args(kind, rank, kernel_size, strides, padding,
                                                   dilation_rate, causal=rank == 1)
    layout = Layout(rank, _data_format(kind, data_format))
    name = _name(kind, filters, kernel, strides=strides, padding=mode, dilation_rate=dilation,
                 groups=groups, data_format=layout.data_format, activation=activation,
                 use_bias=use_bias)
    act = _activation(name, activation)
    kinit, binit = _initializer(name, kernel_initializer), _initializer(name, bias_initializer)
    dims = layout.conv_dims("IO")

    def init(key, input_shape):
        shape = layout.check(name, input_shape)
        batch, spatial, c_in = layout.split(shape)
        if c_in % groups:
            raise ShapeError(f"the input has {c_in} channels, not divisible by groups={groups} "
                             f"(input shape {shape!r})", name)
        out = window_outputs(name, shape, spatial, kernel, strides, dilation, mode)
        k_kernel, k_bias = jax.random.split(key)
        params = {"kernel": kinit(k_kernel, kernel + (c_in // groups, filters), jnp.float32)}
        if use_bias:
            params["bias"] = binit(k_bias, (filters,), jnp.float32)
        return layout.join(batch, out, filters), params

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x, params["kernel"].shape[-2] * groups)
        window_outputs(name, x.shape, spatial, kernel, strides, dilation, mode)
        w, b = cast_like(x, params["kernel"], params.get("bias"))
        pads = all_window_padding(spatial, kernel, strides, dilation, mode)
        if groups > 1:
            y = grouped_conv(x, w, groups, layout, strides, pads, dilation)
        else:
            y = lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dilation,
                                         dimension_numbers=dims)
        return _bias_act(y, b, layout, act)

    return _finish(init, apply, name, activity_regularizer,
                   kernel=(kernel_regularizer, kernel_constraint),
                   bias=(bias_regularizer, bias_constraint))


@keras_layer
def Conv1D(filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
           groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
           bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
           activity_regularizer=None, kernel_constraint=None, bias_constraint=None) -> Layer:
    """1-D convolution (Keras' `Conv1D`): ``activation(conv(x, kernel) + bias)``.

    Args:
      filters: number of output channels.
      kernel_size: int or 1-tuple, the window length.
      strides: int or 1-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid", "same" or "causal" (``k_eff - 1`` zeros on the left, for
        temporal models; ``k_eff = (kernel_size - 1) * dilation_rate + 1``).
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 1-tuple, the spacing between kernel taps.
      groups: split input and output channels into this many contiguous blocks, each
        convolved separately (both channel counts must be divisible by it).
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      kernel_initializer, bias_initializer: initializer names or functions.
      kernel_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (kernel_size, in / groups, filters), ``bias`` (filters,).

    Input shape: ``(batch, steps, in)`` (channels_last) or ``(batch, in, steps)``.

    Output shape: ``(batch, new_steps, filters)`` or ``(batch, filters, new_steps)``;
    new_steps is ``ceil(steps / strides)`` for "same", ``floor((steps - k_eff) / strides)
    + 1`` for "valid" and ``steps`` for "causal".
    """
    return _conv("Conv1D", 1, filters, kernel_size, strides, padding, data_format, dilation_rate,
                 groups, activation, use_bias, kernel_initializer, bias_initializer,
                 kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
                 bias_constraint)


@keras_layer
def Conv2D(filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
           kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
           bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None) -> Layer:
    """2-D convolution (Keras' `Conv2D`): ``activation(conv(x, kernel) + bias)``.

    Args:
      filters: number of output channels.
      kernel_size: int or 2-tuple (rows, cols), the window.
      strides: int or 2-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" (no padding) or "same" (zeros so each dim gives ``ceil(n / s)``).
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 2-tuple, the spacing between kernel taps.
      groups: split input and output channels into this many contiguous blocks, each
        convolved separately (both channel counts must be divisible by it); lowered
        for speed per backend (jaxlayers.layers.depthwise).
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      kernel_initializer, bias_initializer: initializer names or functions.
      kernel_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (rows, cols, in / groups, filters), ``bias`` (filters,).

    Input shape: ``(batch, rows, cols, in)`` (channels_last) or ``(batch, in, rows, cols)``.

    Output shape: ``(batch, new_rows, new_cols, filters)`` or channels first; each dim
    ``ceil(n / s)`` for "same", ``floor((n - k_eff) / s) + 1`` for "valid", with
    ``k_eff = (k - 1) * dilation + 1``.
    """
    return _conv("Conv2D", 2, filters, kernel_size, strides, padding, data_format, dilation_rate,
                 groups, activation, use_bias, kernel_initializer, bias_initializer,
                 kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
                 bias_constraint)


@keras_layer
def Conv3D(filters, kernel_size, strides=(1, 1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1, 1), groups=1, activation=None, use_bias=True,
           kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
           bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None) -> Layer:
    """3-D convolution (Keras' `Conv3D`): ``activation(conv(x, kernel) + bias)``.

    Args:
      filters: number of output channels.
      kernel_size: int or 3-tuple, the window.
      strides: int or 3-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: "valid" (no padding) or "same" (zeros so each dim gives ``ceil(n / s)``).
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 3-tuple, the spacing between kernel taps.
      groups: split input and output channels into this many contiguous blocks, each
        convolved separately (both channel counts must be divisible by it).
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      kernel_initializer, bias_initializer: initializer names or functions.
      kernel_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (d1, d2, d3, in / groups, filters), ``bias`` (filters,).

    Input shape: ``(batch, d1, d2, d3, in)`` (channels_last) or ``(batch, in, d1, d2, d3)``.

    Output shape: ``(batch, new_d1, new_d2, new_d3, filters)`` or channels first; each dim
    as for `Conv2D`.
    """
    return _conv("Conv3D", 3, filters, kernel_size, strides, padding, data_format, dilation_rate,
                 groups, activation, use_bias, kernel_initializer, bias_initializer,
                 kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
                 bias_constraint)

# Keras' long alias; the other families' aliases are in `convolutions`.
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
