"""Convolutional LSTMs: ConvLSTM1D, ConvLSTM2D, ConvLSTM3D (Shi et al., 2015), as Keras 3.

An LSTM whose input and recurrent transformations are convolutions. Keras' weights:
``kernel`` (*kernel_size, in, 4*filters), ``recurrent_kernel`` (*kernel_size, filters,
4*filters), ``bias`` (4*filters,), gate blocks i, f, c, o. The input convolution uses the
layer's strides, padding and dilation; the recurrent one stride 1, "same" padding, no
dilation. One `lax.scan` over time; the input convolution of every step runs once before
it (one batched conv over batch x time), the recurrent one inside it. The states h and c
are ``(batch, *out_spatial, filters)`` (channels_first: ``(batch, filters, *out_spatial)``).
A stateful layer keeps them in the state channel under ``"rnn_state"`` (`reset_states`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from .. import activations as _activations
from .. import initializers as _initializers
from ..core import Layer, Shape, ShapeError, as_shape, describe, is_free, makes_mask
from ..regularizers import with_activity_regularizer
from .args import boolean, fraction, keras_layer, positive_int
from .cells import lookup
from .checks import need_rng
from .recurrent import STATE_KEY
from .spatial import (Layout, all_window_padding, data_format as _data_format, int_tuple,
                      padding_mode, window_outputs)
from .weights import weight_hooks

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]


def _gate_masks(key, rate, shape, dtype):
    """Four dropout masks (one per gate) of `shape`: 0 with probability `rate`, else
    1 / (1 - rate)."""
    keep = jax.random.bernoulli(key, 1.0 - rate, (4,) + tuple(shape))
    return jnp.where(keep, 1.0 / (1.0 - rate), 0.0).astype(dtype)


def _conv_lstm(kind, rank, filters, kernel_size, strides, padding, data_format, dilation_rate,
               activation, recurrent_activation, use_bias, kernel_initializer,
               recurrent_initializer, bias_initializer, unit_forget_bias, rules, dropout,
               recurrent_dropout, return_sequences, return_state, go_backwards, stateful,
               unroll, zero_output_for_mask) -> Layer:
    filters = positive_int(kind, "filters", filters)
    kernel = int_tuple(kind, kernel_size, rank, "kernel_size")
    strides = int_tuple(kind, strides, rank, "strides")
    dilation = int_tuple(kind, dilation_rate, rank, "dilation_rate")
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(f"{kind}: strides > 1 is not compatible with dilation_rate > 1 (as "
                         f"in Keras), got strides={strides}, dilation_rate={dilation}")
    mode = padding_mode(kind, padding)
    layout = Layout(rank, _data_format(kind, data_format))
    act = lookup(_activations, "activation", activation, kind)
    rec_act = lookup(_activations, "recurrent_activation", recurrent_activation, kind)
    kinit, rinit, binit = (lookup(_initializers, what, value, kind) for what, value in zip(
        ("kernel_initializer", "recurrent_initializer", "bias_initializer"),
        (kernel_initializer, recurrent_initializer, bias_initializer)))
    flags = dict(use_bias=use_bias, unit_forget_bias=unit_forget_bias,
                 return_sequences=return_sequences, return_state=return_state,
                 go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                 zero_output_for_mask=zero_output_for_mask)
    for arg, value in flags.items():
        boolean(kind, arg, value)
    dropout = fraction(kind, "dropout", dropout, include_one=False)
    recurrent_dropout = fraction(kind, "recurrent_dropout", recurrent_dropout, include_one=False)
    shown = {k: v for k, v in flags.items() if v and k not in ("use_bias", "unit_forget_bias")}
    name = describe(kind, filters, kernel if rank > 1 else kernel[0],
                    **({"strides": strides} if max(strides) > 1 else {}),
                    **({"padding": mode} if mode != "valid" else {}),
                    **({"dilation_rate": dilation} if max(dilation) > 1 else {}),
                    **({"data_format": layout.data_format} if layout.first else {}),
                    **({"dropout": dropout} if dropout else {}),
                    **({"recurrent_dropout": recurrent_dropout} if recurrent_dropout else {}),
                    **shown)
    penalty, constrain = weight_hooks(name, **rules)
    lhs, rhs, out_spec = layout.conv_dims("IO")
    ones = (1,) * rank

    def conv(x, w, stride, pads, dil):
        return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dil,
                                        dimension_numbers=(lhs, rhs, out_spec))

    def shapes(input_shape):
        """(batch, time, spatial, channels, out_spatial) of a full input shape."""
        shape = as_shape(input_shape)
        if len(shape) != rank + 3:
            raise ShapeError(f"expected a rank-{rank + 3} input (batch, time, "
                             f"{layout.describe().replace('batch, ', '')}), received "
                             f"{shape!r}", name)
        batch, time, step = shape[0], shape[1], shape[2:]
        _, spatial, channels = layout.split((batch,) + tuple(step))
        if is_free(channels) or any(is_free(d) for d in spatial):
            raise ShapeError(f"the channel and spatial axes of the input must be known (as "
                             f"Keras requires), received {shape!r}", name)
        out = window_outputs(name, shape, spatial, kernel, strides, dilation, mode)
        return batch, time, spatial, channels, out

    def init_s(key, input_shape):
        batch, time, spatial, channels, out = shapes(input_shape)
        if stateful and is_free(batch):
            raise ShapeError(f"stateful=True needs a fixed batch size, received "
                             f"{as_shape(input_shape)!r}", name)
        k1, k2, k3 = jax.random.split(key, 3)
        params = {"kernel": kinit(k1, kernel + (channels, 4 * filters), jnp.float32),
                  "recurrent_kernel": rinit(k2, kernel + (filters, 4 * filters), jnp.float32)}
        if use_bias:
            if unit_forget_bias:
                ka, kb = jax.random.split(k3)
                params["bias"] = jnp.concatenate([
                    binit(ka, (filters,), jnp.float32), jnp.ones((filters,), jnp.float32),
                    binit(kb, (2 * filters,), jnp.float32)])
            else:
                params["bias"] = binit(k3, (4 * filters,), jnp.float32)
        state_shape = layout.join(batch, out, filters)
        y = Shape((batch, time) + tuple(state_shape[1:])) if return_sequences else state_shape
        if return_state:
            y = (y, state_shape, state_shape)
        state = ({STATE_KEY: (jnp.zeros(state_shape, jnp.float32),) * 2} if stateful else ())
        return y, params, state

    def input_convs(params, xs, in_masks):
        """The input convolution of every step at once: ``(batch * time, ...)`` frames, the
        bias added; with dropout each gate convolves its own masked copy."""
        pads = all_window_padding(layout.split(xs.shape)[1], kernel, strides, dilation, mode)
        w = params["kernel"].astype(xs.dtype)
        if in_masks is None:
            z = conv(xs, w, strides, pads, dilation)
        else:
            blocks = jnp.split(w, 4, axis=-1)
            z = jnp.concatenate([conv(xs * m, b, strides, pads, dilation)
                                 for m, b in zip(in_masks, blocks)], axis=layout.channel_axis)
        if "bias" in params:
            bias = params["bias"].astype(xs.dtype)
            z = z + bias.reshape((1, -1) + ones if layout.first else (1,) + ones + (-1,))
        return z

    def step_fn(params, rec_masks, out_spatial):
        rk = params["recurrent_kernel"]
        pads = all_window_padding(out_spatial, kernel, ones, ones, "same")
        axis = layout.channel_axis

        def step(carry, inputs):
            (h, c), (z_t, m_t) = carry, inputs
            rkd = rk.astype(h.dtype)
            if rec_masks is None:
                r = conv(h, rkd, ones, pads, ones)
            else:
                r = jnp.concatenate([conv(h * m, b, ones, pads, ones) for m, b in
                                     zip(rec_masks, jnp.split(rkd, 4, axis=-1))], axis=axis)
            i, f, g, o = jnp.split(z_t + r, 4, axis=axis)
            new_c = rec_act(f) * c + rec_act(i) * act(g)
            new_h = rec_act(o) * act(new_c)
            y = new_h
            if m_t is not None:
                keep = m_t.reshape((-1,) + (1,) * (h.ndim - 1))
                new_h, new_c = jnp.where(keep, new_h, h), jnp.where(keep, new_c, c)
                y = jnp.where(keep, y, jnp.zeros_like(y)) if zero_output_for_mask else new_h
            return (new_h, new_c), y
        return step

    def apply_s(params, state, x, *, rng=None, train=False, mask=None, initial_state=None):
        x = jnp.asarray(x)
        if x.ndim != rank + 3:
            raise ShapeError(f"expected a rank-{rank + 3} input, received "
                             f"{Shape(x.shape)!r}", name)
        batch, time, spatial, channels, out = shapes(x.shape)
        if channels != params["kernel"].shape[-2]:
            raise ShapeError(f"expected {params['kernel'].shape[-2]} input channels, received "
                             f"an input of shape {Shape(x.shape)!r}", name)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        x = x.astype(dtype)
        state_shape = tuple(layout.join(batch, out, filters))
        if initial_state is None and stateful:
            initial_state = state[STATE_KEY]
        if initial_state is None:
            h0 = c0 = jnp.zeros(state_shape, dtype)
        else:
            given = tuple(initial_state)
            if len(given) != 2 or any(tuple(jnp.shape(s)) != state_shape for s in given):
                raise ShapeError(f"initial_state must be [h, c], each of shape {state_shape}, "
                                 f"received {[tuple(jnp.shape(s)) for s in given]}", name)
            h0, c0 = (jnp.asarray(s).astype(dtype) for s in given)
        in_masks = rec_masks = None
        if train and (dropout > 0 or recurrent_dropout > 0):
            need_rng(name, rng)
            k_in, k_rec = jax.random.split(rng)
            if dropout > 0:   # one mask per gate and example, shared over time (Keras)
                in_masks = _gate_masks(k_in, dropout, (batch, 1) + x.shape[2:], dtype)
            if recurrent_dropout > 0:
                rec_masks = _gate_masks(k_rec, recurrent_dropout, state_shape, dtype)
        frames = x.reshape((batch * time,) + x.shape[2:])
        frame_masks = None if in_masks is None else jnp.broadcast_to(
            in_masks, (4, batch, time) + x.shape[2:]).reshape((4, batch * time) + x.shape[2:])
        z = input_convs(params, frames, frame_masks)
        zs = jnp.swapaxes(z.reshape((batch, time) + z.shape[1:]), 0, 1)     # time-major
        ms = None
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.shape != (batch, time):
                raise ShapeError(f"mask shape {Shape(mask.shape)!r} does not match the input's "
                                 f"(batch, time) = {(batch, time)}", name)
            ms = jnp.swapaxes(mask.astype(bool), 0, 1)
        if go_backwards:
            zs = zs[::-1]
            ms = None if ms is None else ms[::-1]
        step = step_fn(params, rec_masks, out)
        (h, c), ys = lax.scan(step, (h0, c0), (zs, ms), unroll=True if unroll else 1)
        y = jnp.swapaxes(ys, 0, 1) if return_sequences else (ys[-1] if zero_output_for_mask
                                                              and ms is not None else h)
        if stateful:
            state = {STATE_KEY: (h.astype(jnp.float32), c.astype(jnp.float32))}
        return ((y, h, c) if return_state else y), state

    common = dict(name=name, penalty=penalty, constrain=constrain,
                  masking=makes_mask(lambda x, m: m if return_sequences else None, takes=True))
    if stateful:
        return Layer(init_s, apply_s, stateful=True, **common)

    def init(key, input_shape):
        return init_s(key, input_shape)[:2]

    def apply(params, x, *, rng=None, train=False, mask=None, initial_state=None):
        return apply_s(params, (), x, rng=rng, train=train, mask=mask,
                       initial_state=initial_state)[0]

    return Layer(init, apply, **common)


def _make(kind, rank):
    def constructor(filters, kernel_size, strides=1, padding="valid", data_format=None,
                    dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                    use_bias=True, kernel_initializer="glorot_uniform",
                    recurrent_initializer="orthogonal", bias_initializer="zeros",
                    unit_forget_bias=True, kernel_regularizer=None,
                    recurrent_regularizer=None, bias_regularizer=None,
                    activity_regularizer=None, kernel_constraint=None,
                    recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                    recurrent_dropout=0.0, seed=None, return_sequences=False,
                    return_state=False, go_backwards=False, stateful=False, unroll=False,
                    zero_output_for_mask=False) -> Layer:
        rules = {"kernel": (kernel_regularizer, kernel_constraint),
                 "recurrent_kernel": (recurrent_regularizer, recurrent_constraint),
                 "bias": (bias_regularizer, bias_constraint)}
        layer = _conv_lstm(kind, rank, filters, kernel_size, strides, padding, data_format,
                           dilation_rate, activation, recurrent_activation, use_bias,
                           kernel_initializer, recurrent_initializer, bias_initializer,
                           unit_forget_bias, rules, dropout, recurrent_dropout,
                           return_sequences, return_state, go_backwards, stateful, unroll,
                           zero_output_for_mask)
        try:
            return with_activity_regularizer(layer, activity_regularizer)
        except ValueError as e:
            raise ValueError(f"{kind}: activity_regularizer: {e}") from None
    constructor.__name__ = constructor.__qualname__ = kind
    sp = ("steps", "rows, cols", "d1, d2, d3")[rank - 1]
    constructor.__doc__ = _DOC.format(kind=kind, rank=rank, sp=sp)
    return keras_layer(constructor)


_DOC = """{rank}-D convolutional LSTM: an LSTM whose transformations are convolutions.

    With ``z = conv(x_t, kernel) + bias + conv_same(h, recurrent_kernel)`` split into the
    gate blocks i, f, c~, o and ``s = recurrent_activation``:
    ``c' = s(f) * c + s(i) * activation(c~)``, ``h' = s(o) * activation(c')``.

    Args:
      filters: the number of output channels (per gate), a positive int.
      kernel_size: an int or {rank} ints, the window of both convolutions.
      strides: an int or {rank} ints, the input convolution's strides.
      padding: "valid" or "same", the input convolution's padding (the recurrent one
        always pads "same").
      data_format: "channels_last" (None) or "channels_first", the layout of each frame.
      dilation_rate: an int or {rank} ints, the input convolution's dilation (not with
        strides > 1).
      activation: the cell and output activation ("tanh").
      recurrent_activation: the gates' activation ("sigmoid").
      use_bias: whether to add ``bias``.
      kernel_initializer, recurrent_initializer, bias_initializer: the initializers.
      unit_forget_bias: initialise the forget gate's bias to 1.
      kernel_regularizer, recurrent_regularizer, bias_regularizer: weight regularizers.
      activity_regularizer: a regularizer of the output; makes the layer stateful.
      kernel_constraint, recurrent_constraint, bias_constraint: weight constraints.
      dropout: the fraction of the input dropped in training (one mask per gate and
        example, the same at every step; needs `rng`).
      recurrent_dropout: the same for the recurrent state.
      seed: accepted for Keras compatibility (randomness comes from `rng`).
      return_sequences: return every step's output, not only the last.
      return_state: also return the final states: ``(output, h, c)``.
      go_backwards: process the sequence in reverse (a returned sequence is in processing
        order, as Keras).
      stateful: keep the last states between calls in the state channel (a fixed batch
        size; `jl.reset_states` zeroes them).
      unroll: unroll the time loop.
      zero_output_for_mask: masked steps output zeros instead of repeating the last output.

    ``apply(params, x, *, rng=None, train=False, mask=None, initial_state=None)``: `mask`
    is a boolean (batch, time) array (a masked step keeps the states); `initial_state` is
    ``[h, c]``.

    Input shape: ``(batch, time, {sp}, channels)`` (channels_last) or
    ``(batch, time, channels, {sp})``; the spatial and channel axes known.
    Output shape: ``(batch, out_{sp}, filters)`` (the input convolution's output size), with
    return_sequences ``(batch, time, ...)``; with return_state ``(output, h, c)``.
    """

ConvLSTM1D = _make("ConvLSTM1D", 1)
ConvLSTM2D = _make("ConvLSTM2D", 2)
ConvLSTM3D = _make("ConvLSTM3D", 3)
