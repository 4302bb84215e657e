"""Static shapes (`Shape`, free dims as None) and `ShapeError`, the error that names a layer."""
from __future__ import annotations

import contextlib

import jax

__all__ = ["Shape", "ShapeError", "as_shape", "dummy_shape", "is_free", "located",
           "shape_matches"]


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
