"""Transposed convolutions: Conv1D/2D/3DTranspose, with Keras' names, arguments,
defaults, weight layout (``kernel`` (*kernel_size, filters, in), ``bias`` (filters,)) and
output sizes. Each is a stride-dilated convolution with the flipped kernel."""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ..core import Layer, ShapeError
from .args import boolean
from .conv import _RANKED, _conv_layer, _conv_weights, _name, _positive, _window
from .docstrings import per_rank, weight_args
from .spatial import int_tuple


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
    win = _window(kind, rank, kernel_size, strides, padding, data_format, dilation_rate)
    ops = None
    if output_padding is not None:
        ops = int_tuple(kind, output_padding, rank, "output_padding", allow_zero=True)
        for i, (op, s) in enumerate(zip(ops, win.strides)):
            if op >= s:
                raise ValueError(f"{kind}: output_padding must be strictly less than strides in "
                                 f"every dim; dim {i} has output_padding={op}, strides={s}")
    name = _name(kind, filters, win.kernel, strides=win.strides, padding=win.mode,
                 output_padding=ops, dilation_rate=win.dilation,
                 data_format=win.layout.data_format, activation=activation, use_bias=use_bias)
    dims = win.layout.conv_dims("OI")
    per_dim = list(zip(win.kernel, win.strides, win.dilation, ops or (None,) * rank))
    pads = [_transpose_padding(k, s, d, win.mode, op) for k, s, d, op in per_dim]
    flip = tuple(range(rank))

    def outputs(shape, spatial):
        out = tuple(_transpose_output(n, k, s, d, win.mode, op)
                    for n, (k, s, d, op) in zip(spatial, per_dim))
        if any(o is not None and o < 1 for o in out):
            raise ShapeError(f"kernel_size={win.kernel!r} with padding={win.mode!r} and "
                             f"output_padding={ops!r} gives an empty output for input shape "
                             f"{shape!r}", name)
        return out

    def conv(x, w):
        return lax.conv_general_dilated(x, jnp.flip(w["kernel"], flip), (1,) * rank, pads,
                                        lhs_dilation=win.strides, rhs_dilation=win.dilation,
                                        dimension_numbers=dims)

    return _conv_layer(name, win, activation, use_bias,
                       _conv_weights("kernel", kernel_initializer, bias_initializer,
                                     kernel_regularizer, bias_regularizer, kernel_constraint,
                                     bias_constraint),
                       lambda c_in, shape: ({"kernel": win.kernel + (filters, c_in),
                                             "bias": (filters,)}, filters),
                       conv, lambda params: params["kernel"].shape[-1], activity_regularizer,
                       outputs)


_TRANSPOSE_DOC = """{n}-D transposed convolution (Keras' `{kind}`): the input-gradient of a
    `Conv{n}D`, with Keras' output sizes and padding split.

    Args:
      filters: number of output channels.
      kernel_size: int or {n}-tuple, the window.
      strides: int or {n}-tuple, the upsampling factor.
      padding: "valid" or "same".
      output_padding: None, or an int / {n}-tuple (each < the stride) added to the
        output size.
      {data_format}
      dilation_rate: int or {n}-tuple, the spacing between kernel taps.
      {weights}

    Params: ``kernel`` (*kernel_size, filters, in), ``bias`` (filters,).

    Input shape: ``(batch, {spatial}, in)`` (channels_last) or ``(batch, in, {spatial})``.

    Output shape: ``(batch, {new_spatial}, filters)`` or channels first; with
    ``k_eff = (k - 1) * dilation + 1`` each dim is ``(n - 1) * s + max(k_eff, s)``
    ("valid") or ``n * s`` ("same"); an output_padding p gives ``(n - 1) * s + k_eff + p``
    ("valid") or ``(n - 1) * s + k_eff % 2 + p`` ("same").
    """


Conv1DTranspose, Conv2DTranspose, Conv3DTranspose = (
    per_rank(_conv_transpose, f"Conv{r}DTranspose", r, _TRANSPOSE_DOC, ranked=_RANKED,
             weights=weight_args("kernel")) for r in (1, 2, 3))
