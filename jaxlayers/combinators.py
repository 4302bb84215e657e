"""Combinators: `serial`, `parallel`, `branch`, `residual`, `FanOut`, `FanInSum`, `FanInConcat`.

Each takes Layers, ``(init, apply)`` pairs or plain functions and returns a `Layer`
whose params (and state, when any child is stateful) are tuples in child order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .core import (Layer, Shape, ShapeError, as_layer, as_shape, call_child, child_rng,
                   from_stateful, init_child, is_free, makes_mask,
                   stateful_init)


def _children(layers, name):
    """`layers` as Layers; a single list argument is the list of layers (Keras' habit)."""
    if len(layers) == 1 and isinstance(layers[0], list):
        layers = layers[0]
    return tuple(as_layer(l) for l in layers)


def _compose(layers, name, init_children, run_children, label=""):
    """A Layer over `layers` from child-wise loops in the stateful form (`from_stateful`).

    `init_children(key, input_shape) -> (out_shape, params, state)` and
    `run_children(params, state, x, rng, train, mask) -> (y, mask_after, state)`.
    Params and state are tuples in child order; both are checked to have one entry per child.
    """
    def penalty(params):
        return sum(l.penalty(p) for l, p in zip(layers, params))

    def constrain(params):
        return tuple(l.constrain(p) for l, p in zip(layers, params))

    def init(key, input_shape):
        return init_children(key, as_shape(input_shape))

    def run(params, state, x, rng, train, mask):
        check_entries(name, params, len(layers), "params")
        check_entries(name, state, len(layers), "state")
        return run_children(params, state, x, rng, train, mask)

    return from_stateful(init, run, stateful=any(l.stateful for l in layers),
                         empty_state=tuple(() for _ in layers), name=name, penalty=penalty,
                         constrain=constrain, children=tuple(layers), label=label)


def check_entries(name, tree, n, what="params"):
    """Raise a ShapeError naming `name` unless `tree` is a tuple/list of `n` entries."""
    if not isinstance(tree, (tuple, list)) or len(tree) != n:
        got = (f"{len(tree)}" if isinstance(tree, (tuple, list))
               else f"a {type(tree).__name__}")
        raise ShapeError(f"expects {n} {what} entries (one per child), got {got}", name)


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


def serial(*layers, name: str | None = None) -> Layer:
    """Chain layers: the output of each is the input of the next.

    Args:
      *layers: Layers, ``(init, apply)`` pairs or functions; or one list of them.
      name: the chain's name (its key in a functional Model, and the place named in errors;
        default ``serial``).

    Returns a Layer whose params (and state) are tuples with one entry per layer. Time-step
    masks travel along the chain (`core.call_child`): Embedding(mask_zero=True) -> LSTM
    masks the padding; ``apply(..., mask=)`` gives the incoming mask and
    ``apply(..., return_mask=True)`` returns ``(y, mask_after)``.
    """
    layers = _children(layers, name)
    place = name or "serial"

    def init_children(key, shape):
        params, states = [], []
        for i, (layer, k) in enumerate(zip(layers, _split(key, len(layers)))):
            shape, p, s = init_child(layer, k, shape, f"{place}[{i}]")
            params.append(p)
            states.append(s)
        return shape, tuple(params), tuple(states)

    def run_children(params, state, x, rng, train, mask):
        new_state = []
        for i, (layer, p, s) in enumerate(zip(layers, params, state)):
            x, mask, s = call_child(layer, p, s, x, child_rng(rng, i), train, f"{place}[{i}]",
                                    mask)
            new_state.append(s)
        return x, mask, tuple(new_state)

    return _compose(layers, place, init_children, run_children, label=name or "")


def Sequential(layers=None, name: str | None = None) -> Layer:
    """Keras' ``Sequential(layers, name=)``: `serial` over a list of layers."""
    return serial(list(layers or []), name=name)


def parallel(*layers, name: str | None = None) -> Layer:
    """Apply layer i to input i of a tuple of inputs; returns the tuple of outputs.

    Masks: input i's mask (from a tuple of masks) goes to layer i; the outputs' masks are
    returned as a tuple (None where a layer drops its mask).
    """
    layers = _children(layers, name)
    place = name or "parallel"
    n = len(layers)

    def init_children(key, shapes):
        if not isinstance(shapes, tuple) or isinstance(shapes, Shape) or len(shapes) != n:
            raise ShapeError(f"expected a tuple of {n} input shapes, received {shapes!r}", place)
        outs, params, states = [], [], []
        for i, (layer, k, shape) in enumerate(zip(layers, _split(key, n), shapes)):
            out, p, s = init_child(layer, k, shape, f"{place}[{i}]")
            outs.append(out)
            params.append(p)
            states.append(s)
        return tuple(outs), tuple(params), tuple(states)

    def run_children(params, state, xs, rng, train, mask):
        if not isinstance(xs, (tuple, list)) or len(xs) != n:
            raise ShapeError(f"expected a tuple of {n} inputs, received "
                             f"{type(xs).__name__}", place)
        masks = _per_input_masks(mask, n, place)
        outs, out_masks, new_state = [], [], []
        for i, (layer, p, s, x, m) in enumerate(zip(layers, params, state, xs, masks)):
            y, m, s = call_child(layer, p, s, x, child_rng(rng, i), train, f"{place}[{i}]", m)
            outs.append(y)
            out_masks.append(m)
            new_state.append(s)
        out_mask = None if all(m is None for m in out_masks) else tuple(out_masks)
        return tuple(outs), out_mask, tuple(new_state)

    return _compose(layers, place, init_children, run_children, label=name or "")


def _per_input_masks(mask, n, place):
    """`mask` split over `n` inputs: None, one mask shared by all, or a tuple of n."""
    if mask is None or hasattr(mask, "shape"):
        return [mask] * n
    if isinstance(mask, (tuple, list)) and len(mask) == n:
        return list(mask)
    raise ShapeError(f"expected one mask or a tuple of {n} masks, received "
                     f"{type(mask).__name__}", place)


def FanOut(num: int) -> Layer:
    """Copy the input `num` times; returns a tuple of `num` identical outputs (and masks)."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"FanOut: num must be a positive int, got {num!r}")

    def init(key, input_shape):
        return tuple(as_shape(input_shape) for _ in range(num)), ()

    def apply(params, x, *, rng=None, train=False):
        return tuple(x for _ in range(num))

    def copies(x, mask):
        return None if mask is None else tuple(mask for _ in range(num))

    return Layer(init, apply, name=f"FanOut({num})", masking=makes_mask(copies))


def branch(*layers, name: str | None = None) -> Layer:
    """Apply every layer to the same input; returns the tuple of their outputs (and masks)."""
    layers = _children(layers, name)
    return serial(FanOut(len(layers)), parallel(*layers), name=name or "branch")


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

    return Layer(init, apply, name=name, masking=makes_mask(merged_mask))


def merged_mask(xs, masks):
    """Keras' `Merge.compute_mask`: the OR of the inputs' masks; None unless all have one."""
    if masks is None or hasattr(masks, "shape"):
        return masks
    masks = list(masks)
    if not masks or any(m is None for m in masks):
        return None
    out = masks[0]
    for m in masks[1:]:
        out = jnp.logical_or(out, m)
    return out


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


def residual(*layers, name: str | None = None) -> Layer:
    """``x + f(x)`` with ``f = serial(*layers)``; f must keep the shape of its input.

    The mask after it is Keras' Add of the two paths: the OR of the input's mask and the
    body's, None unless both have one (a body of mask-passing layers keeps the mask).
    """
    place = name or "residual"
    body = serial(*_children(layers, name), name=place)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        out_shape, params, state = stateful_init(body, key, shape)
        if not _same_dims(shape, out_shape):
            raise ShapeError(f"the residual branch maps {shape!r} to {out_shape!r}; it must "
                             f"keep the input shape", place)
        return shape, params, state

    def run(params, state, x, rng, train, mask):
        y, body_mask, state = call_child(body, params, state, x, rng, train, "", mask)
        return x + y, merged_mask(None, (mask, body_mask)), state

    return from_stateful(init, run, stateful=body.stateful, empty_state=tuple(
        () for _ in body.children), name=place, penalty=body.penalty,
        constrain=body.constrain, children=body.children, label=name or "")
