"""Transposed convolutions: Conv1D/2D/3DTranspose, with Keras' names, arguments,
defaults, weight layout (``kernel`` (*kernel_size, filters, in), ``bias`` (filters,)) and
output sizes. Each is a stride-dilated convolution with the flipped kernel."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..core import Layer, ShapeError
from .args import boolean, keras_layer
from .checks import cast_like
from .conv import _bias_act, _finish, _name, _positive, _window_args
from .core import _activation, _initializer
from .spatial import Layout, data_format as _data_format, int_tuple


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
    use_bias = boolean(kind, "use_bias", use_bias)
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


@keras_layer
def Conv1DTranspose(filters, kernel_size, strides=1, padding="valid", output_padding=None,
                    data_format=None, dilation_rate=1, activation=None, use_bias=True,
                    kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None) -> Layer:
    """1-D transposed convolution (Keras' `Conv1DTranspose`): the input-gradient of a `Conv1D`,
    with Keras' output sizes and padding split.

    Args:
      filters: number of output channels.
      kernel_size: int or 1-tuple, the window.
      strides: int or 1-tuple, the upsampling factor.
      padding: "valid" or "same".
      output_padding: None, or an int / 1-tuple (each < the stride) added to the
        output size.
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 1-tuple, the spacing between kernel taps.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      kernel_initializer, bias_initializer: initializer names or functions.
      kernel_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (kernel_size, filters, in), ``bias`` (filters,).

    Input shape: ``(batch, steps, in)`` (channels_last) or ``(batch, in, steps)``.

    Output shape: ``(batch, new_steps, filters)`` or channels first; with ``k_eff = (k - 1)
    * dilation + 1`` each dim is ``(n - 1) * s + max(k_eff, s)`` ("valid") or ``n * s``
    ("same"); an output_padding p gives ``(n - 1) * s + k_eff + p`` ("valid") or
    ``(n - 1) * s + k_eff % 2 + p`` ("same").
    """
    return _conv_transpose("Conv1DTranspose", 1, filters, kernel_size, strides, padding,
                           output_padding, data_format, dilation_rate, activation, use_bias,
                           kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, activity_regularizer, kernel_constraint,
                           bias_constraint)


@keras_layer
def Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                    kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None) -> Layer:
    """2-D transposed convolution (Keras' `Conv2DTranspose`): the input-gradient of a `Conv2D`,
    with Keras' output sizes and padding split.

    Args:
      filters: number of output channels.
      kernel_size: int or 2-tuple, the window.
      strides: int or 2-tuple, the upsampling factor.
      padding: "valid" or "same".
      output_padding: None, or an int / 2-tuple (each < the stride) added to the
        output size.
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 2-tuple, the spacing between kernel taps.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      kernel_initializer, bias_initializer: initializer names or functions.
      kernel_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (rows, cols, filters, in), ``bias`` (filters,).

    Input shape: ``(batch, rows, cols, in)`` (channels_last) or ``(batch, in, rows, cols)``.

    Output shape: ``(batch, new_rows, new_cols, filters)`` or channels first; with ``k_eff = (k - 1)
    * dilation + 1`` each dim is ``(n - 1) * s + max(k_eff, s)`` ("valid") or ``n * s``
    ("same"); an output_padding p gives ``(n - 1) * s + k_eff + p`` ("valid") or
    ``(n - 1) * s + k_eff % 2 + p`` ("same").
    """
    return _conv_transpose("Conv2DTranspose", 2, filters, kernel_size, strides, padding,
                           output_padding, data_format, dilation_rate, activation, use_bias,
                           kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, activity_regularizer, kernel_constraint,
                           bias_constraint)


@keras_layer
def Conv3DTranspose(filters, kernel_size, strides=(1, 1, 1), padding="valid", output_padding=None,
                    data_format=None, dilation_rate=(1, 1, 1), activation=None, use_bias=True,
                    kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None) -> Layer:
    """3-D transposed convolution (Keras' `Conv3DTranspose`): the input-gradient of a `Conv3D`,
    with Keras' output sizes and padding split.

    Args:
      filters: number of output channels.
      kernel_size: int or 3-tuple, the window.
      strides: int or 3-tuple, the upsampling factor.
      padding: "valid" or "same".
      output_padding: None, or an int / 3-tuple (each < the stride) added to the
        output size.
      data_format: "channels_last" (None) or "channels_first".
      dilation_rate: int or 3-tuple, the spacing between kernel taps.
      activation: name or function applied to the output; None for linear.
      use_bias: whether to add a ``bias`` (filters,).
      kernel_initializer, bias_initializer: initializer names or functions.
      kernel_regularizer, bias_regularizer: weight penalties (``layer.penalty``).
      activity_regularizer: a penalty on the output; makes the layer stateful.
      kernel_constraint, bias_constraint: projections applied by ``layer.constrain``.

    Params: ``kernel`` (d1, d2, d3, filters, in), ``bias`` (filters,).

    Input shape: ``(batch, d1, d2, d3, in)`` (channels_last) or ``(batch, in, d1, d2, d3)``.

    Output shape: ``(batch, new_d1, new_d2, new_d3, filters)`` or channels first; with ``k_eff = (k - 1)
    * dilation + 1`` each dim is ``(n - 1) * s + max(k_eff, s)`` ("valid") or ``n * s``
    ("same"); an output_padding p gives ``(n - 1) * s + k_eff + p`` ("valid") or
    ``(n - 1) * s + k_eff % 2 + p`` ("same").
    """
    return _conv_transpose("Conv3DTranspose", 3, filters, kernel_size, strides, padding,
                           output_padding, data_format, dilation_rate, activation, use_bias,
                           kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, activity_regularizer, kernel_constraint,
                           bias_constraint)
