"""stax's convolutions (GeneralConv, GeneralConvTranspose, Conv, Conv1DTranspose,
ConvTranspose) and poolings (MaxPool, SumPool, AvgPool) for `jaxlayers.stax`: any layout
stax's spec strings name, transposed to and from the native channels-last layers."""
import jax.numpy as jnp
import numpy as np
from jax import lax, random
from jax.nn.initializers import glorot_normal, normal

from ..core import (Layer as _Layer, Shape as _Shape, ShapeError as _ShapeError,
                    as_shape as _as_shape, describe as _describe, is_free as _is_free)
from ..layers.conv import _conv
from ..layers.conv_transpose import _conv_transpose
from ..layers.pooling import _pooling
from ._adapters import _checked, _leaf, _named, _positive, _restore

__all__ = ["GeneralConv", "Conv", "GeneralConvTranspose", "Conv1DTranspose", "ConvTranspose",
           "MaxPool", "SumPool", "AvgPool"]


# --------------------------------------------------------------------------- convolutions


def _conv_specs(kind, dimension_numbers, filter_shape):
    """``(lhs, rhs, out, spatial)``: the three spec strings and the spatial letters in
    `filter_shape`'s order (rhs_spec's, as lax orders the spatial dims)."""
    try:
        lhs, rhs, out = dimension_numbers
        spatial = "".join(c for c in rhs if c not in "OI")
        ok = (len(lhs) == len(rhs) == len(out) == len(filter_shape) + 2
              and set(lhs) == set(out) == set("NC" + spatial) == set(rhs) - set("OI") | set("NC")
              and {"O", "I"} <= set(rhs))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{kind}: dimension_numbers must be three spec strings such as "
                         f"('NHWC', 'HWIO', 'NHWC') with {len(filter_shape)} spatial dims to "
                         f"match filter_shape {tuple(filter_shape)!r}, got {dimension_numbers!r}")
    return lhs, rhs, out, spatial


def _perm(spec, order):
    """The axes of an array laid out as `spec` taken in the letter order `order`."""
    return tuple(spec.index(c) for c in order)


def _transpose(x, perm):
    return x if perm == tuple(range(len(perm))) else jnp.transpose(x, perm)


def _conv_layer(kind, transpose, dimension_numbers, out_chan, filter_shape, strides, padding,
                W_init, b_init, layout_shown=True):
    """GeneralConv / GeneralConvTranspose and their fixed-layout forms (named `kind`) on the
    native N-D convolution, which computes channels-last with a spatial-first kernel."""
    out_chan = _positive(kind, "out_chan", out_chan)
    lhs, rhs, out, spatial = _conv_specs(kind, dimension_numbers, filter_shape)
    rank, filter_shape = len(spatial), tuple(filter_shape)
    strides = tuple(strides or (1,) * rank)
    explicit = not isinstance(padding, str)
    if not explicit and padding not in ("SAME", "VALID"):
        raise ValueError(f"{kind}: padding must be 'SAME', 'VALID' or (low, high) pairs, "
                         f"got {padding!r}")
    W_init = W_init or glorot_normal(rhs.index("I"), rhs.index("O"))
    name = _describe(kind, *((dimension_numbers,) if layout_shown else ()), out_chan,
                     filter_shape, **({"strides": strides} if set(strides) != {1} else {}),
                     **({"padding": padding} if padding != "VALID" else {}))
    make = _conv_transpose if transpose else _conv
    native = make(kind, rank, out_chan, filter_shape, strides,
                  "valid" if explicit else padding.lower(), use_bias=False,
                  kernel_initializer="zeros")
    nsc = "N" + spatial + "C"                   # the native layout of inputs and outputs
    to_native, from_native = _perm(lhs, nsc), _perm(nsc, out)
    # The native transposed conv flips its (*k, O, I) kernel; lax.conv_transpose does not.
    kernel_order, flip = (spatial + "OI", tuple(range(rank))) if transpose else (spatial + "IO", ())
    kernel_perm = _perm(rhs, kernel_order)
    bias_shape = tuple(out_chan if c == "C" else 1 for c in out)
    if explicit:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
        if transpose:  # stax's explicit pads, from the native "valid" ones, pad its output
            pads = tuple((lo - k + 1, hi - k + 1 - max(s - k, 0))
                         for (lo, hi), k, s in zip(pads, filter_shape, strides))
        widths = ((0, 0, 0),) + tuple((lo, hi, 0) for lo, hi in pads) + ((0, 0, 0),)

    def pad(shape_or_x):   # explicit padding: the native conv runs "valid" on a padded input
        if isinstance(shape_or_x, tuple):
            return shape_or_x[:1] + tuple(None if _is_free(n) else n + lo + hi for n, (lo, hi)
                                          in zip(shape_or_x[1:-1], pads)) + shape_or_x[-1:]
        return lax.pad(shape_or_x, jnp.zeros((), shape_or_x.dtype), widths)

    def init_fun(rng, input_shape):
        given = _checked(name, input_shape, rank=len(lhs))
        if _is_free(given[lhs.index("C")]):
            raise _ShapeError(f"the channel axis ({lhs.index('C')}, '{lhs}') must be "
                              f"known at init, received shape {given!r}", name)
        shape = _Shape(_as_shape(given)[i] for i in to_native)
        with _named(name):
            out_shape, _ = native.init(rng, pad(shape) if explicit and not transpose else shape)
        if explicit and transpose:
            out_shape = pad(out_shape)
        c_in = shape[-1]
        k1, k2 = random.split(rng)
        sizes = dict(zip(spatial, filter_shape), O=out_chan, I=c_in)
        W, b = W_init(k1, tuple(sizes[c] for c in rhs)), b_init(k2, bias_shape)
        return _restore(_Shape(out_shape[i] for i in from_native), input_shape), (W, b)

    def apply_fun(params, inputs, *, rng=None, **kwargs):   # stax layers ignore other keywords
        W, b = params
        c_in = W.shape[rhs.index("I")]
        if jnp.ndim(inputs) != len(lhs) or jnp.shape(inputs)[lhs.index("C")] != c_in:
            raise _ShapeError(f"input shape {_Shape(jnp.shape(inputs))!r} does not fit "
                              f"'{lhs}' with {c_in} input channels (the shape W was made for)",
                              name)
        x = _transpose(inputs, to_native)
        with _named(name):
            if explicit and not transpose:
                x = pad(x)
            y = native.apply({"kernel": jnp.flip(jnp.transpose(W, kernel_perm), flip)}, x)
        if explicit and transpose:
            y = pad(y)
        return _transpose(y, from_native) + b

    return _Layer(init_fun, apply_fun, name=name)


def GeneralConv(dimension_numbers, out_chan, filter_shape, strides=None, padding="VALID",
                W_init=None, b_init=normal(1e-6)):
    """A convolution with any layout (stax's GeneralConv, on the native N-D convolution).

    Args:
      dimension_numbers: ``(lhs_spec, rhs_spec, out_spec)``, e.g. ``('NHWC', 'HWIO', 'NHWC')``.
      out_chan: the number of output channels.
      filter_shape: the window, one size per spatial letter of `rhs_spec`, in its order.
      strides: one per spatial dim (default 1).
      padding: 'VALID', 'SAME' or explicit ``(low, high)`` pairs.
      W_init, b_init: stax initializers; W defaults to Glorot normal, b to N(0, 1e-12).

    Params: ``(W, b)``, W laid out as `rhs_spec`, b like `out_spec` with 1 but at 'C'.

    Input shape: laid out as `lhs_spec`. Output shape: laid out as `out_spec`.
    """
    return _conv_layer("GeneralConv", False, dimension_numbers, out_chan, filter_shape, strides,
                       padding, W_init, b_init)


def GeneralConvTranspose(dimension_numbers, out_chan, filter_shape, strides=None,
                         padding="VALID", W_init=None, b_init=normal(1e-6)):
    """A transposed convolution with any layout (stax's GeneralConvTranspose): arguments,
    params and shapes as `GeneralConv`, numbers as ``lax.conv_transpose`` (kernel unflipped)."""
    return _conv_layer("GeneralConvTranspose", True, dimension_numbers, out_chan, filter_shape,
                       strides, padding, W_init, b_init)


def _fixed_layout(kind, transpose, dimension_numbers):
    def layer(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
              b_init=normal(1e-6)):
        return _conv_layer(kind, transpose, dimension_numbers, out_chan, filter_shape, strides,
                           padding, W_init, b_init, layout_shown=False)

    layer.__name__ = layer.__qualname__ = kind
    layer.__doc__ = (f"`{'GeneralConvTranspose' if transpose else 'GeneralConv'}` with "
                     f"``{dimension_numbers}`` (stax's {kind}).")
    return layer


Conv = _fixed_layout("Conv", False, ("NHWC", "HWIO", "NHWC"))
Conv1DTranspose = _fixed_layout("Conv1DTranspose", True, ("NHC", "HIO", "NHC"))
ConvTranspose = _fixed_layout("ConvTranspose", True, ("NHWC", "HWIO", "NHWC"))


# --------------------------------------------------------------------------- pooling


def _pooling_layer(kind, reduce):
    def PoolingLayer(window_shape, strides=None, padding="VALID", spec=None):
        window_shape = tuple(window_shape)
        rank = len(window_shape)
        strides = tuple(strides or (1,) * rank)   # stax's default stride is 1, Keras' the pool
        if padding not in ("VALID", "SAME"):
            raise ValueError(f"{kind}: padding must be 'VALID' or 'SAME', got {padding!r}")
        if spec is not None and (not isinstance(spec, str) or len(spec) != rank + 2
                                 or not {"N", "C"} <= set(spec) or len(set(spec)) != rank + 2):
            raise ValueError(f"{kind}: spec must name N, C and {rank} spatial axes, e.g. "
                             f"'NHWC', got {spec!r}")
        name = _describe(kind, window_shape,
                         **({"strides": strides} if set(strides) != {1} else {}),
                         **({"padding": padding} if padding != "VALID" else {}),
                         **({"spec": spec} if spec is not None else {}))
        spatial = "".join(c for c in spec if c not in "NC") if spec else "".join(
            chr(ord("a") + i) for i in range(rank))
        spec = spec or "N" + spatial + "C"
        # stax's `spec` places N and C anywhere: NC... runs channels_first, others are
        # transposed to channels_last around the native pooling.
        first = spec == "NC" + spatial
        native = _pooling(kind, rank, "avg" if reduce == "sum" else reduce, window_shape,
                          strides, padding.lower(), "channels_first" if first else None)
        order = spec if first else "N" + spatial + "C"
        to_native, from_native = _perm(spec, order), _perm(order, spec)

        def apply(params, x, *, rng=None, train=False):
            if reduce == "sum":   # no native sum pooling: lax sums in the native layout
                window = tuple(window_shape[spatial.index(c)] if c in spatial else 1
                               for c in order)
                steps = tuple(strides[spatial.index(c)] if c in spatial else 1 for c in order)
                # a numpy zero stays concrete under jit, so lax sees a sum it can differentiate
                return lax.reduce_window(x, np.zeros((), x.dtype), lax.add, window, steps,
                                         padding)
            return native.apply((), x, rng=rng)

        def init(rng, input_shape):
            shape = _as_shape(_checked(name, input_shape, rank=rank + 2))
            out_shape, _ = native.init(rng, _Shape(shape[i] for i in to_native))
            return _Shape(out_shape[i] for i in from_native), ()

        def apply_in_spec(params, x, *, rng=None, train=False):
            if jnp.ndim(x) != rank + 2:
                raise _ShapeError(f"expected a rank-{rank + 2} input, received shape "
                                  f"{_Shape(jnp.shape(x))!r}", name)
            return _transpose(apply(params, _transpose(x, to_native), rng=rng), from_native)

        return _leaf(_Layer(init, apply_in_spec), name)

    PoolingLayer.__name__ = PoolingLayer.__qualname__ = kind
    PoolingLayer.__doc__ = (
        f"stax's {kind} over the spatial axes: `window_shape` and `strides` (default 1) per "
        f"spatial axis, padding 'VALID' or 'SAME', `spec` (e.g. 'NCHW') placing N and C "
        f"(default: N first, C last). Output shape: the pooled spatial axes.")
    return PoolingLayer


MaxPool = _pooling_layer("MaxPool", "max")
SumPool = _pooling_layer("SumPool", "sum")
AvgPool = _pooling_layer("AvgPool", "avg")


