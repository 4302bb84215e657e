"""Convolution layers: Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D,
SeparableConv1D/2D. Keras' names, arguments, defaults and weight layouts.

One N-D implementation per family (`_conv`, `_conv_transpose`, `_depthwise`,
`_separable`), parameterised by the spatial rank; the public constructors are thin.
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
from .checks import bias_add, cast_like
from ..regularizers import with_activity_regularizer
from .core import _activation, _initializer
from .spatial import (Layout, _is_int, all_window_padding, data_format as _data_format, int_tuple,
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
    if not _is_int(value) or value < 1:
        raise ValueError(f"{kind}: {arg} must be a positive int, got {value!r}")
    return int(value)


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
        y = lax.conv_general_dilated(
            x, w, strides, all_window_padding(spatial, kernel, strides, dilation, mode),
            rhs_dilation=dilation, dimension_numbers=dims, feature_group_count=groups)
        return _bias_act(y, b, layout, act)

    return _finish(init, apply, name, activity_regularizer,
                   kernel=(kernel_regularizer, kernel_constraint),
                   bias=(bias_regularizer, bias_constraint))


_CONV_DOC = """{rank}-D convolution (Keras' `{kind}`): ``activation(conv(x, kernel) + bias)``.

    Args: filters, kernel_size, strides, padding ({padding}), data_format
    (None = "channels_last"), dilation_rate, groups (input and output channels split into
    `groups` contiguous blocks), activation, use_bias, kernel/bias initializer,
    regularizer and constraint, activity_regularizer (makes the layer stateful).

    Params: ``kernel`` (*kernel_size, in / groups, filters), ``bias`` (filters,).

    Input shape: ``(batch, {sp}, in)`` (channels_last) or ``(batch, in, {sp})``.
    Output shape: ``(batch, {out}, filters)`` or ``(batch, filters, {out})``, each
    output dim ``ceil(n / s)`` for "same", ``floor((n - k_eff) / s) + 1`` for "valid"
    (``k_eff = (k - 1) * dilation + 1``){causal}.
    """


def Conv1D(filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
           groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
           bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
           activity_regularizer=None, kernel_constraint=None, bias_constraint=None) -> Layer:
    return _conv("Conv1D", 1, **locals())


def Conv2D(filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
           kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
           bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None) -> Layer:
    return _conv("Conv2D", 2, **locals())


def Conv3D(filters, kernel_size, strides=(1, 1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1, 1), groups=1, activation=None, use_bias=True,
           kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
           bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None) -> Layer:
    return _conv("Conv3D", 3, **locals())


Conv1D.__doc__ = _CONV_DOC.format(rank=1, kind="Conv1D", padding='"valid", "same", "causal"',
                                  sp="steps", out="new_steps",
                                  causal='; "causal" pads k_eff - 1 steps on the left')
Conv2D.__doc__ = _CONV_DOC.format(rank=2, kind="Conv2D", padding='"valid", "same"',
                                  sp="rows, cols", out="new_rows, new_cols", causal="")
Conv3D.__doc__ = _CONV_DOC.format(rank=3, kind="Conv3D", padding='"valid", "same"',
                                  sp="d1, d2, d3", out="new_d1, new_d2, new_d3", causal="")


# --------------------------------------------------------------------------- ConvTranspose


def _transpose_padding(k, s, d, mode, output_padding):
    """Keras' ``(lo, hi)`` padding of the stride-dilated input for a transposed conv."""
    k_eff = (k - 1) * d + 1
    if mode == "valid":
        op = max(k_eff, s) - k_eff if output_padding is None else output_padding
        return k_eff - 1, k_eff - 1 + op
    total = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + output_padding
    lo = min(total // 2 + total % 2, k_eff - 1)
    return lo, total - lo


def _transpose_output(n, k, s, d, mode, output_padding):
    if n is None:
        return None
    lo, hi = _transpose_padding(k, s, d, mode, output_padding)
    return (n - 1) * s + lo + hi - (k - 1) * d + 1


def _conv_transpose(kind, rank, filters, kernel_size, strides=1, padding="valid",
                    output_padding=None, data_format=None, dilation_rate=1, activation=None,
                    use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None) -> Layer:
    filters = _positive(kind, filters, "filters")
    kernel, strides, mode, dilation = _window_args(kind, rank, kernel_size, strides, padding,
                                                   dilation_rate)
    ops = None
    if output_padding is not None:
        ops = int_tuple(kind, output_padding, rank, "output_padding", allow_zero=True)
        for i, (op, s) in enumerate(zip(ops, strides)):
            if op >= s:
                raise ValueError(f"{kind}: output_padding must be strictly less than strides in "
                                 f"every dim; dim {i} has output_padding={op}, strides={s}")
    layout = Layout(rank, _data_format(kind, data_format))
    name = _name(kind, filters, kernel, strides=strides, padding=mode, output_padding=ops,
                 dilation_rate=dilation, data_format=layout.data_format, activation=activation,
                 use_bias=use_bias)
    act = _activation(name, activation)
    kinit, binit = _initializer(name, kernel_initializer), _initializer(name, bias_initializer)
    dims = layout.conv_dims("OI")
    ops_ = ops or (None,) * rank
    flip = tuple(range(rank))

    def outputs(shape, spatial):
        out = tuple(_transpose_output(n, k, s, d, mode, op)
                    for n, k, s, d, op in zip(spatial, kernel, strides, dilation, ops_))
        if any(o is not None and o < 1 for o in out):
            raise ShapeError(f"kernel_size={kernel!r} with padding={mode!r} and output_padding="
                             f"{ops!r} gives an empty output for input shape {shape!r}", name)
        return out

    def init(key, input_shape):
        shape = layout.check(name, input_shape)
        batch, spatial, c_in = layout.split(shape)
        out = outputs(shape, spatial)
        k_kernel, k_bias = jax.random.split(key)
        params = {"kernel": kinit(k_kernel, kernel + (filters, c_in), jnp.float32)}
        if use_bias:
            params["bias"] = binit(k_bias, (filters,), jnp.float32)
        return layout.join(batch, out, filters), params

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x, params["kernel"].shape[-1])
        outputs(x.shape, spatial)
        w, b = cast_like(x, params["kernel"], params.get("bias"))
        pads = [_transpose_padding(k, s, d, mode, op)
                for k, s, d, op in zip(kernel, strides, dilation, ops_)]
        y = lax.conv_general_dilated(x, jnp.flip(w, flip), (1,) * rank, pads,
                                     lhs_dilation=strides, rhs_dilation=dilation,
                                     dimension_numbers=dims)
        return _bias_act(y, b, layout, act)

    return _finish(init, apply, name, activity_regularizer,
                   kernel=(kernel_regularizer, kernel_constraint),
                   bias=(bias_regularizer, bias_constraint))


_TRANSPOSE_DOC = """{rank}-D transposed convolution (Keras' `{kind}`), the gradient of a
    `Conv{rank}D` with respect to its input, as Keras computes it.

    Args: filters, kernel_size, strides, padding ("valid" or "same"), output_padding
    (None, or per-dim ints < strides), data_format, dilation_rate, activation, use_bias,
    kernel/bias initializer, regularizer and constraint, activity_regularizer.

    Params: ``kernel`` (*kernel_size, filters, in), ``bias`` (filters,).

    Input shape: ``(batch, {sp}, in)`` (channels_last) or ``(batch, in, {sp})``.
    Output shape: ``(batch, {out}, filters)`` or ``(batch, filters, {out})``; with
    ``k_eff = (k - 1) * dilation + 1`` each output dim is ``(n - 1) * s + max(k_eff, s)``
    for "valid" and ``n * s`` for "same"; an `output_padding` p gives
    ``(n - 1) * s + k_eff + p`` ("valid") or ``(n - 1) * s + k_eff % 2 + p`` ("same").
    """


def Conv1DTranspose(filters, kernel_size, strides=1, padding="valid", output_padding=None,
                    data_format=None, dilation_rate=1, activation=None, use_bias=True,
                    kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None) -> Layer:
    return _conv_transpose("Conv1DTranspose", 1, **locals())


def Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                    kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None) -> Layer:
    return _conv_transpose("Conv2DTranspose", 2, **locals())


def Conv3DTranspose(filters, kernel_size, strides=(1, 1, 1), padding="valid",
                    output_padding=None, data_format=None, dilation_rate=(1, 1, 1),
                    activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                    bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                    activity_regularizer=None, kernel_constraint=None,
                    bias_constraint=None) -> Layer:
    return _conv_transpose("Conv3DTranspose", 3, **locals())


Conv1DTranspose.__doc__ = _TRANSPOSE_DOC.format(rank=1, kind="Conv1DTranspose", sp="steps",
                                                out="new_steps")
Conv2DTranspose.__doc__ = _TRANSPOSE_DOC.format(rank=2, kind="Conv2DTranspose", sp="rows, cols",
                                                out="new_rows, new_cols")
Conv3DTranspose.__doc__ = _TRANSPOSE_DOC.format(rank=3, kind="Conv3DTranspose",
                                                sp="d1, d2, d3", out="new_d1, new_d2, new_d3")


# --------------------------------------------------------------------------- Depthwise


def _depthwise_conv(x, w, layout, kernel, strides, dilation, mode):
    """Each input channel c convolved with its own `depth_multiplier` filters
    ``w[..., c, :]`` (w: (*kernel, in, dm)); output channel ``c * dm + m``."""
    *k, c_in, dm = w.shape
    spatial = layout.split(x.shape)[1]
    return lax.conv_general_dilated(
        x, w.reshape(tuple(k) + (1, c_in * dm)), strides,
        all_window_padding(spatial, kernel, strides, dilation, mode), rhs_dilation=dilation,
        dimension_numbers=layout.conv_dims("IO"), feature_group_count=c_in)


def _depthwise(kind, rank, kernel_size, strides=1, padding="valid", depth_multiplier=1,
               data_format=None, dilation_rate=1, activation=None, use_bias=True,
               depthwise_initializer="glorot_uniform", bias_initializer="zeros",
               depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
               depthwise_constraint=None, bias_constraint=None) -> Layer:
    dm = _positive(kind, depth_multiplier, "depth_multiplier")
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


_DEPTHWISE_DOC = """{rank}-D depthwise convolution (Keras' `{kind}`): each input channel is
    convolved with its own `depth_multiplier` filters (a grouped conv with groups = in);
    output channel ``c * depth_multiplier + m`` reads input channel c.

    Args: kernel_size, strides, padding ("valid" or "same"), depth_multiplier, data_format,
    dilation_rate, activation, use_bias, depthwise/bias initializer, regularizer and
    constraint, activity_regularizer.

    Params: ``kernel`` (*kernel_size, in, depth_multiplier), ``bias`` (in * depth_multiplier,).

    Input shape: ``(batch, {sp}, in)`` (channels_last) or ``(batch, in, {sp})``.
    Output shape: ``(batch, {out}, in * depth_multiplier)`` (or channels first), the
    spatial dims as for `Conv{rank}D`.
    """


def DepthwiseConv1D(kernel_size, strides=1, padding="valid", depth_multiplier=1,
                    data_format=None, dilation_rate=1, activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                    depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, bias_constraint=None) -> Layer:
    return _depthwise("DepthwiseConv1D", 1, **locals())


def DepthwiseConv2D(kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                    depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, bias_constraint=None) -> Layer:
    return _depthwise("DepthwiseConv2D", 2, **locals())


DepthwiseConv1D.__doc__ = _DEPTHWISE_DOC.format(rank=1, kind="DepthwiseConv1D", sp="steps",
                                                out="new_steps")
DepthwiseConv2D.__doc__ = _DEPTHWISE_DOC.format(rank=2, kind="DepthwiseConv2D", sp="rows, cols",
                                                out="new_rows, new_cols")


# --------------------------------------------------------------------------- Separable


def _separable(kind, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
               dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
               depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
               bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
               bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
               pointwise_constraint=None, bias_constraint=None) -> Layer:
    filters = _positive(kind, filters, "filters")
    dm = _positive(kind, depth_multiplier, "depth_multiplier")
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


_SEPARABLE_DOC = """{rank}-D separable convolution (Keras' `{kind}`): a depthwise conv
    (strides, padding and dilation apply here) followed by a pointwise (1x...x1) conv to
    `filters` channels, then one bias and the activation.

    Args: filters, kernel_size, strides, padding ("valid" or "same"), data_format,
    dilation_rate, depth_multiplier, activation, use_bias, depthwise/pointwise/bias
    initializer, regularizer and constraint, activity_regularizer.

    Params: ``depthwise_kernel`` (*kernel_size, in, depth_multiplier), ``pointwise_kernel``
    ({ones}, in * depth_multiplier, filters), ``bias`` (filters,).

    Input shape: ``(batch, {sp}, in)`` (channels_last) or ``(batch, in, {sp})``.
    Output shape: ``(batch, {out}, filters)`` (or channels first), the spatial dims as
    for `Conv{rank}D`.
    """


def SeparableConv1D(filters, kernel_size, strides=1, padding="valid", data_format=None,
                    dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                    bias_initializer="zeros", depthwise_regularizer=None,
                    pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, pointwise_constraint=None,
                    bias_constraint=None) -> Layer:
    return _separable("SeparableConv1D", 1, **locals())


def SeparableConv2D(filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                    dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                    depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                    bias_initializer="zeros", depthwise_regularizer=None,
                    pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    depthwise_constraint=None, pointwise_constraint=None,
                    bias_constraint=None) -> Layer:
    return _separable("SeparableConv2D", 2, **locals())


SeparableConv1D.__doc__ = _SEPARABLE_DOC.format(rank=1, kind="SeparableConv1D", ones="1",
                                                sp="steps", out="new_steps")
SeparableConv2D.__doc__ = _SEPARABLE_DOC.format(rank=2, kind="SeparableConv2D", ones="1, 1",
                                                sp="rows, cols", out="new_rows, new_cols")

# Keras' long aliases.
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = (
    Conv1DTranspose, Conv2DTranspose, Conv3DTranspose)
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
