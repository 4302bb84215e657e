"""What containers share: `from_stateful` (the stateless twin derived once), `init_child` and
`call_child` (the one routine that runs a child and threads its mask), child keys, recording."""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any, Callable

import jax

from .layer import Layer
from .lifting import stateful_init
from .masks import THREAD
from .params_check import stateful_call_error
from .shapes import located

__all__ = ["Record", "call_child", "child_rng", "from_stateful", "init_child", "recording"]

_MISSING = object()


def from_stateful(init_s: Callable, run: Callable, *, stateful: bool, empty_state,
                  keywords: tuple = (), **fields) -> Layer:
    """A Layer from its stateful form; the stateless form is derived when not `stateful`.

    ``init_s(key, input_shape) -> (output_shape, params, state)`` and
    ``run(params, state, x, rng, train, mask, **extra) -> (y, mask_after, new_state)``.
    The Layer's `apply` takes ``mask=`` and ``return_mask=`` (then returning
    ``(y, mask_after)`` for `y`) and its rule is `THREAD`; when not `stateful`, `init`
    drops the state and `apply` runs with `empty_state`. `keywords` names further call
    keywords `apply` accepts (Bidirectional's ``initial_state``): those given, and not
    None, reach `run` as `extra`; any other is a TypeError naming the layer. `fields` are
    the other Layer fields (name, penalty, ...).
    """
    name = fields.get("name", "layer")

    def extra_keywords(given):
        unknown = sorted(set(given) - set(keywords))
        if unknown:
            takes = ", ".join(("mask", "return_mask") + tuple(keywords))
            raise TypeError(f"{name}: apply got an unexpected keyword argument "
                            f"{unknown[0]!r} (it takes rng, train, {takes})")
        return {k: v for k, v in given.items() if v is not None}

    if stateful:
        def init(key, input_shape=None):
            return init_s(key, input_shape)

        def apply(params, state, x=_MISSING, *, rng=None, train=False, mask=None,
                  return_mask=False, **given):
            if x is _MISSING:
                raise TypeError(stateful_call_error(name, fields.get("children", ())))
            y, ymask, state = run(params, state, x, rng, train, mask, **extra_keywords(given))
            return ((y, ymask) if return_mask else y), state
    else:
        def init(key, input_shape=None):
            out_shape, params, _ = init_s(key, input_shape)
            return out_shape, params

        def apply(params, x, *, rng=None, train=False, mask=None, return_mask=False, **given):
            y, ymask, _ = run(params, empty_state, x, rng, train, mask, **extra_keywords(given))
            return (y, ymask) if return_mask else y

    return Layer(init, apply, stateful=stateful, masking=THREAD, **fields)


_RECORDER: contextvars.ContextVar = contextvars.ContextVar("jaxlayers_recorder", default=None)


@dataclasses.dataclass
class Record:
    """One layer met while a model's init ran under `recording` (used by `summary`)."""

    depth: int
    label: str
    layer: Layer
    input_shape: Any = None
    output_shape: Any = None
    params: Any = ()
    state: Any = ()


@contextlib.contextmanager
def recording():
    """Collect a `Record` for each `init_child` call made inside the block."""
    rows: list[Record] = []
    token = _RECORDER.set({"rows": rows, "depth": 0})
    try:
        yield rows
    finally:
        _RECORDER.reset(token)


def init_child(layer: Layer, key, input_shape, place: str):
    """Run a child's init in the stateful form, naming `place` in any ShapeError.

    Returns ``(output_shape, params, state)`` (state ``()`` for a stateless child).
    Records the child when a summary is being taken.
    """
    rec = _RECORDER.get()
    row = None
    if rec is not None:
        row = Record(rec["depth"], place, layer, input_shape)
        rec["rows"].append(row)
        rec["depth"] += 1
    try:
        with located(place, layer.name):
            out = stateful_init(layer, key, input_shape)
    finally:
        if rec is not None:
            rec["depth"] -= 1
    if row is not None:
        row.output_shape, row.params, row.state = out
    return out


def call_child(layer: Layer, params, state, x, rng, train, place: str = "", mask=None,
               **keywords):
    """Run a child's apply in the stateful form: ``(y, mask_after, new_state)``.

    The one routine every container uses. The child gets ``mask=`` when its rule
    `takes` one (and a mask is there); the mask after it follows its `MaskRule`. A
    ShapeError inside names `place`. `keywords` are further call keywords for the child
    (an RNN's ``initial_state``).
    """
    rule = layer.masking
    kwargs = dict(keywords)
    if mask is not None and rule.takes:
        kwargs["mask"] = mask
    if rule.out == "self":
        kwargs["return_mask"] = True
    with located(place, layer.name):
        if layer.stateful:
            y, state = layer.apply(params, state, x, rng=rng, train=train, **kwargs)
        else:
            y = layer.apply(params, x, rng=rng, train=train, **kwargs)
    if rule.out == "self":
        y, out_mask = y
    elif callable(rule.out):
        out_mask = rule.out(x, mask)
    elif rule.out == "pass" and _keeps_time_axes(y, mask):
        out_mask = mask
    else:
        out_mask = None
    return y, out_mask, state


def _keeps_time_axes(y, mask) -> bool:
    """True when `mask` is one (batch, time) mask and `y` keeps those leading axes."""
    return (hasattr(mask, "shape") and hasattr(y, "shape") and len(y.shape) >= 2
            and tuple(y.shape[:2]) == tuple(mask.shape))


def child_rng(rng, i: int):
    """The key for child `i`: ``fold_in(rng, i)``, or None when `rng` is None."""
    return None if rng is None else jax.random.fold_in(rng, i)
