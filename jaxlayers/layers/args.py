"""Constructor arguments: small validators and the `keras_layer` decorator.

Every public layer constructor checks its arguments when it is called, so a careless value
(``Dropout("0.5")``, ``Dense(True)``) fails at construction with a message naming the layer,
the argument, what was expected and what was received. A value of the wrong type raises
`ArgumentTypeError` (both a TypeError and a ValueError); a value of the right type out of
range raises ValueError. Each validator returns the value, normalised (an int as int).

`keras_layer` adds Keras' base-layer keywords to a constructor (see its docstring).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers

from ..regularizers import with_activity_regularizer

__all__ = ["ArgumentTypeError", "keras_layer", "layer_name", "boolean", "number",
           "positive_int", "non_negative_int", "fraction", "one_of", "int_or_ints",
           "refuse_unless_default", "refuse_lora"]


class ArgumentTypeError(TypeError, ValueError):
    """A constructor argument of the wrong type (catchable as TypeError or ValueError)."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _message(layer, arg, expected, value) -> str:
    return f"{layer}: {arg} must be {expected}, received {value!r}"


def boolean(layer: str, arg: str, value) -> bool:
    """`value` if it is a bool (numpy bools included)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ArgumentTypeError(_message(layer, arg, "True or False", value))
    return bool(value)


def number(layer: str, arg: str, value, *, minimum=None, maximum=None,
           open_min: bool = False, open_max: bool = False) -> float:
    """`value` as a float, a real number within ``[minimum, maximum]`` (bounds optional;
    `open_min` / `open_max` exclude them)."""
    low = "" if minimum is None else ("(" if open_min else "[") + f"{minimum}, "
    high = "" if maximum is None else f"{maximum}" + (")" if open_max else "]")
    expected = "a number" + (f" in {low or '(-inf, '}{high or 'inf)'}" if low or high else "")
    if not _is_number(value):
        raise ArgumentTypeError(_message(layer, arg, expected, value))
    if value != value or (minimum is not None and (value < minimum or open_min and value == minimum)) \
            or (maximum is not None and (value > maximum or open_max and value == maximum)):
        raise ValueError(_message(layer, arg, expected, value))
    return float(value)


def fraction(layer: str, arg: str, value, *, include_one: bool = True) -> float:
    """A rate in [0, 1] (or [0, 1) without `include_one`), as a float."""
    return number(layer, arg, value, minimum=0, maximum=1, open_max=not include_one)


def _int_at_least(layer, arg, value, low, expected) -> int:
    if not _is_int(value):
        raise ArgumentTypeError(_message(layer, arg, expected, value))
    if value < low:
        raise ValueError(_message(layer, arg, expected, value))
    return int(value)


def positive_int(layer: str, arg: str, value) -> int:
    """`value` as an int >= 1 (bools refused)."""
    return _int_at_least(layer, arg, value, 1, "a positive int")


def non_negative_int(layer: str, arg: str, value) -> int:
    """`value` as an int >= 0 (bools refused)."""
    return _int_at_least(layer, arg, value, 0, "a non-negative int")


def int_or_ints(layer: str, arg: str, value) -> tuple:
    """`value` (an int or a non-empty list / tuple of ints) as a tuple of ints."""
    values = (value,) if _is_int(value) else value
    if not isinstance(values, (list, tuple)) or not values or not all(map(_is_int, values)):
        raise ArgumentTypeError(_message(layer, arg, "an int or a non-empty list of ints", value))
    return tuple(int(v) for v in values)


def one_of(layer: str, arg: str, value, choices) -> object:
    """`value` if it is one of `choices`."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(_message(layer, arg, "one of " + ", ".join(map(repr, choices)), value))
    return value


def layer_name(layer: str, value):
    """A layer name: None, or a non-empty string without '/' (a key in a Model's params)."""
    if value is not None and (not isinstance(value, str) or not value or "/" in value):
        raise ValueError(_message(layer, "name", "a non-empty string without '/'", value))
    return value


def refuse_unless_default(layer: str, arg: str, value, default, reason: str) -> None:
    """A ValueError for a Keras argument given other than its `default`, with the reason."""
    if value is default or (not hasattr(value, "shape") and value == default):
        return
    raise ValueError(f"{layer}: {arg}={value!r} is not supported ({reason}); leave it at "
                     f"{default!r}")


def refuse_lora(layer: str, lora_rank, lora_alpha, quantization_config) -> None:
    """Refuse Keras' LoRA / quantization arguments away from their default None."""
    reason = "LoRA and quantization are not implemented; fine-tune with jl.freeze"
    refuse_unless_default(layer, "lora_rank", lora_rank, None, reason)
    refuse_unless_default(layer, "lora_alpha", lora_alpha, None, reason)
    refuse_unless_default(layer, "quantization_config", quantization_config, None, reason)


# --------------------------------------------------------------------------- base arguments


def _float32_policy(dtype) -> bool:
    """True for Keras' default dtype policy: None, "float32", float32, a float32 DTypePolicy."""
    if dtype is None:
        return True
    text = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    return text == "float32"


def _base_arguments(kind: str, trainable, dtype, autocast) -> None:
    """Check Keras' base-layer keywords that a pure function cannot honour but at defaults."""
    if not boolean(kind, "trainable", trainable):
        raise ValueError(
            f"{kind}: trainable=False is not a layer property here (a layer is a pair of pure "
            f"functions and does not own its weights): freeze its params in the optimizer with "
            f"jl.freeze / jl.trainable_mask, and wrap it in jl.inference to fix its statistics")
    if not _float32_policy(dtype):
        raise ValueError(
            f"{kind}: dtype must be None or 'float32' (Keras' default policy), received "
            f"{dtype!r}: params are created in float32 and every layer computes in its "
            f"input's dtype, so feed bfloat16 / float16 inputs (params are cast to them) or "
            f"cast the params pytree yourself")
    boolean(kind, "autocast", autocast)   # with float32 params Keras' autocast changes nothing


_BASE_DOCS = {
    "name": "a unique name, the layer's key in a functional Model's params, or None.",
    "activity_regularizer": "a regularizer of the output, or None; makes the layer stateful.",
    "trainable": "True only (freeze params in the optimizer: `jl.freeze`).",
    "dtype": "None or 'float32' only (layers compute in their input's dtype).",
    "autocast": "a bool, accepted (no effect with float32 params).",
}


def _with_base_docs(doc: str, names) -> str:
    """`doc` with one ``Args:`` entry per base keyword in `names`, at the end of its ``Args:``
    section (a new section before ``Input shape`` when it has none)."""
    lines = (doc or "").rstrip().split("\n")
    starts = [i for i, line in enumerate(lines) if line.strip() == "Args:"]
    if starts:
        indent = lines[starts[0]][:len(lines[starts[0]]) - len(lines[starts[0]].lstrip())]
        end = next((i for i in range(starts[0] + 1, len(lines)) if not lines[i].strip()),
                   len(lines))
        head, tail = lines[:end], lines[end:]
    else:
        at = next((i for i, line in enumerate(lines) if line.strip().startswith("Input shape")),
                  len(lines))
        indent = "    "
        head, tail = lines[:at] + [indent + "Args:"], [""] + lines[at:]
    entries = [f"{indent}  {n}: {_BASE_DOCS[n]}" for n in names]
    return "\n".join(head + entries + tail) + "\n"


_BASE_DEFAULTS = {"name": None, "activity_regularizer": None, "trainable": True,
                  "dtype": None, "autocast": True}


def keras_layer(constructor):
    """Add Keras' base-layer keywords to a layer constructor (visible in its signature).

    ``name`` sets the returned Layer's `label`; ``activity_regularizer`` wraps it with
    `jaxlayers.regularizers.with_activity_regularizer` (unless the constructor takes it
    itself); ``trainable``, ``dtype`` and ``autocast`` are accepted at Keras' defaults and
    refused otherwise with the reason. Arguments the constructor declares itself are left
    to it.
    """
    kind = constructor.__name__
    signature = inspect.signature(constructor)
    own = signature.parameters
    added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
             for n, d in _BASE_DEFAULTS.items() if n not in own]
    params = [p for p in own.values() if p.kind is not p.VAR_KEYWORD]
    params += added + [p for p in own.values() if p.kind is p.VAR_KEYWORD]

    @functools.wraps(constructor)
    def build(*args, **kwargs):
        base = {n: kwargs.pop(n, _BASE_DEFAULTS[n]) for n in _BASE_DEFAULTS if n not in own}
        label = layer_name(kind, base.get("name"))
        _base_arguments(kind, base.get("trainable", True), base.get("dtype"),
                        base.get("autocast", True))
        layer = constructor(*args, **kwargs)
        if base.get("activity_regularizer") is not None:
            try:
                layer = with_activity_regularizer(layer, base["activity_regularizer"])
            except ValueError as e:
                raise ValueError(f"{kind}: activity_regularizer: {e}") from None
        return dataclasses.replace(layer, label=label) if label else layer

    build.__signature__ = signature.replace(parameters=params)
    build.__doc__ = _with_base_docs(constructor.__doc__, [p.name for p in added])
    return build
