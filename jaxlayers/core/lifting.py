"""Lifting: functions and `(init, apply)` pairs as Layers, the stateful form, inference mode."""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from .layer import Layer
from .masks import PASS
from .shapes import Shape, as_shape, dummy_shape

__all__ = ["as_layer", "function_layer", "infer_shape", "inference", "named", "stateful_init",
           "with_state"]


def _function_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name


def function_layer(fn: Callable, name: str | None = None) -> Layer:
    """Lift a plain function ``x -> y`` to a parameter-free layer (params ``()``)."""
    name = name or _function_name(fn)

    def init(key, input_shape):
        return infer_shape(fn, as_shape(input_shape)), ()

    def apply(params, x, *, rng=None, train=False):
        return fn(x)

    # an elementwise function in a chain is Keras' Activation: it passes masks (jl.Lambda
    # drops them unless given mask=, as Keras' Lambda)
    return Layer(init, apply, name=name, masking=PASS)


def _is_shape_leaf(s):
    return isinstance(s, Shape)


def infer_shape(fn: Callable, input_shape, dtype=jnp.float32):
    """The output shape(s) of ``fn(x)`` for inputs of `input_shape`, with no data.

    Traces `fn` with `jax.eval_shape` twice, free dims set to 2 and then 3; output
    dims that differ between the two are free (`None`).
    """
    def trace(size):
        spec = jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(dummy_shape(s, size), dtype), input_shape,
            is_leaf=_is_shape_leaf)
        return jax.eval_shape(fn, spec)

    a, b = trace(2), trace(3)
    return jax.tree_util.tree_map(
        lambda x, y: Shape(d if d == e else None for d, e in zip(x.shape, y.shape)), a, b)


def as_layer(obj) -> Layer:
    """Return `obj` as a `Layer`: a Layer, an ``(init, apply)`` pair, or a function."""
    if isinstance(obj, Layer):
        return obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(callable(f) for f in obj):
        pair_init, apply = obj

        def init(key, input_shape):  # a raw stax pair returns a plain tuple with -1 dims
            out_shape, *rest = pair_init(key, input_shape)
            return (as_shape(out_shape), *rest)

        return Layer(init, apply, name=getattr(pair_init, "__qualname__", "layer").split(".")[0])
    if callable(obj):
        return function_layer(obj)
    raise TypeError(f"expected a Layer, an (init, apply) pair or a function, got {obj!r}")


def with_state(layer) -> Layer:
    """Return `layer` in the stateful form; a stateless layer gets state ``()``.

    The result's ``init`` returns ``(output_shape, params, state)`` and its ``apply``
    ``(params, state, x, ...) -> (y, state)``. A stateful layer is returned as is.
    """
    layer = as_layer(layer)
    if layer.stateful:
        return layer
    init, apply = layer.init, layer.apply

    def init_s(key, input_shape):
        out_shape, params = init(key, input_shape)
        return out_shape, params, ()

    def apply_s(params, state, x, *, rng=None, train=False, **kwargs):
        return apply(params, x, rng=rng, train=train, **kwargs), state

    return dataclasses.replace(layer, init=init_s, apply=apply_s, stateful=True)


def inference(layer) -> Layer:
    """`layer` (a layer or a whole sub-model) always applied as with ``train=False``.

    Its Dropout layers stop dropping and its BatchNormalization layers normalise with
    their moving statistics and stop updating them, whatever the caller passes: use it
    around a frozen backbone when fine-tuning (freeze its params in the optimizer too).
    Params, state structure, `penalty` and `constrain` are the layer's own.
    """
    inner = as_layer(layer)
    apply_inner = inner.apply

    def apply(*args, rng=None, train=False, **kwargs):
        return apply_inner(*args, rng=None, train=False, **kwargs)

    return dataclasses.replace(inner, apply=apply, name=f"inference({inner.name})",
                               children=(inner,))


def stateful_init(layer: Layer, key, input_shape):
    """``(output_shape, params, state)`` from any layer (state ``()`` if it has none)."""
    out = layer.init(key, input_shape)
    return out if layer.stateful else (*out, ())


def named(layer, name: str) -> Layer:
    """`layer` with the unique name `name`: its key in a functional Model's params.

    Returns a new Layer object (call that one to share its weights); the same as a
    constructor's ``name=`` argument.
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"named: a layer name must be a non-empty string without '/', got "
                         f"{name!r}")
    return dataclasses.replace(as_layer(layer), label=name)
