"""What layer constructors share in their docstrings: the shared parts, `doc` (the decorator
that puts them in place) and `per_rank` (a family's public per-rank constructors made from its
one N-D implementation and one docstring template).

A constructor's docstring (or a template that a family's per-rank constructors share) names a
part as ``{key}``; it is replaced when the module is imported, so ``Conv2D.__doc__`` and
``help(jl.Conv2D)`` show the whole Keras-style docstring. A part of several lines is indented
like the line that names it. A ``{key}`` that nothing fills fails at import, naming the
constructor. ``{shared_args}`` stands for the entries (`ARGS`) of the constructor's arguments
that its docstring does not document itself, in the order of its signature.
"""
from __future__ import annotations

import inspect
import re
import textwrap

from .args import keras_layer

__all__ = ["ARGS", "PARTS", "doc", "fill", "per_rank", "rank_parts", "shared_args",
           "weight_args"]

_KEY = re.compile(r"\{(\w+)\}")

# The ``Args:`` entries of arguments that constructors of several families share, by name.
ARGS = {
    "data_format": '"channels_last" (None) or "channels_first".',
    "seed": "accepted for Keras compatibility (an int) and unused: keys come from `rng`.",
    "interpolation": '"bilinear" or "nearest".',
    "fill_mode": '"reflect", "wrap", "constant" or "nearest" (points outside the image).',
    "fill_value": 'the value outside the image with fill_mode "constant".',
    "value_range": "the images' ``(low, high)``; outputs are clipped to it.",
}

# Parts any docstring may name: each shared argument's entry (``{seed}``), and shape lines.
PARTS = {**{name: f"{name}: {text}" for name, text in ARGS.items()},
         "same_images": "Input shape: ``(batch, h, w, channels)`` (or channels first). Output "
                        "shape: the same."}

_SPATIAL = {1: "steps", 2: "rows, cols", 3: "d1, d2, d3"}


def rank_parts(rank: int) -> dict:
    """The parts that depend on the spatial rank: ``{n}`` (``2`` as in "2-D"), ``{spatial}``
    (``rows, cols``), ``{new_spatial}`` (``new_rows, new_cols``), ``{ones}`` (``1, 1``)."""
    names = _SPATIAL[rank]
    return {"n": str(rank), "spatial": names, "ones": ", ".join(["1"] * rank),
            "new_spatial": ", ".join("new_" + d for d in names.split(", "))}


def weight_args(*weights: str, bias: str = "(filters,)") -> str:
    """The ``Args:`` entries of Keras' weight arguments for a layer with the given weights
    (``"kernel"``; ``"depthwise", "pointwise"``) and a bias of shape `bias`: activation,
    use_bias, then the initializers, regularizers, activity regularizer and constraints."""
    def entry(text):
        return textwrap.fill(text, 88, subsequent_indent="  ", break_on_hyphens=False)

    def names(suffix):
        return ", ".join(f"{w}_{suffix}" for w in weights + ("bias",))
    return "\n".join(map(entry, [
        "activation: name or function applied to the output; None for linear.",
        f"use_bias: whether to add a ``bias`` {bias}.",
        f"{names('initializer')}: initializer names or functions.",
        f"{names('regularizer')}: weight penalties (``layer.penalty``).",
        "activity_regularizer: a penalty on the output; makes the layer stateful.",
        f"{names('constraint')}: projections applied by ``layer.constrain``."]))


def fill(template: str, where: str = "a docstring", **values) -> str:
    """`template` with each ``{key}`` replaced by ``values[key]`` (or the shared `PARTS`); the
    lines after the first of a value are indented like the line naming it."""
    parts = {**PARTS, **values}
    lines = []
    for line in template.split("\n"):
        indent = line[:len(line) - len(line.lstrip())]

        def put(match):
            key = match.group(1)
            if key not in parts:
                raise KeyError(f"{where}: the docstring names {{{key}}}, which no part fills")
            return str(parts[key]).replace("\n", "\n" + indent)
        lines.append(_KEY.sub(put, line))
    return "\n".join(lines)


def shared_args(constructor, text: str) -> str:
    """The ``Args:`` entries (from `ARGS`) of `constructor`'s arguments that `text` does not
    document itself, in the order of its signature."""
    def documented(name):
        return ("{" + name + "}" in text
                or re.search(rf"^\s+[\w, ]*\b{name}\b[\w, ]*:", text, re.M) is not None)
    return "\n".join(PARTS[name] for name in inspect.signature(constructor).parameters
                     if name in ARGS and not documented(name))


def doc(template: str | None = None, *, rank: int | None = None, **values):
    """A decorator giving a constructor its docstring: `template` (default: its own docstring)
    filled by `fill` with `values`, the `rank_parts` of `rank`, ``{kind}`` its name and
    ``{shared_args}`` the `ARGS` entries of its arguments the docstring does not document."""
    def put(constructor):
        text = constructor.__doc__ if template is None else template
        known = {"kind": constructor.__name__, **(rank_parts(rank) if rank else {}),
                 "shared_args": shared_args(constructor, text), **values}
        constructor.__doc__ = fill(text, constructor.__name__, **known)
        return constructor
    return put


def per_rank(family, kind: str, rank: int, template: str, *, ranked=(), **values):
    """The public constructor `kind` of the rank-`rank` member of a family of layers:
    ``kind(*args, **kwargs)`` is ``family(kind, rank, *args, **kwargs)``, wrapped by
    `keras_layer`.

    Its signature is `family`'s without ``kind`` and ``rank``, the int defaults of the
    arguments named in `ranked` written as `rank`-tuples, as Keras writes them (``strides=(1,
    1)`` for a 2-D layer); its docstring is `template` filled as by `doc`.
    """
    own = list(inspect.signature(family).parameters.values())[2:]
    signature = inspect.Signature(
        [p.replace(default=(p.default,) * rank) if p.name in ranked and rank > 1 else p
         for p in own], return_annotation=inspect.signature(family).return_annotation)

    def constructor(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{kind}: {e}") from None
        bound.apply_defaults()
        return family(kind, rank, **bound.arguments)

    constructor.__name__ = constructor.__qualname__ = kind
    constructor.__module__ = family.__module__
    constructor.__signature__ = signature
    return keras_layer(doc(template, rank=rank, **values)(constructor))
