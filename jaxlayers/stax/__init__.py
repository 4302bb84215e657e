"""A drop-in `jax.example_libraries.stax`: ``from jaxlayers import stax``.

Every public name of stax with stax's signatures, params layouts (``(W, b)`` tuples,
lists for `serial`), shape rules, key splitting and numbers, so a stax program runs
unchanged and reproduces its results. Each layer is a native jaxlayers layer or
combinator behind a small adapter; each way stax differs is named where it is kept.
Free dims (``-1`` or ``None``) stay free in every output shape, and shapes that do not
fit raise `jl.ShapeError` naming the layer. See docs/stax.md.

The adapters every layer shares are in `_adapters`; the convolutions and poolings (layouts
named by spec strings) in `_spatial`.
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

from .. import combinators as _combinators
from ..combinators import _split
from ..core import PASS as _PASS
from ..core import (Layer as _Layer, Shape as _Shape, ShapeError as _ShapeError,
                    as_layer as _as_layer, as_shape as _as_shape, describe as _describe,
                    init_child as _init_child, is_free as _is_free, located as _located)
from ..layers import core as _native
from ..layers import reshaping as _reshaping
from ._adapters import _checked, _leaf, _map_dims, _positive, _restore, _same, _stax_init
from ._spatial import (AvgPool, Conv, Conv1DTranspose, ConvTranspose, GeneralConv,
                       GeneralConvTranspose, MaxPool, SumPool)

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


# --------------------------------------------------------------------------- Dense


def Dense(out_dim, W_init=glorot_normal(), b_init=normal()):
    """A fully connected layer, ``inputs @ W + b`` (stax's Dense, on ``jl.Dense``).

    Args:
      out_dim: the number of output features.
      W_init, b_init: stax initializers ``(key, shape) -> array``; stax's defaults, unlike
        Keras': Glorot normal weights and a N(0, 0.01^2) bias.

    Params: ``(W, b)``, W (in, out_dim), b (out_dim,) (keys ``k1, k2 = random.split(rng)``).

    Input shape: ``(..., in)``, an unbatched ``(in,)`` included. Output shape:
    ``(..., out_dim)``.
    """
    out_dim = _positive("Dense", "out_dim", out_dim)
    native = _native.Dense(out_dim, kernel_initializer=_stax_init(W_init),
                           bias_initializer=_stax_init(b_init))

    def init(rng, input_shape):   # stax's Dense also takes one example without a batch axis
        shape = _as_shape(input_shape)
        if isinstance(shape, _Shape) and len(shape) == 1:
            out_shape, params = native.init(rng, (1,) + shape)
            return out_shape[1:], params
        return native.init(rng, shape)

    def apply(params, x, *, rng=None, train=False):
        if jnp.ndim(x) == 1:
            return native.apply(params, x[None], rng=rng)[0]
        return native.apply(params, x, rng=rng)

    return _leaf(_Layer(init, apply, masking=_PASS), _describe("Dense", out_dim),
                 lambda p: (p["kernel"], p["bias"]), lambda p: {"kernel": p[0], "bias": p[1]})


# --------------------------------------------------------------------------- BatchNorm


def BatchNorm(axis=(0, 1, 2), epsilon=1e-5, center=True, scale=True, beta_init=zeros,
              gamma_init=ones):
    """stax's batch normalization: ``gamma * standardize(x, axis) + beta``.

    Kept as stax has it (no native layer does this): no moving statistics, so every
    batch, at test time too, is normalized with its own statistics. The native
    ``jl.BatchNormalization`` is Keras' layer, with moving statistics in the state.

    Args:
      axis: the axes the statistics are taken over (negative ones count from the end).
      epsilon: added to the variance.
      center, scale: whether there is a `beta` / a `gamma` (``()`` in its place if not).
      beta_init, gamma_init: stax initializers (keys ``k1, k2 = random.split(rng)``).

    Input shape: any. Output shape: the same.
    """
    axis = (axis,) if jnp.isscalar(axis) else tuple(axis)
    name = _describe("BatchNorm", **({"axis": axis} if axis != (0, 1, 2) else {}))

    def axes(rank):
        if any(not -rank <= a < rank for a in axis):
            raise _ShapeError(f"axis {axis} is out of range for a rank-{rank} input", name)
        return tuple(a % rank for a in axis)

    def init_fun(rng, input_shape):
        given = _checked(name, input_shape, min_rank=0)
        ax = axes(len(given))
        kept = tuple(d for i, d in enumerate(given) if i not in ax)
        if any(_is_free(d) for d in kept):
            raise _ShapeError(f"the axes not in axis={axis} must be known at init, received "
                              f"shape {given!r}", name)
        k1, k2 = random.split(rng)
        beta = beta_init(k1, kept) if center else ()
        gamma = gamma_init(k2, kept) if scale else ()
        return given, (beta, gamma)

    def apply_fun(params, x, *, rng=None, **kwargs):   # stax layers ignore other keywords
        beta, gamma = params
        ax = axes(jnp.ndim(x))
        ed = tuple(None if i in ax else slice(None) for i in range(jnp.ndim(x)))
        z = standardize(x, ax, epsilon=epsilon)
        if scale:
            z = gamma[ed] * z
        return z + beta[ed] if center else z

    return _Layer(init_fun, apply_fun, name=name)


# --------------------------------------------------------------------------- elementwise


def elementwise(fun, **fun_kwargs):
    """A parameter-free layer applying ``fun(inputs, **fun_kwargs)`` (on ``jl.Activation``).

    Args:
      fun: an elementwise function.
      **fun_kwargs: keywords bound into every call.

    Input shape: any. Output shape: the same.
    """
    bound = functools.partial(fun, **fun_kwargs) if fun_kwargs else fun
    return _leaf(_native.Activation(bound), _describe("elementwise", fun, **fun_kwargs))


def _renamed(layer, name):
    return _dataclasses.replace(layer, name=name)


Tanh = _renamed(elementwise(jnp.tanh), "Tanh")
Relu = _renamed(elementwise(relu), "Relu")
Exp = _renamed(elementwise(jnp.exp), "Exp")
LogSoftmax = _renamed(elementwise(log_softmax, axis=-1), "LogSoftmax")
Softmax = _renamed(elementwise(softmax, axis=-1), "Softmax")
Softplus = _renamed(elementwise(softplus), "Softplus")
Sigmoid = _renamed(elementwise(sigmoid), "Sigmoid")
Elu = _renamed(elementwise(elu), "Elu")
LeakyRelu = _renamed(elementwise(leaky_relu), "LeakyRelu")
Selu = _renamed(elementwise(selu), "Selu")
Gelu = _renamed(elementwise(gelu), "Gelu")


# --------------------------------------------------------------------------- reshaping


def _flatten():
    native = _reshaping.Flatten()

    def init(rng, input_shape):   # stax flattens free non-batch dims to a free size
        shape = _as_shape(input_shape)
        if isinstance(shape, _Shape) and any(_is_free(d) for d in shape[1:]):
            return _Shape((shape[0], None)), ()
        return native.init(rng, shape)

    return _leaf(_dataclasses.replace(native, init=init), "Flatten")


Flatten = _flatten()
Identity = _leaf(_native.Identity(), "Identity")


# --------------------------------------------------------------------------- fan-out / fan-in


def FanOut(num):
    """Copy the input (on ``jl.FanOut``): a list of `num` references to it.

    Args:
      num: the number of copies.

    Input shape: any. Output shape: a list of `num` copies.
    """
    num = _positive("FanOut", "num", num)
    return _leaf(_combinators.FanOut(num), f"FanOut({num})", listed=True)


FanInSum = _leaf(_combinators.FanInSum(), "FanInSum")


def FanInConcat(axis=-1):
    """Concatenate a list of inputs along `axis` (on ``jl.FanInConcat``).

    Args:
      axis: the axis to join on; the other axes must agree.

    Input shape: a list of shapes. Output shape: one shape.
    """
    return _leaf(_combinators.FanInConcat(axis),
                 _describe("FanInConcat", **({"axis": axis} if axis != -1 else {})))


# --------------------------------------------------------------------------- Dropout


def Dropout(rate, mode="train"):
    """stax's dropout, on ``jl.Dropout(1 - rate)``, with stax's defects kept.

    Args:
      rate: the fraction **kept** (``Dropout(0.9)`` drops 10%); the native `rate` drops.
      mode: fixed at construction: ``'train'`` drops, anything else returns the input
        (the `train` keyword is ignored); `apply` needs an ``rng`` in every mode.

    Input shape: any. Output shape: the same.
    """
    if not isinstance(rate, _numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(f"Dropout: rate (stax's keep probability) must be in [0, 1], "
                         f"got {rate!r}")
    name = _describe("Dropout", rate, **({"mode": mode} if mode != "train" else {}))
    native = _native.Dropout(1.0 - rate)

    def apply(params, x, *, rng=None, train=False):
        if rng is None:   # stax asks for a key in every mode
            raise ValueError(f"{name}: stax's Dropout needs a PRNG key in every mode: call "
                             f"apply_fun(params, inputs, rng=rng) (jl.Dropout needs one only "
                             f"with train=True)")
        return native.apply(params, x, rng=rng, train=True) if mode == "train" else x

    return _leaf(_dataclasses.replace(native, apply=apply), name)


# --------------------------------------------------------------------------- combinators


def _child(obj):
    """`obj` as a Layer; a raw stax ``(init, apply)`` pair gets stax's ``-1`` free dims,
    as it computes its shapes with them (lax's shape rules fail on ``None``)."""
    if isinstance(obj, _Layer) or not (isinstance(obj, (tuple, list)) and len(obj) == 2
                                       and all(callable(f) for f in obj)):
        return _as_layer(obj)
    pair_init, apply = obj

    def init(rng, input_shape):
        out_shape, params = pair_init(rng, _map_dims(input_shape,
                                                     lambda d: -1 if d is None else d))
        out_shape = _map_dims(out_shape, lambda d: None if d in (None, -1) else int(d))
        return _as_shape(out_shape), params

    return _Layer(init, apply, name=getattr(pair_init, "__qualname__", "layer").split(".")[0])


def _keywords(layer):
    """A function picking the apply keywords `layer` accepts (all of them for stax layers)."""
    try:
        sig = _inspect.signature(layer.apply)
    except (TypeError, ValueError):
        return lambda kwargs: kwargs
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return lambda kwargs: kwargs
    return lambda kwargs: {k: v for k, v in kwargs.items() if k in sig.parameters}


def _pinned(layer, pick, key, kwargs):
    """`layer` inited and applied with `key` whatever key the combinator hands it, its
    apply getting `kwargs` (stax derives child keys its own way and forwards every keyword)."""
    def init(rng, input_shape):
        return layer.init(key, input_shape)

    def apply(*args, rng=None, **contract):   # args: (params, x) or (params, state, x)
        return layer.apply(*args, rng=key, **pick({**contract, **kwargs}))

    return _dataclasses.replace(layer, init=init, apply=apply)


def _stax_combinator(combine, layers, init_keys, params_type, outputs_type):
    """stax's `serial` / `parallel` on the native combinator `combine`.

    Child keys: ``init_keys(rng, n)`` at init and ``random.split(rng, n)`` at apply (the
    native combinators split and fold in); params and state come back as `params_type`,
    outputs as `outputs_type`. Stateful when a (native) child is.
    """
    children = tuple(_child(l) for l in layers)
    picks = tuple(_keywords(c) for c in children)
    template = combine(*children)
    n = len(children)

    def built(keys, kwargs):
        return combine(*(_pinned(c, p, k, kwargs) for c, p, k in zip(children, picks, keys)))

    def init_fun(rng, input_shape):
        out_shape, *params_state = built(init_keys(rng, n), {}).init(rng, input_shape)
        return (_restore(out_shape, input_shape), *map(params_type, params_state))

    def apply_fun(params, *args, rng=None, **kwargs):   # args: (x,) or (state, x)
        keys = _split(rng, n) if rng is not None else (None,) * n
        out = built(keys, kwargs).apply(params, *args)
        if template.stateful:
            return outputs_type(out[0]), params_type(out[1])
        return outputs_type(out)

    def constrain(params):
        return params_type(template.constrain(params))

    return _Layer(init_fun, apply_fun, name=template.name, stateful=template.stateful,
                  penalty=template.penalty, constrain=constrain, children=children)


def _serial_keys(rng, n):
    keys = []
    for _ in range(n):   # stax: ``rng, layer_rng = random.split(rng)`` before each layer
        rng, key = _split(rng, 2)
        keys.append(key)
    return keys


def serial(*layers):
    """Chain layers (stax pairs, jaxlayers Layers or functions), on ``jl.serial``.

    Args:
      *layers: the layers, first to last.

    Params: a list with one entry per layer. Keys as stax: init takes
    ``rng, layer_rng = random.split(rng)`` before each layer, apply splits `rng` into
    one key per layer. Every apply keyword (``rng`` aside) reaches every stax layer; a
    native layer gets those it accepts (``train``). With a stateful native child
    (``jl.BatchNormalization``) the result is stateful: ``init -> (shape, params,
    state)``, ``apply(params, state, x, ...) -> (y, state)``, state a list.

    Input shape: the first layer's. Output shape: the last layer's.
    """
    return _stax_combinator(_combinators.serial, layers, _serial_keys, list, _same)


def parallel(*layers):
    """Apply layer i to input i of a list of inputs, on ``jl.parallel``.

    Usually between `FanOut` and `FanInSum` / `FanInConcat`. Takes stax pairs and
    jaxlayers Layers alike, as `serial`.

    Args:
      *layers: one layer per input.

    Params (and output shapes): a tuple in layer order; outputs a list. Keys
    ``random.split(rng, len(layers))`` for init and for apply.

    Input shape: a list of shapes, one per layer. Output shape: a tuple of shapes.
    """
    return _stax_combinator(_combinators.parallel, layers, _split, tuple, list)


def shape_dependent(make_layer):
    """Delay building a layer until the input shape is known (stax's shape_dependent).

    Args:
      make_layer: ``input_shape -> layer`` (a stax pair or a stateless jaxlayers Layer);
        init calls it with the init shape, apply with ``inputs.shape``.

    Input shape: any `make_layer` takes. Output shape: the made layer's.
    """
    name = f"shape_dependent({getattr(make_layer, '__name__', 'make_layer')})"

    def made(shape):
        layer = _child(make_layer(shape))
        if layer.stateful:
            raise _ShapeError(f"make_layer returned the stateful {layer.name}; "
                              f"shape_dependent takes stateless layers", name)
        return layer

    def init_fun(rng, input_shape):
        out_shape, params, _ = _init_child(made(input_shape), rng, input_shape, name)
        return _restore(out_shape, input_shape), params

    def apply_fun(params, inputs, *, rng=None, **kwargs):
        layer = made(inputs.shape)
        with _located(name, layer.name):
            return layer.apply(params, inputs, rng=rng, **_keywords(layer)(kwargs))

    return _Layer(init_fun, apply_fun, name=name)
