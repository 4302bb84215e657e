"""Convolution layers: Conv1D/2D/3D here, with the helpers the family shares; the
transposed convs (`conv_transpose`) and the depthwise / separable convs (`separable`)
are re-exported. Keras' names, arguments, defaults and weight layouts.

One N-D implementation per family (`_conv`, `_conv_transpose`, `_depthwise`,
`_separable`), parameterised by the spatial rank, all built by `_conv_layer`; the public
constructors are thin, their docstrings one template per family (`docstrings.doc`).
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

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .weights import weight_hooks
from ..core import Layer, ShapeError, describe
from .args import boolean, positive_int
from .checks import bias_add, cast_like
from ..regularizers import with_activity_regularizer
from .core import _activation, _initializer
from .depthwise import grouped_conv
from .docstrings import per_rank, weight_args
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


class _Window(NamedTuple):
    """A conv layer's validated window, in Keras' conventions, and its layout."""
    kernel: tuple
    strides: tuple
    mode: str
    dilation: tuple
    layout: Layout

    def outputs(self, name, shape, spatial):
        """The output's spatial sizes (a ShapeError naming `name` when one is empty)."""
        return window_outputs(name, shape, spatial, self.kernel, self.strides, self.dilation,
                              self.mode)

    def padding(self, spatial):
        return all_window_padding(spatial, self.kernel, self.strides, self.dilation, self.mode)


def _window(kind, rank, kernel_size, strides, padding, data_format, dilation_rate,
            causal=False) -> _Window:
    kernel = int_tuple(kind, kernel_size, rank, "kernel_size")
    strides = int_tuple(kind, strides, rank, "strides")
    dilation = int_tuple(kind, dilation_rate, rank, "dilation_rate")
    mode = padding_mode(kind, padding, ("valid", "same", "causal") if causal else ("valid", "same"))
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(f"{kind}: strides > 1 is not supported together with dilation_rate > 1, "
                         f"got strides={strides} and dilation_rate={dilation}")
    return _Window(kernel, strides, mode, dilation, Layout(rank, _data_format(kind, data_format)))


def _positive(kind, value, arg):
    return positive_int(kind, arg, value)


def _conv_layer(name, window, activation, use_bias, weights, shapes, conv, in_channels,
                activity_regularizer, outputs=None) -> Layer:
    """The Layer every conv family builds.

    `weights` maps each weight name (``bias`` last) to its ``(initializer, regularizer,
    constraint)``; `shapes(c_in, input_shape)` gives each weight's shape and the output
    channels; ``conv(x, w)`` convolves `x` with the weights `w` (cast to `x`'s dtype), the
    bias and activation added after it; `in_channels(params)` is the input channel count the
    params expect; `outputs(input_shape, spatial)` the output's spatial sizes (default: the
    window's).
    """
    layout = window.layout
    act = _activation(name, activation)
    inits = {k: _initializer(name, spec[0]) for k, spec in weights.items()}
    outputs = outputs or (lambda shape, spatial: window.outputs(name, shape, spatial))

    def init(key, input_shape):
        shape = layout.check(name, input_shape)
        batch, spatial, c_in = layout.split(shape)
        out = outputs(shape, spatial)
        sizes, c_out = shapes(c_in, shape)
        keys = jax.random.split(key, len(inits))
        params = {k: make(k_w, sizes[k], jnp.float32)
                  for (k, make), k_w in zip(inits.items(), keys) if use_bias or k != "bias"}
        return layout.join(batch, out, c_out), params

    def apply(params, x, *, rng=None, train=False):
        spatial = layout.check_array(name, x, in_channels(params))
        outputs(x.shape, spatial)
        w = dict(zip(params, cast_like(x, *params.values())))
        y = conv(x, w)
        if "bias" in w:     # the params' own (fold_for_inference gives use_bias=False one)
            y = bias_add(y, w["bias"], layout.channel_axis)
        return act(y)

    penalty, constrain = weight_hooks(name, **{k: spec[1:] for k, spec in weights.items()})
    layer = Layer(init, apply, name=name, penalty=penalty, constrain=constrain)
    return with_activity_regularizer(layer, activity_regularizer)


def _conv_weights(kernel, kernel_initializer, bias_initializer, kernel_regularizer,
                  bias_regularizer, kernel_constraint, bias_constraint) -> dict:
    """`_conv_layer`'s `weights` for a layer with a ``kernel`` (named `kernel`) and a bias."""
    return {kernel: (kernel_initializer, kernel_regularizer, kernel_constraint),
            "bias": (bias_initializer, bias_regularizer, bias_constraint)}


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
    win = _window(kind, rank, kernel_size, strides, padding, data_format, dilation_rate,
                  causal=rank == 1)
    name = _name(kind, filters, win.kernel, strides=win.strides, padding=win.mode,
                 dilation_rate=win.dilation, groups=groups, data_format=win.layout.data_format,
                 activation=activation, use_bias=use_bias)
    dims = win.layout.conv_dims("IO")

    def shapes(c_in, shape):
        if c_in % groups:
            raise ShapeError(f"the input has {c_in} channels, not divisible by groups={groups} "
                             f"(input shape {shape!r})", name)
        return {"kernel": win.kernel + (c_in // groups, filters), "bias": (filters,)}, filters

    def conv(x, w):
        pads = win.padding(win.layout.split(x.shape)[1])
        if groups > 1:
            return grouped_conv(x, w["kernel"], groups, win.layout, win.strides, pads,
                                win.dilation)
        return lax.conv_general_dilated(x, w["kernel"], win.strides, pads,
                                        rhs_dilation=win.dilation, dimension_numbers=dims)

    return _conv_layer(name, win, activation, use_bias,
                       _conv_weights("kernel", kernel_initializer, bias_initializer,
                                     kernel_regularizer, bias_regularizer, kernel_constraint,
                                     bias_constraint),
                       shapes, conv, lambda params: params["kernel"].shape[-2] * groups,
                       activity_regularizer)


_CONV_DOC = """{n}-D convolution (Keras' `{kind}`): ``activation(conv(x, kernel) + bias)``.

    Args:
      filters: number of output channels.
      kernel_size: int or {n}-tuple, the window.
      strides: int or {n}-tuple; > 1 is not allowed together with dilation_rate > 1.
      padding: {padding}
      {data_format}
      dilation_rate: int or {n}-tuple, the spacing between kernel taps.
      groups: split input and output channels into this many contiguous blocks, each
        convolved separately (both channel counts must be divisible by it); lowered
        for speed per backend (jaxlayers.layers.depthwise).
      {weights}

    Params: ``kernel`` (*kernel_size, in / groups, filters), ``bias`` (filters,).

    Input shape: ``(batch, {spatial}, in)`` (channels_last) or ``(batch, in, {spatial})``.

    Output shape: ``(batch, {new_spatial}, filters)`` or channels first; with
    ``k_eff = (k - 1) * dilation + 1`` each dim is ``ceil(n / s)`` for "same",
    ``floor((n - k_eff) / s) + 1`` for "valid"{causal}.
    """

_PADDING = '"valid" (no padding) or "same" (zeros so each dim gives ``ceil(n / s)``).'
_CAUSAL = ('"valid", "same" or "causal" (``k_eff - 1`` zeros on the left, for\n'
           '  temporal models).')


_RANKED = ("strides", "dilation_rate")     # int defaults written as rank-tuples, as Keras
Conv1D, Conv2D, Conv3D = (
    per_rank(_conv, f"Conv{r}D", r, _CONV_DOC, ranked=_RANKED, weights=weight_args("kernel"),
             padding=_CAUSAL if r == 1 else _PADDING,
             causal=' and ``n`` for "causal"' if r == 1 else "") for r in (1, 2, 3))

# Keras' long alias; the other families' aliases are in `convolutions`.
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
