"""Grouped and depthwise convolutions, lowered for speed.

XLA:CPU runs a convolution with ``feature_group_count > 1`` as a slow generic loop, and
its gradient slower still (a depthwise 3x3 conv on (16, 32, 32, 144): ~25x the forward
time and ~10-30x the gradient time of the same numbers computed as shifted multiplies).
`grouped_conv` picks a lowering per backend and shape:

- ``"xla"``: ``lax.conv_general_dilated(..., feature_group_count=groups)`` (cuDNN on GPU);
- ``"shifted"``: pad the input once, then for every kernel tap take the strided slice of
  the padded input that tap reads and multiply-add it with the tap's weights. With one
  input channel per group (depthwise) the product is elementwise and XLA fuses all taps
  into one pass; with more it is a small per-group contraction per tap.

Both are differentiated through a custom JVP whose tangent is written so that its
transpose (reverse mode) is fast on XLA:CPU: the input's cotangent is one fused shifted
sum (flipped kernel), the kernel's is reduced image by image; never XLA:CPU's grouped-conv
gradient. Forward mode (``jax.jvp``, ``jacfwd``) works too. `_prefers_shifted` is the
measured rule (docs/conv.md has the figures); `LOWERING` forces one path everywhere.
"""
from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
from jax import lax

# None: the measured rule decides; "xla" or "shifted" forces that lowering everywhere
# (tests and benchmarks set it to check or time each path).
LOWERING = None


def _prefers_shifted():
    """Whether grouped convs take the shifted lowering: on CPU, where it was measured
    faster at every group width in training and for depthwise convs in inference too
    (docs/conv.md); not on GPU/TPU, where cuDNN's / XLA's grouped kernels are fast (not
    measured yet: bench/gpu.sh runs both). Decided at trace time."""
    return jax.default_backend() == "cpu"


def grouped_conv(x, w, groups, layout, strides, padding, dilation, lowering=None):
    """``lax.conv_general_dilated(..., feature_group_count=groups)`` of `x` with `w`,
    lowered as `lowering` says (None: `LOWERING`, else the measured rule).

    x: (batch, *spatial, in) or (batch, in, *spatial) per `layout`; w: (*kernel, in / groups,
    out), Keras' layout; padding: ``(lo, hi)`` per spatial dim. Returns (batch, *out_spatial,
    out) in `layout`; both lowerings agree within float32 rounding."""
    lowering = lowering or LOWERING
    if lowering is None:
        lowering = "shifted" if groups > 1 and _prefers_shifted() else "xla"
    if lowering not in ("xla", "shifted"):
        raise ValueError(f"grouped_conv: lowering must be None, 'xla' or 'shifted', "
                         f"got {lowering!r}")
    geometry = (layout, tuple(w.shape[:-2]), tuple(strides), tuple(map(tuple, padding)),
                tuple(dilation))
    if lowering == "xla":
        return _xla(x, w, groups, geometry)
    width, filters = w.shape[-2:]
    if width > 1:
        return _grouped(x, w, groups, geometry)
    per_group = filters // groups  # depthwise: output channel o reads input o // per_group
    if per_group > 1:
        x = jnp.repeat(x, per_group, axis=layout.channel_axis)
    return _channelwise(x, w.reshape(w.shape[:-2] + (filters,)), geometry)


def depthwise_conv(x, w, layout, strides, padding, dilation, lowering=None):
    """Each input channel c convolved with its own `dm` filters ``w[..., c, :]``
    (w: (*kernel, in, dm)); output channel ``c * dm + m``, as Keras orders them."""
    *k, c_in, dm = w.shape
    return grouped_conv(x, w.reshape(tuple(k) + (1, c_in * dm)), c_in, layout, strides,
                        padding, dilation, lowering)


def _xla(x, w, groups, geometry):
    layout, _, strides, padding, dilation = geometry
    return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=layout.conv_dims("IO"),
                                    feature_group_count=groups)


def _taps(x, layout, kernel, strides, padding, dilation):
    """Yield ``(tap, slice)``: for each kernel position, the strided window of the padded
    input that it multiplies (the output's spatial shape, the input's channels)."""
    pads = [(0, 0, 0)] * x.ndim
    for axis, (lo, hi) in zip(layout.spatial_axes, padding):
        pads[axis] = (lo, hi, 0)
    xp = lax.pad(x, jnp.zeros((), x.dtype), pads)
    out = [(xp.shape[a] - (k - 1) * d - 1) // s + 1
           for a, k, s, d in zip(layout.spatial_axes, kernel, strides, dilation)]
    for tap in itertools.product(*(range(k) for k in kernel)):
        start, limit, step = [0] * x.ndim, list(xp.shape), [1] * x.ndim
        for axis, t, n, s, d in zip(layout.spatial_axes, tap, out, strides, dilation):
            start[axis], limit[axis], step[axis] = t * d, t * d + (n - 1) * s + 1, s
        yield tap, lax.slice(xp, start, limit, step)


# --------------------------------------------------------------------------- depthwise


def _tap_sum(x, w, geometry):
    """``sum_tap slice_tap(pad(x)) * w[tap]`` for w: (*kernel, channels), one weight per
    channel and tap; the output has x's channels. XLA fuses it into one pass over x."""
    layout = geometry[0]
    shape = [1] * x.ndim
    shape[layout.channel_axis] = w.shape[-1]
    y = None
    for tap, xs in _taps(x, *geometry):
        term = xs * w[tap].reshape(shape)
        y = term if y is None else y + term
    return y


def _per_image(x, w, geometry):
    """`_tap_sum` one image at a time: a scan over the batch whose body is rematerialised,
    so its transpose in w reduces each image's tap slices while they are in cache and
    keeps only x as residual. On XLA:CPU, one reduction per tap over the whole batch
    (autodiff of `_tap_sum`) made the kernel gradient ~6x slower (docs/conv.md)."""
    @jax.checkpoint
    def image(_, xi):
        return None, _tap_sum(xi[None], w, geometry)[0]

    return lax.scan(image, None, x)[1]


def _input_cotangent(g, w, geometry, in_spatial):
    """The transpose of ``x -> _tap_sum(x, w)`` applied to g (output-shaped): itself a
    shifted sum, over g dilated by the strides and padded, with the kernel flipped, so
    XLA fuses it into one pass (the transpose JAX derives is a sum of pads, ~10x slower
    on XLA:CPU at 7x7)."""
    layout, kernel, strides, padding, dilation = geometry
    pads = [(0, 0, 0)] * g.ndim
    for axis, n, k, s, d, (lo, hi) in zip(layout.spatial_axes, in_spatial, kernel, strides,
                                          dilation, padding):
        k_eff, n_out = (k - 1) * d + 1, g.shape[axis]
        rest = n + lo + hi - ((n_out - 1) * s + k_eff)     # input rows no window reaches
        pads[axis] = (k_eff - 1 - lo, k_eff - 1 - hi + rest, s - 1)
    g = lax.pad(g, jnp.zeros((), g.dtype), pads)
    flipped = jnp.flip(w, axis=tuple(range(len(kernel))))
    ones = (1,) * len(kernel)
    return _tap_sum(g, flipped, (layout, kernel, ones, ((0, 0),) * len(kernel), dilation))


def _input_tangent(dx, w, geometry, out):
    """``_tap_sum(dx, w)`` computed as the transpose of `_input_cotangent`, so that reverse
    mode, transposing it back, runs `_input_cotangent`'s fused shifted sum."""
    in_spatial = tuple(dx.shape[a] for a in geometry[0].spatial_axes)
    transpose = jax.linear_transpose(lambda g: _input_cotangent(g, w, geometry, in_spatial),
                                     jax.ShapeDtypeStruct(out.shape, out.dtype))
    return transpose(dx)[0]


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _channelwise(x, w, geometry):
    """`_tap_sum`, differentiated through `_input_tangent` and `_per_image` (the kernel)."""
    return _tap_sum(x, w, geometry)


@_channelwise.defjvp
def _channelwise_jvp(geometry, primals, tangents):
    (x, w), (dx, dw) = primals, tangents
    y = _tap_sum(x, w, geometry)
    return y, _input_tangent(dx, w, geometry, y) + _per_image(x, dw, geometry)


# --------------------------------------------------------------------------- groups > 1


def _grouped_taps(x, w, groups, geometry):
    """The grouped conv as, per tap, each group's `width` input channels of the shifted
    slice contracted with that group's (width, filters / groups) block of ``w[tap]``."""
    layout = geometry[0]
    *_, width, filters = w.shape
    axis = layout.channel_axis
    data = "".join(chr(ord("a") + i) for i in range(x.ndim))
    lhs, res = data.replace(data[axis], "GI"), data.replace(data[axis], "GO")
    y = None
    for tap, xs in _taps(x, *geometry):
        xs = xs.reshape(xs.shape[:axis] + (groups, width) + xs.shape[axis + 1:])
        wt = w[tap].reshape(width, groups, filters // groups).transpose(1, 0, 2)
        term = jnp.einsum(f"{lhs},GIO->{res}", xs, wt)
        y = term if y is None else y + term
    return y.reshape(y.shape[:axis] + (filters,) + y.shape[axis + 2:])


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _grouped(x, w, groups, geometry):
    """A grouped conv computed by XLA (faster forward once groups are several channels
    wide) and differentiated through `_grouped_taps` (its transpose is pads and small
    matmuls, 4-40x faster than XLA:CPU's grouped-conv gradient, docs/conv.md)."""
    return _xla(x, w, groups, geometry)


@_grouped.defjvp
def _grouped_jvp(groups, geometry, primals, tangents):
    (x, w), (dx, dw) = primals, tangents
    tangent = _grouped_taps(dx, w, groups, geometry) + _grouped_taps(x, dw, groups, geometry)
    return _xla(x, w, groups, geometry), tangent
