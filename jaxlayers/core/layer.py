"""The `Layer` dataclass: a pair of pure functions plus metadata (docs/design.md, section 1)."""
from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any, Callable

from .masks import DROP, MaskRule
from .params_check import checked_apply

__all__ = ["Layer", "describe", "on_symbolic_call"]


def _zero_penalty(params):
    return 0.0


def _no_constraint(params):
    return params


def _accepts_kwargs(fn, names=("rng", "train")) -> bool:
    if (type(fn) is types.FunctionType and not hasattr(fn, "__wrapped__")
            and not hasattr(fn, "__signature__")):
        # a plain function: read its code object (inspect.signature costs ~0.2 ms a
        # layer, most of the time it takes to build a deep model)
        code = fn.__code__
        if code.co_flags & inspect.CO_VARKEYWORDS:
            return True
        params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        return all(n in params for n in names)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return True
    return all(n in sig.parameters for n in names)


def _with_contract_kwargs(apply):
    """Wrap an `apply(params, x)` that takes no `rng` / `train` so it ignores them."""
    if _accepts_kwargs(apply):
        return apply
    takes_rng = _accepts_kwargs(apply, ("rng",))

    def wrapped(*args, rng=None, train=False, **kwargs):
        return apply(*args, **({"rng": rng} if takes_rng else {}), **kwargs)

    wrapped.__wrapped__ = apply
    return wrapped


_SYMBOLIC_CALL: list = []   # set by the functional API (jaxlayers/functional.py) on import


def on_symbolic_call(fn: Callable):
    """Register ``fn(layer, *args, **kwargs)``, run when a Layer is called (functional API)."""
    _SYMBOLIC_CALL[:] = [fn]


@dataclasses.dataclass(frozen=True, eq=False)
class Layer:
    """A layer: a pair of pure functions plus metadata.

    Attributes:
      init: ``(key, input_shape) -> (output_shape, params[, state])``.
      apply: ``(params, [state,] x, *, rng=None, train=False) -> y | (y, new_state)``.
      name: how the layer is shown in errors and summaries, e.g. ``Dense(32)``.
      stateful: whether `init` / `apply` use the stateful form.
      penalty: ``params -> scalar``, the sum of this layer's weight regularizers.
      constrain: ``params -> params``, projections applied after an optimizer update.
      children: sub-layers (for combinators), used by `summary`.
      label: a user-given unique name (``name=``, ``jl.named``), the layer's key in a
        functional Model's params; empty for the automatic Keras-style name.
      graph: the node graph of a functional Model (``jl.Model``), for summary and plots.
      masking: the layer's `MaskRule` (default `DROP`, as Keras 3 for a layer that does
        not support masking).

    Iterating a layer yields ``(init, apply)``, so ``init, apply = jl.Dense(10)``
    works as in stax.
    """

    init: Callable
    apply: Callable
    name: str = "Layer"
    stateful: bool = False
    penalty: Callable = _zero_penalty
    constrain: Callable = _no_constraint
    children: tuple = ()
    label: str = ""
    graph: Any = None
    masking: MaskRule = DROP

    def __post_init__(self):
        apply = _with_contract_kwargs(getattr(self.apply, "_jl_unchecked", self.apply))
        if not self.children:   # a leaf: its params are checked; containers check theirs
            apply = checked_apply(apply, self.init, self.stateful, self.name)
        object.__setattr__(self, "apply", apply)

    def __iter__(self):
        yield self.init
        yield self.apply

    # Like a stax pair: ``layer[0]`` is init, ``layer[1]`` apply, ``len(layer) == 2``.
    def __getitem__(self, index):
        return (self.init, self.apply)[index]

    def __len__(self):
        return 2

    def __repr__(self):
        return self.name

    @property
    def kind(self) -> str:
        """The layer's type name, e.g. ``Dense``."""
        return self.name.split("(", 1)[0]

    def __call__(self, *args, **kwargs):
        """Calling a layer on `jl.Input` tensors records a node (the functional API)."""
        if not _SYMBOLIC_CALL:
            raise TypeError(
                f"{self.name} is not called directly: use `.init(key, input_shape)` and "
                f"`.apply(params, x)`")
        return _SYMBOLIC_CALL[0](self, *args, **kwargs)


def describe(kind: str, *args, **kwargs) -> str:
    """``Kind(arg, key=value)`` with the arguments that differ from defaults, for names."""
    def fmt(v):
        if callable(v) and hasattr(v, "__name__"):
            return v.__name__
        return repr(v)
    parts = [fmt(a) for a in args] + [f"{k}={fmt(v)}" for k, v in kwargs.items()]
    return f"{kind}({', '.join(parts)})"
