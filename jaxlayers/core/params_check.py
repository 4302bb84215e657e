"""Params checked while tracing: a leaf's params against what its init makes for the input,
and the message for a stateful layer called in the stateless form."""
from __future__ import annotations

import contextvars
import functools
import weakref

import jax

from .shapes import Shape, ShapeError

__all__ = ["check_params", "checked_apply", "stateful_call_error"]


_CHECKING: contextvars.ContextVar = contextvars.ContextVar("jaxlayers_checking", default=False)
_EXPECTED = weakref.WeakKeyDictionary()   # init -> {input shapes: expected params}


def _expected_params(init, x):
    """The params structure `init` makes for an input like `x` (ShapeDtypeStructs; the
    batch left free, so one trace serves every batch size), or None when it cannot tell
    (the input is not arrays, or init refuses that shape)."""
    try:
        leaves, tree = jax.tree_util.tree_flatten(x)
        shapes = tuple((None,) + tuple(a.shape[1:]) if a.ndim else () for a in leaves)
    except (AttributeError, TypeError):
        return None
    table = _EXPECTED.setdefault(init, {})
    key = (tree, shapes)
    if key not in table:
        in_shape = tree.unflatten([Shape(s) for s in shapes])
        try:
            # the key is made inside eval_shape: made outside, under an enclosing jit, it
            # would be staged into the caller's program (dead code to trace and lower)
            table[key] = jax.eval_shape(lambda: init(jax.random.key(0), in_shape))[1]
        except Exception:   # an init that cannot run on this input decides nothing here
            table[key] = None
    return table[key]


def check_params(name: str, params, expected, x_shape=None):
    """Raise a ShapeError naming `name` unless `params` has the structure and shapes of
    `expected` (a pytree of arrays or ShapeDtypeStructs)."""
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    want = jax.tree_util.tree_flatten_with_path(expected)[0]
    for_input = f" for an input of shape {x_shape}" if x_shape is not None else ""
    got_paths = [jax.tree_util.keystr(p) for p, _ in got]
    want_paths = [jax.tree_util.keystr(p) for p, _ in want]
    if got_paths != want_paths:
        missing = [p for p in want_paths if p not in got_paths]
        extra = [p for p in got_paths if p not in want_paths]
        detail = "; ".join(filter(None, [f"missing params{', params'.join(missing[:3])}"
                                         if missing else "",
                                         f"unexpected params{', params'.join(extra[:3])}"
                                         if extra else ""]))
        raise ShapeError(f"params do not have the structure init gives{for_input}: "
                         f"{detail or 'the containers differ'} (expected "
                         f"{jax.tree_util.tree_structure(expected)}, got "
                         f"{jax.tree_util.tree_structure(params)})", name)
    for (path, g), (_, w) in zip(got, want):
        if tuple(getattr(g, "shape", ())) != tuple(w.shape):
            raise ShapeError(f"params{jax.tree_util.keystr(path)} has shape "
                             f"{tuple(getattr(g, 'shape', ()))}, expected {tuple(w.shape)}"
                             f"{for_input}", name)


def checked_apply(apply, init, stateful: bool, name: str):
    """`apply` that first checks its params against what `init` makes for its input (at
    trace time: free under jit; cached per input shape)."""
    apply = getattr(apply, "_jl_unchecked", apply)   # a Layer rebuilt with a new init

    @functools.wraps(apply)
    def checked(params, *args, **kwargs):
        if stateful and len(args) < 2 and "x" not in kwargs:
            raise TypeError(stateful_call_error(name, ()))
        if _CHECKING.get():      # inside a layer that wraps this one: it checked the params
            return apply(params, *args, **kwargs)
        x = args[1] if stateful and len(args) > 1 else (args[0] if args else None)
        expected = _expected_params(init, x)
        if expected is not None:
            try:
                check_params(name, params, expected,
                             Shape(x.shape) if hasattr(x, "shape") else None)
            except ShapeError as wrong:
                try:   # the layer's own input check may blame the input instead: say both
                    apply(params, *args, **kwargs)
                except ShapeError as own:
                    if own.message == wrong.message:
                        raise wrong from None
                    raise ShapeError(f"{wrong.message}; or the input does not fit these "
                                     f"params: {own.message}", name) from None
                except Exception:
                    pass
                raise wrong from None
        token = _CHECKING.set(True)
        try:
            return apply(params, *args, **kwargs)
        finally:
            _CHECKING.reset(token)

    checked._jl_unchecked = apply
    return checked


def stateful_call_error(name: str, children) -> str:
    """The message for a stateful layer's apply called in the stateless form."""
    culprit = _first_stateful(children)
    why = f" (its {culprit} carries state)" if culprit else ""
    return (f"{name} is stateful{why}: its init returns (output_shape, params, state) and "
            f"its apply is apply(params, state, x, ...) -> (y, new_state); pass the state "
            f"from init. To write one training loop for any model, use jl.with_state(model).")


def _first_stateful(children) -> str:
    """The name of the first stateful leaf under `children` ("" if none)."""
    for child in children:
        if child.stateful:
            return _first_stateful(child.children) or child.name
    return ""
