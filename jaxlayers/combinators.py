"""Combinators: `serial`, `parallel`, `branch`, `residual`, `FanOut`, `FanInSum`, `FanInConcat`.

Each takes Layers, ``(init, apply)`` pairs or plain functions and returns a `Layer`
whose params (and state, when any child is stateful) are tuples in child order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .core import (Layer, Shape, ShapeError, apply_child, apply_child_masked, as_layer,
                   as_shape, child_rng, init_child, is_free)


def _compose(layers, name, init_children, apply_children, takes_mask=False,
             returns_mask=False, passes_mask=False):
    """A Layer over `layers` from child-wise init/apply loops in the stateful form.

    `init_children(key, input_shape) -> (out_shape, params, state)` and
    `apply_children(params, state, x, rng, train) -> (y, state)`; the stateless form
    drops the state when no child is stateful. With `takes_mask` / `returns_mask`,
    `apply` also accepts ``mask=`` / ``return_mask=`` and passes them to `apply_children`.
    """
    stateful = any(l.stateful for l in layers)

    def penalty(params):
        return sum(l.penalty(p) for l, p in zip(layers, params))

    def constrain(params):
        return tuple(l.constrain(p) for l, p in zip(layers, params))

    if stateful:
        def init(key, input_shape):
            return init_children(key, as_shape(input_shape))

        def apply(params, state, x, *, rng=None, train=False, **masks):
            return apply_children(params, state, x, rng, train, **masks)
    else:
        empty = tuple(() for _ in layers)

        def init(key, input_shape):
            out_shape, params, _ = init_children(key, as_shape(input_shape))
            return out_shape, params

        def apply(params, x, *, rng=None, train=False, **masks):
            return apply_children(params, empty, x, rng, train, **masks)[0]

    return Layer(init, apply, name=name, stateful=stateful, penalty=penalty,
                 constrain=constrain, children=tuple(layers), takes_mask=takes_mask,
                 returns_mask=returns_mask, passes_mask=passes_mask)


def _split(key, n):
    """`n` child keys: ``jax.random.split(key, n)``, unpacked.

    Outside tracing the keys are unpacked on the host: iterating a concrete key array
    compiles an n-way unstack for every new n (about 1 s for 40 children, 10 s for 150
    on a 2-core CPU, paid at the first `init` of every model size). Same keys either way.
    """
    if not n:
        return ()
    keys = jax.random.split(key, n)
    if isinstance(keys, jax.core.Tracer):
        return keys
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(keys)
        return [jax.random.wrap_key_data(d, impl=impl)
                for d in np.asarray(jax.random.key_data(keys))]
    return [jnp.asarray(d) for d in np.asarray(keys)]   # raw uint32 keys


def serial(*layers, name: str = "serial") -> Layer:
    """Chain layers: the output of each is the input of the next.

    Returns a Layer whose params are a tuple with one entry per layer. A time-step
    mask made by a child (Masking, Embedding(mask_zero=True)) travels along the
    chain to the children that take one (see `core.propagate_mask`). A serial with
    such a child takes ``mask=`` (the incoming mask) and `returns_mask`: its mask
    after the last child reaches the layers after it when it is nested.
    """
    layers = tuple(as_layer(l) for l in layers)
    masked = any(l.mask_fn is not None or l.takes_mask or l.returns_mask for l in layers)

    def init_children(key, shape):
        params, states = [], []
        for i, (layer, k) in enumerate(zip(layers, _split(key, len(layers)))):
            shape, p, s = init_child(layer, k, shape, f"{name}[{i}]")
            params.append(p)
            states.append(s)
        return shape, tuple(params), tuple(states)

    def apply_children(params, state, x, rng, train, mask=None, return_mask=False):
        new_state = []
        for i, (layer, p, s) in enumerate(zip(layers, params, state)):
            if masked:
                x, mask, s = apply_child_masked(layer, p, s, x, child_rng(rng, i), train,
                                                f"{name}[{i}]", mask)
            else:
                x, s = apply_child(layer, p, s, x, child_rng(rng, i), train, f"{name}[{i}]")
            new_state.append(s)
        return ((x, mask) if return_mask else x), tuple(new_state)

    # A chain of mask-passing layers (Dense, Dropout, ...) passes a mask on, as one would.
    passes = not masked and all(layer.passes_mask for layer in layers)
    return _compose(layers, name, init_children, apply_children, takes_mask=masked,
                    returns_mask=masked, passes_mask=passes)


def parallel(*layers, name: str = "parallel") -> Layer:
    """Apply layer i to input i of a tuple of inputs; returns the tuple of outputs."""
    layers = tuple(as_layer(l) for l in layers)
    n = len(layers)

    def init_children(key, shapes):
        if not isinstance(shapes, tuple) or isinstance(shapes, Shape) or len(shapes) != n:
            raise ShapeError(f"expected a tuple of {n} input shapes, received {shapes!r}", name)
        outs, params, states = [], [], []
        for i, (layer, k, shape) in enumerate(zip(layers, _split(key, n), shapes)):
            out, p, s = init_child(layer, k, shape, f"{name}[{i}]")
            outs.append(out)
            params.append(p)
            states.append(s)
        return tuple(outs), tuple(params), tuple(states)

    def apply_children(params, state, xs, rng, train):
        if not isinstance(xs, (tuple, list)) or len(xs) != n:
            raise ShapeError(f"expected a tuple of {n} inputs, received "
                             f"{type(xs).__name__}", name)
        outs, new_state = [], []
        for i, (layer, p, s, x) in enumerate(zip(layers, params, state, xs)):
            y, s = apply_child(layer, p, s, x, child_rng(rng, i), train, f"{name}[{i}]")
            outs.append(y)
            new_state.append(s)
        return tuple(outs), tuple(new_state)

    return _compose(layers, name, init_children, apply_children)


def FanOut(num: int) -> Layer:
    """Copy the input `num` times; returns a tuple of `num` identical outputs."""
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"FanOut: num must be a positive int, got {num!r}")

    def init(key, input_shape):
        return tuple(as_shape(input_shape) for _ in range(num)), ()

    def apply(params, x, *, rng=None, train=False):
        return tuple(x for _ in range(num))

    return Layer(init, apply, name=f"FanOut({num})")


def branch(*layers, name: str = "branch") -> Layer:
    """Apply every layer to the same input; returns the tuple of their outputs."""
    return serial(FanOut(len(layers)), parallel(*layers), name=name)


def _input_shapes(name, shapes, at_least=1):
    if not isinstance(shapes, tuple) or isinstance(shapes, Shape) or len(shapes) < at_least:
        raise ShapeError(f"expected a tuple of input shapes (a fan-in), received {shapes!r}", name)
    return shapes


def _same_dims(a, b):
    return len(a) == len(b) and all(is_free(x) or is_free(y) or x == y for x, y in zip(a, b))


def _merge_dims(a, b):
    return Shape(y if is_free(x) else x for x, y in zip(a, b))


def FanInSum() -> Layer:
    """Sum a tuple of same-shaped inputs; returns one array of that shape."""
    name = "FanInSum()"

    def init(key, input_shape):
        shapes = _input_shapes(name, as_shape(input_shape))
        out = shapes[0]
        for s in shapes[1:]:
            if not _same_dims(out, s):
                raise ShapeError(f"inputs must have the same shape, received "
                                 f"{', '.join(map(repr, shapes))}", name)
            out = _merge_dims(out, s)
        return out, ()

    def apply(params, xs, *, rng=None, train=False):
        shapes = [x.shape for x in xs]
        if any(s != shapes[0] for s in shapes):
            raise ShapeError(f"inputs must have the same shape, received {shapes}", name)
        return sum(xs[1:], xs[0])

    return Layer(init, apply, name=name)


def FanInConcat(axis: int = -1) -> Layer:
    """Concatenate a tuple of inputs along `axis` (other dims must agree)."""
    name = f"FanInConcat(axis={axis})"

    def init(key, input_shape):
        shapes = _input_shapes(name, as_shape(input_shape))
        rank = len(shapes[0])
        if not -rank <= axis < rank or any(len(s) != rank for s in shapes):
            raise ShapeError(f"inputs must share a rank that has axis {axis}, received "
                             f"{', '.join(map(repr, shapes))}", name)
        ax = axis % rank
        out = list(shapes[0])
        for s in shapes[1:]:
            rest_a = out[:ax] + out[ax + 1:]
            rest_b = list(s[:ax]) + list(s[ax + 1:])
            if not _same_dims(rest_a, rest_b):
                raise ShapeError(f"inputs must agree on every axis but {axis}, received "
                                 f"{', '.join(map(repr, shapes))}", name)
            out = list(_merge_dims(out, s))
        out[ax] = None if any(is_free(s[ax]) for s in shapes) else sum(s[ax] for s in shapes)
        return Shape(out), ()

    def apply(params, xs, *, rng=None, train=False):
        return jnp.concatenate(xs, axis=axis)

    return Layer(init, apply, name=name)


def residual(*layers, name: str = "residual") -> Layer:
    """``x + f(x)`` with ``f = serial(*layers)``; f must keep the shape of its input."""
    body = serial(*layers, name=name)
    place = f"{name}"

    def check(shape, out_shape):
        if not _same_dims(shape, out_shape):
            raise ShapeError(f"the residual branch maps {shape!r} to {out_shape!r}; it must keep "
                             f"the input shape", place)

    if body.stateful:
        def init(key, input_shape):
            shape = as_shape(input_shape)
            out_shape, params, state = body.init(key, shape)
            check(shape, out_shape)
            return shape, params, state

        def apply(params, state, x, *, rng=None, train=False):
            y, state = body.apply(params, state, x, rng=rng, train=train)
            return x + y, state
    else:
        def init(key, input_shape):
            shape = as_shape(input_shape)
            out_shape, params = body.init(key, shape)
            check(shape, out_shape)
            return shape, params

        def apply(params, x, *, rng=None, train=False):
            return x + body.apply(params, x, rng=rng, train=train)

    return Layer(init, apply, name=name, stateful=body.stateful, penalty=body.penalty,
                 constrain=body.constrain, children=body.children,
                 passes_mask=body.passes_mask)
