"""A drop-in `jax.example_libraries.stax`: ``from jaxlayers import stax``.

Every public name of stax, with stax's signatures, params layouts (``(W, b)``
tuples, lists for `serial`), shape rules, key splitting and numbers, so a stax
program runs unchanged and reproduces its results. The layers are jaxlayers
`Layer`s: they iterate as ``(init_fun, apply_fun)`` pairs, `jl.summary` reads
them, and they mix with native layers in `jl.serial` and in this module's
`serial` / `parallel` (which also take raw stax pairs).

Differences from stax, none of which changes a working program's output:

- free dimensions (``-1`` as stax writes the batch, or ``None``) stay free in
  every output shape (stax's pooling turned a ``-1`` batch into ``0``);
- shapes come back as `jaxlayers.Shape` tuples of Python ints (equal to stax's);
- shapes that cannot fit raise `jl.ShapeError` naming the layer, at init, and
  a wrong channel count at apply, instead of an XLA error.

Known stax defects are kept so old results reproduce; see `Dropout` and
`BatchNorm` and docs/stax.md for the native replacements.
"""
import dataclasses as _dataclasses
import functools
import inspect as _inspect
import math
import numbers as _numbers

import jax.numpy as jnp
from jax import lax, random
from jax.nn import (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, softmax,
                    softplus, standardize)
from jax.nn.initializers import glorot_normal, normal, ones, zeros

from .core import Layer as _Layer
from .core import Shape as _Shape
from .core import ShapeError as _ShapeError
from .core import as_layer as _jl_as_layer
from .core import bias_add as _bias_add
from .core import describe as _describe
from .core import init_child as _init_child
from .core import is_free as _is_free
from .core import located as _located

# stax's aliases for backwards compatibility.
glorot = glorot_normal
randn = normal
logsoftmax = log_softmax

__all__ = [
    # layers and combinators
    "Dense", "GeneralConv", "Conv", "GeneralConvTranspose", "Conv1DTranspose", "ConvTranspose",
    "BatchNorm", "elementwise", "Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus",
    "Sigmoid", "Elu", "LeakyRelu", "Selu", "Gelu", "MaxPool", "SumPool", "AvgPool", "Flatten",
    "Identity", "FanOut", "FanInSum", "FanInConcat", "Dropout", "serial", "parallel",
    "shape_dependent",
    # re-exported functions and initializers, as stax exposes them
    "relu", "log_softmax", "softmax", "softplus", "sigmoid", "elu", "leaky_relu", "selu",
    "gelu", "standardize", "glorot_normal", "normal", "ones", "zeros", "glorot", "randn",
    "logsoftmax",
    # modules stax's namespace holds (so `from ... import *` gives the same names)
    "functools", "math", "jnp", "lax", "random",
]

# A stand-in size for free spatial dims when asking lax for an output shape.
_BIG = 1 << 20


def _as_layer(obj):
    """`obj` as a Layer; a raw stax ``(init, apply)`` pair keeps stax's shapes (``-1`` dims,
    lists), unlike `jl.as_layer`, which normalises them for the native combinators."""
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(callable(f) for f in obj):
        init, apply = obj
        return _Layer(init, apply, name=getattr(init, "__qualname__", "layer").split(".")[0])
    return _jl_as_layer(obj)


# --------------------------------------------------------------------------- shapes


def _is_dims(shape) -> bool:
    return isinstance(shape, (tuple, list)) and all(
        d is None or isinstance(d, _numbers.Integral) for d in shape)


def _dims(shape) -> _Shape:
    """`shape` as a static Shape, keeping stax's ``-1`` (and ``None``) free markers."""
    return _Shape(None if d is None else int(d) for d in shape)


def _out(shape):
    """A returned shape: one Shape, or a list/tuple of them (fan-out)."""
    if _is_dims(shape):
        return _dims(shape)
    if isinstance(shape, (tuple, list)):
        return type(shape)(_out(s) for s in shape)
    return shape


def _single(name, shape, rank=None, min_rank=0):
    if not _is_dims(shape):
        raise _ShapeError(f"expected one input shape such as (-1, 10), received {shape!r}", name)
    if rank is not None and len(shape) != rank:
        raise _ShapeError(f"expected a rank-{rank} input, received shape {_dims(shape)!r}", name)
    if len(shape) < min_rank:
        raise _ShapeError(f"expected an input of rank >= {min_rank}, received shape "
                          f"{_dims(shape)!r}", name)
    return shape


def _several(name, shapes):
    if _is_dims(shapes) or not isinstance(shapes, (tuple, list)) or not shapes or not all(
            _is_dims(s) for s in shapes):
        raise _ShapeError(f"expected a list of input shapes (a fan-in), received {shapes!r}",
                          name)
    return shapes


def _free_marker(dims):
    """The first free marker among `dims` (``-1`` or ``None``), for a derived free dim."""
    return next(d for d in dims if _is_free(d))


def _patched(name, input_shape, compute, same_axes):
    """``compute(concrete_input_shape)`` with the free dims of `input_shape` kept free.

    `same_axes` maps an input axis to the output axis it determines (the batch and
    spatial axes). Free input dims are replaced by a large stand-in for `compute`.
    """
    concrete = tuple(_BIG if _is_free(d) else int(d) for d in input_shape)
    out = [int(d) for d in compute(concrete)]
    for i, d in enumerate(input_shape):
        if _is_free(d):
            if i not in same_axes:
                raise _ShapeError(f"input axis {i} must be known at init, received shape "
                                  f"{_dims(input_shape)!r}", name)
            out[same_axes[i]] = d
    return _dims(out)


# --------------------------------------------------------------------------- apply helpers


def _kwargs_filter(layer):
    """A function picking the apply keywords `layer` accepts (all of them for stax layers)."""
    try:
        sig = _inspect.signature(layer.apply)
    except (TypeError, ValueError):
        return lambda kwargs: kwargs
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return lambda kwargs: kwargs
    names = set(sig.parameters) - {"rng"}
    return lambda kwargs: {k: v for k, v in kwargs.items() if k in names}


def _call(layer, pick, params, state, x, rng, kwargs, place):
    """Apply a child in the stateful form, forwarding the keywords it takes."""
    with _located(place, layer.name):
        if layer.stateful:
            return layer.apply(params, state, x, rng=rng, **pick(kwargs))
        return layer.apply(params, x, rng=rng, **pick(kwargs)), state


def _leaf(init, apply, name):
    return _Layer(init, apply, name=name)


# --------------------------------------------------------------------------- Dense


def Dense(out_dim, W_init=glorot_normal(), b_init=normal()):
    """A fully connected layer, ``inputs @ W + b`` (stax's Dense).

    Params: ``(W, b)`` with W (in, out_dim) from `W_init` and b (out_dim,) from `b_init`
    (keys ``k1, k2 = random.split(rng)``). Note stax's defaults, unlike Keras': Glorot
    normal weights and a N(0, 0.01^2) bias.

    Input shape: ``(..., in)``. Output shape: ``(..., out_dim)``.
    """
    if not isinstance(out_dim, _numbers.Integral) or out_dim < 1:
        raise ValueError(f"Dense: out_dim must be a positive int, got {out_dim!r}")
    name = _describe("Dense", int(out_dim))

    def init_fun(rng, input_shape):
        _single(name, input_shape, min_rank=1)
        if _is_free(input_shape[-1]):
            raise _ShapeError(f"the last input axis must be known at init, received shape "
                              f"{_dims(input_shape)!r}", name)
        output_shape = _dims(tuple(input_shape[:-1]) + (out_dim,))
        k1, k2 = random.split(rng)
        W, b = W_init(k1, (input_shape[-1], out_dim)), b_init(k2, (out_dim,))
        return output_shape, (W, b)

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        W, b = params
        if jnp.ndim(inputs) < 1 or jnp.shape(inputs)[-1] != W.shape[0]:
            raise _ShapeError(f"input shape {_Shape(jnp.shape(inputs))!r} does not end in the "
                              f"{W.shape[0]} features W was made for", name)
        return _bias_add(jnp.dot(inputs, W), b)

    return _leaf(init_fun, apply_fun, name)


# --------------------------------------------------------------------------- convolutions


def _check_dimension_numbers(kind, dimension_numbers, filter_shape):
    try:
        lhs_spec, rhs_spec, out_spec = dimension_numbers
        ok = (len(lhs_spec) == len(rhs_spec) == len(out_spec) == len(filter_shape) + 2
              and {"N", "C"} <= set(lhs_spec) and {"O", "I"} <= set(rhs_spec)
              and {"N", "C"} <= set(out_spec))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{kind}: dimension_numbers must be three spec strings such as "
                         f"('NHWC', 'HWIO', 'NHWC') with {len(filter_shape)} spatial dims to "
                         f"match filter_shape {tuple(filter_shape)!r}, got {dimension_numbers!r}")
    return lhs_spec, rhs_spec, out_spec


def _conv_layer(kind, transpose, dimension_numbers, out_chan, filter_shape, strides, padding,
                W_init, b_init, layout_shown=True):
    """GeneralConv / GeneralConvTranspose (and their fixed-layout partials, named `kind`):
    the same init, `lax.conv_general_dilated` or `lax.conv_transpose` at apply."""
    if not isinstance(out_chan, _numbers.Integral) or out_chan < 1:
        raise ValueError(f"{kind}: out_chan must be a positive int, got {out_chan!r}")
    lhs_spec, rhs_spec, out_spec = _check_dimension_numbers(kind, dimension_numbers,
                                                            filter_shape)
    one = (1,) * len(filter_shape)
    strides = tuple(strides or one)
    W_init = W_init or glorot_normal(rhs_spec.index("I"), rhs_spec.index("O"))
    shown = ((dimension_numbers,) if layout_shown else ()) + (out_chan, tuple(filter_shape))
    shape_fn = lax.conv_transpose_shape_tuple if transpose else lax.conv_general_shape_tuple
    name = _describe(kind, *shown, **({"strides": tuple(strides)} if strides != one else {}),
                     **({"padding": padding} if padding != "VALID" else {}))
    channel = lhs_spec.index("C")
    # The batch and spatial axes of the input determine the same axes of the output.
    same_axes = {i: out_spec.index(c) for i, c in enumerate(lhs_spec) if c != "C"}

    def init_fun(rng, input_shape):
        _single(name, input_shape, rank=len(lhs_spec))
        if _is_free(input_shape[channel]):
            raise _ShapeError(f"the channel axis ({channel}, '{lhs_spec}') must be known at "
                              f"init, received shape {_dims(input_shape)!r}", name)
        filter_shape_iter = iter(filter_shape)
        kernel_shape = [out_chan if c == "O" else
                        input_shape[channel] if c == "I" else
                        next(filter_shape_iter) for c in rhs_spec]
        output_shape = _patched(name, input_shape, lambda s: shape_fn(
            s, kernel_shape, strides, padding, dimension_numbers), same_axes)
        bias_shape = [out_chan if c == "C" else 1 for c in out_spec]
        k1, k2 = random.split(rng)
        W, b = W_init(k1, kernel_shape), b_init(k2, bias_shape)
        return output_shape, (W, b)

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        W, b = params
        if jnp.ndim(inputs) != len(lhs_spec) or (
                jnp.shape(inputs)[channel] != W.shape[rhs_spec.index("I")]):
            raise _ShapeError(
                f"input shape {_Shape(jnp.shape(inputs))!r} does not fit '{lhs_spec}' with "
                f"{W.shape[rhs_spec.index('I')]} input channels (the shape W was made for)",
                name)
        if transpose:
            y = lax.conv_transpose(inputs, W, strides, padding,
                                   dimension_numbers=dimension_numbers)
        else:
            y = lax.conv_general_dilated(inputs, W, strides, padding, one, one,
                                         dimension_numbers=dimension_numbers)
        return y + b

    return _leaf(init_fun, apply_fun, name)


def GeneralConv(dimension_numbers, out_chan, filter_shape, strides=None, padding="VALID",
                W_init=None, b_init=normal(1e-6)):
    """A convolution with any layout (stax's GeneralConv).

    `dimension_numbers` is ``(lhs_spec, rhs_spec, out_spec)``, e.g.
    ``('NHWC', 'HWIO', 'NHWC')``; `padding` is 'VALID', 'SAME' or explicit pairs.
    Params: ``(W, b)``, W laid out as `rhs_spec` (Glorot normal by default), b shaped
    like `out_spec` with 1 everywhere but 'C' (N(0, 1e-12) by default).

    Input shape: laid out as `lhs_spec`. Output shape: laid out as `out_spec`.
    """
    return _conv_layer("GeneralConv", False, dimension_numbers, out_chan, filter_shape, strides,
                       padding, W_init, b_init)


def Conv(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
         b_init=normal(1e-6)):
    """A 2-D convolution on NHWC inputs with an HWIO kernel (`GeneralConv` with
    ``('NHWC', 'HWIO', 'NHWC')``). Params: ``(W, b)``, b of shape (1, 1, 1, out_chan).

    Input shape: ``(N, H, W, C)``. Output shape: ``(N, H', W', out_chan)``.
    """
    return _conv_layer("Conv", False, ("NHWC", "HWIO", "NHWC"), out_chan, filter_shape, strides,
                       padding, W_init, b_init, layout_shown=False)


def GeneralConvTranspose(dimension_numbers, out_chan, filter_shape, strides=None,
                         padding="VALID", W_init=None, b_init=normal(1e-6)):
    """A transposed convolution with any layout (stax's GeneralConvTranspose).

    Arguments and params as `GeneralConv`; computed with `lax.conv_transpose`.
    """
    return _conv_layer("GeneralConvTranspose", True, dimension_numbers, out_chan, filter_shape,
                       strides, padding, W_init, b_init)


def Conv1DTranspose(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
                    b_init=normal(1e-6)):
    """A 1-D transposed convolution on NHC inputs with an HIO kernel
    (`GeneralConvTranspose` with ``('NHC', 'HIO', 'NHC')``)."""
    return _conv_layer("Conv1DTranspose", True, ("NHC", "HIO", "NHC"), out_chan, filter_shape,
                       strides, padding, W_init, b_init, layout_shown=False)


def ConvTranspose(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
                  b_init=normal(1e-6)):
    """A 2-D transposed convolution on NHWC inputs with an HWIO kernel
    (`GeneralConvTranspose` with ``('NHWC', 'HWIO', 'NHWC')``)."""
    return _conv_layer("ConvTranspose", True, ("NHWC", "HWIO", "NHWC"), out_chan, filter_shape,
                       strides, padding, W_init, b_init, layout_shown=False)


# --------------------------------------------------------------------------- BatchNorm


def BatchNorm(axis=(0, 1, 2), epsilon=1e-5, center=True, scale=True, beta_init=zeros,
              gamma_init=ones):
    """stax's batch normalization: standardize over `axis` with the current batch's
    statistics, then ``gamma * z + beta``.

    Kept as in stax: there are **no moving statistics**, so the layer normalizes with
    the statistics of whatever batch it is given, in training and at test time alike
    (a single example is normalized against itself). For Keras' behaviour (moving mean
    and variance updated with ``train=True``, used with ``train=False``) use the native
    ``jl.BatchNormalization`` with the state channel.

    Params: ``(beta, gamma)``, each shaped like the input without the `axis` dims
    (``()`` in place of one that `center` / `scale` turns off); keys
    ``k1, k2 = random.split(rng)``. Negative axes count from the end.

    Input shape: any. Output shape: the same.
    """
    axis = (axis,) if jnp.isscalar(axis) else tuple(axis)
    name = _describe("BatchNorm", **({"axis": axis} if axis != (0, 1, 2) else {}))
    _beta_init = lambda rng, shape: beta_init(rng, shape) if center else ()
    _gamma_init = lambda rng, shape: gamma_init(rng, shape) if scale else ()

    def axes(rank):
        if any(not -rank <= a < rank for a in axis):
            raise _ShapeError(f"axis {axis} is out of range for a rank-{rank} input", name)
        return tuple(a % rank for a in axis)

    def init_fun(rng, input_shape):
        _single(name, input_shape)
        ax = axes(len(input_shape))
        shape = tuple(d for i, d in enumerate(input_shape) if i not in ax)
        if any(_is_free(d) for d in shape):
            raise _ShapeError(f"the axes not in axis={axis} must be known at init, received "
                              f"shape {_dims(input_shape)!r}", name)
        k1, k2 = random.split(rng)
        beta, gamma = _beta_init(k1, shape), _gamma_init(k2, shape)
        return _dims(input_shape), (beta, gamma)

    def apply_fun(params, x, *, rng=None, **kwargs):
        beta, gamma = params
        ax = axes(jnp.ndim(x))
        ed = tuple(None if i in ax else slice(None) for i in range(jnp.ndim(x)))
        z = standardize(x, ax, epsilon=epsilon)
        if center and scale:
            return gamma[ed] * z + beta[ed]
        if center:
            return z + beta[ed]
        if scale:
            return gamma[ed] * z
        return z

    return _leaf(init_fun, apply_fun, name)


# --------------------------------------------------------------------------- elementwise


def _same_shape(rng, input_shape):
    return _out(input_shape), ()


def elementwise(fun, **fun_kwargs):
    """A parameter-free layer applying ``fun(inputs, **fun_kwargs)``.

    Input shape: any. Output shape: the same.
    """
    def apply_fun(params, inputs, *, rng=None, **kwargs):
        return fun(inputs, **fun_kwargs)

    return _leaf(_same_shape, apply_fun, _describe("elementwise", fun, **fun_kwargs))


def _named(layer, name):
    return _dataclasses.replace(layer, name=name)


Tanh = _named(elementwise(jnp.tanh), "Tanh")
Relu = _named(elementwise(relu), "Relu")
Exp = _named(elementwise(jnp.exp), "Exp")
LogSoftmax = _named(elementwise(log_softmax, axis=-1), "LogSoftmax")
Softmax = _named(elementwise(softmax, axis=-1), "Softmax")
Softplus = _named(elementwise(softplus), "Softplus")
Sigmoid = _named(elementwise(sigmoid), "Sigmoid")
Elu = _named(elementwise(elu), "Elu")
LeakyRelu = _named(elementwise(leaky_relu), "LeakyRelu")
Selu = _named(elementwise(selu), "Selu")
Gelu = _named(elementwise(gelu), "Gelu")


# --------------------------------------------------------------------------- pooling


def _window_sizes(inputs, dims, strides, padding, spec):
    """How many input elements each output of a sum-pool saw (AvgPool's divisor)."""
    non_spatial = (0, inputs.ndim - 1) if spec is None else (spec.index("N"), spec.index("C"))
    spatial_shape = tuple(inputs.shape[i] for i in range(inputs.ndim) if i not in non_spatial)
    one = jnp.ones(spatial_shape, dtype=inputs.dtype)
    sizes = lax.reduce_window(one, 0., lax.add, dims, strides, padding)
    for i in sorted(non_spatial):
        sizes = jnp.expand_dims(sizes, i)
    return sizes


def _pooling_layer(kind, reducer, init_val, average=False):
    def PoolingLayer(window_shape, strides=None, padding="VALID", spec=None):
        window_shape = tuple(window_shape)
        strides = tuple(strides or (1,) * len(window_shape))
        if padding not in ("VALID", "SAME", "SAME_LOWER"):
            raise ValueError(f"{kind}: padding must be 'VALID' or 'SAME', got {padding!r}")
        if spec is not None and (len(spec) != len(window_shape) + 2
                                 or not {"N", "C"} <= set(spec)):
            raise ValueError(f"{kind}: spec must name N, C and {len(window_shape)} spatial "
                             f"axes, e.g. 'NHWC', got {spec!r}")
        name = _describe(kind, window_shape,
                         **({"strides": strides} if strides != (1,) * len(window_shape)
                            else {}),
                         **({"padding": padding} if padding != "VALID" else {}),
                         **({"spec": spec} if spec is not None else {}))
        spatial_window, spatial_strides = window_shape, strides
        non_spatial_axes = (0, len(window_shape) + 1) if spec is None else (
            spec.index("N"), spec.index("C"))
        for i in sorted(non_spatial_axes):
            window_shape = window_shape[:i] + (1,) + window_shape[i:]
            strides = strides[:i] + (1,) + strides[i:]
        rank = len(window_shape)
        ones_ = (1,) * rank

        def out_shape(shape):
            pads = lax.padtype_to_pads(shape, window_shape, strides, padding)
            return lax.reduce_window_shape_tuple(shape, window_shape, strides, pads, ones_,
                                                 ones_)

        def init_fun(rng, input_shape):
            _single(name, input_shape, rank=rank)
            return _patched(name, input_shape, out_shape, {i: i for i in range(rank)}), ()

        def apply_fun(params, inputs, *, rng=None, **kwargs):
            if jnp.ndim(inputs) != rank:
                raise _ShapeError(f"expected a rank-{rank} input, received shape "
                                  f"{_Shape(jnp.shape(inputs))!r}", name)
            out = lax.reduce_window(inputs, init_val, reducer, window_shape, strides, padding)
            if average:
                out = out / _window_sizes(inputs, spatial_window, spatial_strides, padding,
                                          spec)
            return out

        return _leaf(init_fun, apply_fun, name)

    PoolingLayer.__name__ = PoolingLayer.__qualname__ = kind
    PoolingLayer.__doc__ = (
        f"A {kind[:-4].lower()}-pooling layer over the spatial axes (stax's {kind}).\n\n"
        f"`window_shape` and `strides` cover the spatial axes only; `spec` (e.g. 'NCHW')\n"
        f"says where N and C are (default: N first, C last); padding 'VALID' or 'SAME'"
        + (";\nthe average divides by the number of input elements each window covered"
           " (padding excluded)." if average else ".") +
        "\n\nInput shape: rank len(window_shape) + 2. Output shape: pooled spatial axes.")
    return PoolingLayer


MaxPool = _pooling_layer("MaxPool", lax.max, -jnp.inf)
SumPool = _pooling_layer("SumPool", lax.add, 0.)
AvgPool = _pooling_layer("AvgPool", lax.add, 0., average=True)


# --------------------------------------------------------------------------- reshaping


def _flatten():
    name = "Flatten"

    def init_fun(rng, input_shape):
        _single(name, input_shape, min_rank=1)
        rest = input_shape[1:]
        size = _free_marker(rest) if any(_is_free(d) for d in rest) else math.prod(rest)
        return _dims((input_shape[0], size)), ()

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        return jnp.reshape(inputs, (inputs.shape[0], -1))

    return _leaf(init_fun, apply_fun, name)


Flatten = _flatten()

Identity = _leaf(_same_shape, lambda params, inputs, *, rng=None, **kwargs: inputs, "Identity")


# --------------------------------------------------------------------------- fan-out / fan-in


def FanOut(num):
    """Copy the input: a list of `num` references to it (shapes: a list of `num` copies)."""
    if not isinstance(num, _numbers.Integral) or num < 1:
        raise ValueError(f"FanOut: num must be a positive int, got {num!r}")
    num = int(num)

    def init_fun(rng, input_shape):
        return [_out(input_shape)] * num, ()

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        return [inputs] * num

    return _leaf(init_fun, apply_fun, f"FanOut({num})")


def _fan_in_sum():
    name = "FanInSum"

    def init_fun(rng, input_shape):
        shapes = _several(name, input_shape)
        first = shapes[0]
        for s in shapes[1:]:
            if len(s) != len(first) or any(
                    not (_is_free(a) or _is_free(b) or a == b) for a, b in zip(first, s)):
                raise _ShapeError(f"inputs must have the same shape, received "
                                  f"{', '.join(repr(_dims(s)) for s in shapes)}", name)
        return _dims(first), ()

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        shapes = [jnp.shape(x) for x in inputs]
        if any(s != shapes[0] for s in shapes):
            raise _ShapeError(f"inputs must have the same shape, received {shapes}", name)
        return sum(inputs)

    return _leaf(init_fun, apply_fun, name)


FanInSum = _fan_in_sum()


def FanInConcat(axis=-1):
    """Concatenate a list of inputs along `axis` (the other axes must agree)."""
    name = _describe("FanInConcat", **({"axis": axis} if axis != -1 else {}))

    def init_fun(rng, input_shape):
        shapes = _several(name, input_shape)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= axis < rank:
            raise _ShapeError(f"inputs must share a rank that has axis {axis}, received "
                              f"{', '.join(repr(_dims(s)) for s in shapes)}", name)
        ax = axis % rank
        sizes = [s[ax] for s in shapes]
        size = _free_marker(sizes) if any(_is_free(d) for d in sizes) else sum(sizes)
        out_shape = tuple(shapes[0][:ax]) + (size,) + tuple(shapes[0][ax + 1:])
        return _dims(out_shape), ()

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        return jnp.concatenate(inputs, axis)

    return _leaf(init_fun, apply_fun, name)


# --------------------------------------------------------------------------- Dropout


def Dropout(rate, mode="train"):
    """stax's dropout, kept as it was (so old results reproduce):

    - `rate` is the fraction **kept**, not dropped: each input is kept with probability
      `rate` and scaled by ``1 / rate`` (``Dropout(0.9)`` drops 10%);
    - `mode` decides, fixed at construction: ``'train'`` drops, anything else returns
      the input; the `train` keyword of the jaxlayers contract is ignored;
    - `apply` needs an ``rng`` key in every mode, test mode included.

    The native ``jl.Dropout(rate)`` follows Keras: `rate` is the fraction dropped, it
    acts only with ``train=True`` and asks for an rng only then. ``stax.Dropout(r)``
    in train mode equals ``jl.Dropout(1 - r)`` with ``train=True`` in distribution.

    Input shape: any. Output shape: the same.
    """
    if not isinstance(rate, _numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(f"Dropout: rate (stax's keep probability) must be in [0, 1], "
                         f"got {rate!r}")
    name = _describe("Dropout", rate, **({"mode": mode} if mode != "train" else {}))

    def init_fun(rng, input_shape):
        return _out(input_shape), ()

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        if rng is None:
            raise ValueError(
                f"{name}: stax's Dropout layer requires apply_fun to be called with a PRNG "
                f"key argument, in every mode. That is, instead of `apply_fun(params, "
                f"inputs)`, call it like `apply_fun(params, inputs, rng=rng)` where `rng` is "
                f"a PRNG key (e.g. from `jax.random.key`). jl.Dropout needs one only with "
                f"train=True.")
        if mode == "train":
            keep = random.bernoulli(rng, rate, inputs.shape)
            return jnp.where(keep, inputs / rate, 0)
        return inputs

    return _leaf(init_fun, apply_fun, name)


# --------------------------------------------------------------------------- combinators


def _combine(layers, name, init_children, apply_children):
    """A Layer over `layers`; stateful (``init -> (shape, params, state)``) iff a child is.

    ``init_children(key, shape) -> (shape, params, state)`` and
    ``apply_children(params, state, x, rng, kwargs) -> (y, state)``; params and state
    keep the container type `init_children` made (list for serial, tuple for parallel).
    """
    stateful = any(l.stateful for l in layers)

    def penalty(params):
        return sum(l.penalty(p) for l, p in zip(layers, params))

    def constrain(params):
        return type(params)(l.constrain(p) for l, p in zip(layers, params))

    if stateful:
        def init_fun(rng, input_shape):
            return init_children(rng, input_shape)

        def apply_fun(params, state, inputs, *, rng=None, **kwargs):
            return apply_children(params, state, inputs, rng, kwargs)
    else:
        def init_fun(rng, input_shape):
            out_shape, params, _ = init_children(rng, input_shape)
            return out_shape, params

        def apply_fun(params, inputs, *, rng=None, **kwargs):
            return apply_children(params, [()] * len(layers), inputs, rng, kwargs)[0]

    return _Layer(init_fun, apply_fun, name=name, stateful=stateful, penalty=penalty,
                  constrain=constrain, children=tuple(layers))


def _apply_rngs(rng, n):
    return random.split(rng, n) if rng is not None else (None,) * n


def serial(*layers):
    """Chain layers (stax pairs, jaxlayers Layers or functions) one after the other.

    Params: a list with one entry per layer. Keys as stax: init takes
    ``rng, layer_rng = random.split(rng)`` before each layer, apply splits `rng` into
    one key per layer. Every apply keyword (``rng`` aside) reaches every stax layer; a
    native layer gets those it accepts (``train``). With a stateful native child
    (``jl.BatchNormalization``) the result is stateful: ``init -> (shape, params,
    state)``, ``apply(params, state, x, ...) -> (y, state)``, state a list.
    """
    layers = tuple(_as_layer(l) for l in layers)
    picks = tuple(_kwargs_filter(l) for l in layers)
    n = len(layers)

    def init_children(rng, input_shape):
        params, states = [], []
        for i, layer in enumerate(layers):
            rng, layer_rng = random.split(rng)
            input_shape, param, state = _init_child(layer, layer_rng, input_shape,
                                                    f"serial[{i}]")
            params.append(param)
            states.append(state)
        return input_shape, params, states

    def apply_children(params, state, inputs, rng, kwargs):
        new_state = []
        for i, (layer, pick, p, s, r) in enumerate(
                zip(layers, picks, params, state, _apply_rngs(rng, n))):
            inputs, s = _call(layer, pick, p, s, inputs, r, kwargs, f"serial[{i}]")
            new_state.append(s)
        return inputs, new_state

    return _combine(layers, "serial", init_children, apply_children)


def parallel(*layers):
    """Apply layer i to input i of a list of inputs; returns the list of outputs.

    Usually between `FanOut` and `FanInSum` / `FanInConcat`. Params (and output
    shapes): a tuple in layer order; keys ``random.split(rng, len(layers))`` for init
    and for apply. Takes stax pairs and jaxlayers Layers alike, as `serial`.
    """
    layers = tuple(_as_layer(l) for l in layers)
    picks = tuple(_kwargs_filter(l) for l in layers)
    n = len(layers)

    def init_children(rng, input_shape):
        if _is_dims(input_shape) or not isinstance(input_shape, (tuple, list)) or len(
                input_shape) != n:
            raise _ShapeError(f"expected a list of {n} input shapes, received "
                              f"{input_shape!r}", "parallel")
        outs, params, states = [], [], []
        for i, (layer, r, shape) in enumerate(zip(layers, random.split(rng, n), input_shape)):
            out, p, s = _init_child(layer, r, shape, f"parallel[{i}]")
            outs.append(out)
            params.append(p)
            states.append(s)
        return tuple(outs), tuple(params), tuple(states)

    def apply_children(params, state, inputs, rng, kwargs):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != n:
            raise _ShapeError(f"expected a list of {n} inputs, received "
                              f"{type(inputs).__name__}", "parallel")
        outs, new_state = [], []
        for i, (layer, pick, p, s, x, r) in enumerate(
                zip(layers, picks, params, state, inputs, _apply_rngs(rng, n))):
            y, s = _call(layer, pick, p, s, x, r, kwargs, f"parallel[{i}]")
            outs.append(y)
            new_state.append(s)
        return outs, tuple(new_state)

    return _combine(layers, "parallel", init_children, apply_children)


def shape_dependent(make_layer):
    """Delay building a layer until the input shape is known.

    `make_layer(input_shape)` returns a layer (a stax pair or a stateless jaxlayers
    Layer); init calls it with the init shape, apply with ``inputs.shape``.
    """
    name = f"shape_dependent({getattr(make_layer, '__name__', 'make_layer')})"

    def made(shape):
        layer = _as_layer(make_layer(shape))
        if layer.stateful:
            raise _ShapeError(f"make_layer returned the stateful {layer.name}; "
                              f"shape_dependent takes stateless layers", name)
        return layer

    def init_fun(rng, input_shape):
        layer = made(input_shape)
        out_shape, params, _ = _init_child(layer, rng, input_shape, name)
        return out_shape, params

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        layer = made(inputs.shape)
        y, _ = _call(layer, _kwargs_filter(layer), params, (), inputs, rng, kwargs, name)
        return y

    return _leaf(init_fun, apply_fun, name)
