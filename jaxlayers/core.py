"""The layer contract: `Layer`, the static `Shape`, `ShapeError`, lifting and `with_state`.

A layer is a pair of pure functions (docs/design.md):

    stateless:  init(key, input_shape) -> (output_shape, params)
                apply(params, x, *, rng=None, train=False) -> y
    stateful:   init(key, input_shape) -> (output_shape, params, state)
                apply(params, state, x, *, rng=None, train=False) -> (y, new_state)
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import weakref
import types
from typing import Any, Callable

import jax
import jax.numpy as jnp


# --------------------------------------------------------------------------- shapes


@jax.tree_util.register_static
class Shape(tuple):
    """A static shape tuple; `None` marks a free dimension (the batch, a time axis).

    Registered as a static pytree node, so it passes untouched through `jax.jit`,
    `jax.vmap` and `jax.eval_shape` of an `init` function.
    """

    def __getitem__(self, index):
        out = tuple.__getitem__(self, index)
        return Shape(out) if isinstance(index, slice) else out

    def __add__(self, other):
        return Shape(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Shape(tuple(other) + tuple(self))

    def __repr__(self):
        return "(" + ", ".join("None" if d is None else str(d) for d in self) + ("," if len(self) == 1 else "") + ")"


def as_shape(shape):
    """Return `shape` as a `Shape` (ints, `None` for free dims; `-1` read as `None`).

    A tuple of shapes (a multi-input layer) is returned as a plain tuple of `Shape`s.
    """
    if shape is None or isinstance(shape, Shape):
        return shape
    if isinstance(shape, (list, tuple)) and shape and all(
            isinstance(s, (list, tuple)) for s in shape):
        return tuple(as_shape(s) for s in shape)
    if isinstance(shape, dict):
        return {k: as_shape(v) for k, v in shape.items()}
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(f"expected a shape tuple such as (None, 10), got {shape!r}") from None
    out = []
    for d in dims:
        if d is None or (isinstance(d, int) and d == -1):
            out.append(None)
        elif isinstance(d, int) and d >= 0:
            out.append(int(d))
        else:
            raise ShapeError(f"expected a shape of non-negative ints and None, got {shape!r}")
    return Shape(out)


def is_free(d) -> bool:
    """True for a dimension whose size is not known at init (`None` or `-1`)."""
    return d is None or d == -1


def shape_matches(expected, actual) -> bool:
    """True when `actual` (concrete) fits `expected` (which may hold free dims)."""
    return len(expected) == len(actual) and all(
        is_free(e) or e == a for e, a in zip(expected, actual))


def dummy_shape(shape, size: int = 2) -> tuple:
    """`shape` with its free dims replaced by `size`, for tracing with `jax.eval_shape`."""
    return tuple(size if is_free(d) else d for d in shape)


# --------------------------------------------------------------------------- errors


class ShapeError(ValueError):
    """A shape or argument that does not fit a layer, raised at init (or apply) time.

    The message names the layer and its place in the model, e.g.
    ``serial[2] Dense(32): expected ..., received ...``.
    """

    def __init__(self, message: str, where: str = ""):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, place: str, layer_name: str = "") -> "ShapeError":
        """A copy whose location is ``place`` + the old one (or `layer_name` if none)."""
        inner = self.where or layer_name
        joint = " " if inner == layer_name else " > "
        return ShapeError(self.message, f"{place}{joint}{inner}".strip())


@contextlib.contextmanager
def located(place: str, layer_name: str = ""):
    """Prefix `place` (e.g. ``serial[2]``) to the location of any ShapeError inside."""
    try:
        yield
    except ShapeError as e:
        raise e.located(place, layer_name) from None


# --------------------------------------------------------------------------- Layer


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
            table[key] = jax.eval_shape(lambda k: init(k, in_shape), jax.random.key(0))[1]
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


def _checked(apply, init, stateful: bool, name: str):
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


@dataclasses.dataclass(frozen=True)
class MaskRule:
    """What a layer does to a time-step mask: the one mask mechanism.

    A mask is a boolean ``(batch, time)`` array (True = a real step), or a tuple / dict of
    them (or None) for a layer with several inputs. Every container hands masks to its
    children through `call_child`, which reads this rule:

      takes: `apply` accepts ``mask=`` (the incoming mask) and uses it (RNNs, pooling over
        time, BatchNormalization, Multiply, Softmax, attention).
      out: the mask after the layer: ``"drop"`` (None, Keras' default), ``"pass"`` (the
        incoming mask, Keras' ``supports_masking``), ``"self"`` (the layer computes it in
        its own pass: ``apply(..., return_mask=True)`` returns ``(y, mask)``; containers), or
        a function ``(x, mask) -> mask`` (Embedding, Masking, merges, RNNs).
    """

    takes: bool = False
    out: Any = "drop"

    def __post_init__(self):
        if not (callable(self.out) or self.out in ("drop", "pass", "self")):
            raise ValueError(f"MaskRule.out must be 'drop', 'pass', 'self' or a function, "
                             f"got {self.out!r}")

    @property
    def related(self) -> bool:
        """True when the layer uses, makes or changes a mask (not plain drop / pass)."""
        return self.takes or self.out not in ("drop", "pass")


DROP = MaskRule()                                # Conv1D, Flatten, pooling, a raw stax pair
PASS = MaskRule(out="pass")                      # Dense, activations, dropouts
THREAD = MaskRule(takes=True, out="self")        # containers: serial, Model, wrappers


def makes_mask(fn: Callable, takes: bool = False) -> MaskRule:
    """The rule of a layer whose output mask is ``fn(x, mask)`` (None drops it)."""
    return MaskRule(takes=takes, out=fn)


def consumes_mask(out="pass") -> MaskRule:
    """The rule of a layer whose `apply` uses ``mask=``; `out` as in `MaskRule`."""
    return MaskRule(takes=True, out=out)


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
            apply = _checked(apply, self.init, self.stateful, self.name)
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


def named(layer, name: str) -> Layer:
    """`layer` with the unique name `name`: its key in a functional Model's params.

    Returns a new Layer object (call that one to share its weights); the same as a
    constructor's ``name=`` argument.
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"named: a layer name must be a non-empty string without '/', got "
                         f"{name!r}")
    return dataclasses.replace(as_layer(layer), label=name)



def describe(kind: str, *args, **kwargs) -> str:
    """``Kind(arg, key=value)`` with the arguments that differ from defaults, for names."""
    def fmt(v):
        if callable(v) and hasattr(v, "__name__"):
            return v.__name__
        return repr(v)
    parts = [fmt(a) for a in args] + [f"{k}={fmt(v)}" for k, v in kwargs.items()]
    return f"{kind}({', '.join(parts)})"


# --------------------------------------------------------------------------- lifting


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


_MISSING = object()


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


def from_stateful(init_s: Callable, run: Callable, *, stateful: bool, empty_state,
                  **fields) -> Layer:
    """A Layer from its stateful form; the stateless form is derived when not `stateful`.

    ``init_s(key, input_shape) -> (output_shape, params, state)`` and
    ``run(params, state, x, rng, train, mask) -> (y, mask_after, new_state)``. The Layer's
    `apply` takes ``mask=`` and ``return_mask=`` (then returning ``(y, mask_after)`` for
    `y`) and its rule is `THREAD`; when not `stateful`, `init` drops the state and `apply`
    runs with `empty_state`. `fields` are the other Layer fields (name, penalty, ...).
    """
    if stateful:
        def init(key, input_shape=None):
            return init_s(key, input_shape)

        def apply(params, state, x=_MISSING, *, rng=None, train=False, mask=None,
                  return_mask=False):
            if x is _MISSING:
                raise TypeError(stateful_call_error(fields.get("name", "layer"),
                                                    fields.get("children", ())))
            y, ymask, state = run(params, state, x, rng, train, mask)
            return ((y, ymask) if return_mask else y), state
    else:
        def init(key, input_shape=None):
            out_shape, params, _ = init_s(key, input_shape)
            return out_shape, params

        def apply(params, x, *, rng=None, train=False, mask=None, return_mask=False):
            y, ymask, _ = run(params, empty_state, x, rng, train, mask)
            return (y, ymask) if return_mask else y

    return Layer(init, apply, stateful=stateful, masking=THREAD, **fields)


# --------------------------------------------------------------------------- recording


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


def call_child(layer: Layer, params, state, x, rng, train, place: str = "", mask=None):
    """Run a child's apply in the stateful form: ``(y, mask_after, new_state)``.

    The one routine every container uses. The child gets ``mask=`` when its rule
    `takes` one (and a mask is there); the mask after it follows its `MaskRule`. A
    ShapeError inside names `place`.
    """
    rule = layer.masking
    kwargs = {"mask": mask} if mask is not None and rule.takes else {}
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
