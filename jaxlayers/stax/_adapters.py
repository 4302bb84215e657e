"""The adapters behind `jaxlayers.stax`: a native layer seen as a stax layer (stax's params
layout, its ``-1`` free dims, its name in errors), and stax's initializer and argument rules."""
import contextlib
import numbers as _numbers

from ..core import (Layer as _Layer, MaskRule as _MaskRule, Shape as _Shape,
                    ShapeError as _ShapeError)
from ..layers.checks import check_rank as _check_rank


def _map_dims(shape, fn):
    """`shape` (one shape, or nested lists/tuples of them) with `fn` applied to every dim;
    one shape comes back as a `Shape`, containers keep their type (stax's lists)."""
    if isinstance(shape, (tuple, list)) and all(
            d is None or isinstance(d, _numbers.Integral) for d in shape):
        return _Shape(fn(d) for d in shape)
    if isinstance(shape, (tuple, list)):
        return type(shape)(_map_dims(s, fn) for s in shape)
    return shape


def _has_minus_one(shape) -> bool:
    if isinstance(shape, (tuple, list)):
        return any(_has_minus_one(s) for s in shape)
    return isinstance(shape, _numbers.Integral) and shape == -1


def _restore(out_shape, input_shape):
    """`out_shape` with its free dims written ``-1`` when `input_shape` wrote them so
    (the native layers return ``None``; stax keeps the ``-1`` it was given)."""
    if not _has_minus_one(input_shape):
        return out_shape
    return _map_dims(out_shape, lambda d: -1 if d is None else d)


@contextlib.contextmanager
def _named(name):
    """Name the stax layer (not the native one inside it) in any ShapeError."""
    try:
        yield
    except _ShapeError as e:
        raise _ShapeError(e.message, name) from None


def _checked(name, input_shape, **rank):
    """`input_shape` as a `Shape` as given (``-1`` kept, for messages), its rank checked."""
    given = _map_dims(input_shape, lambda d: d if d is None else int(d))
    _check_rank(name, given, **rank)
    return given


def _same(params):
    return params


def _leaf(native, name, to_stax=_same, to_native=_same, listed=False):
    """A stax layer: the stateless `native` layer renamed `name`, its params given in
    stax's layout (`to_stax`, and `to_native` back at apply), free dims as given.

    With `listed`, output shapes and outputs are lists (stax's fan-out)."""
    as_list = list if listed else _same

    def init_fun(rng, input_shape):
        with _named(name):
            out_shape, params = native.init(rng, input_shape)
        return as_list(_restore(out_shape, input_shape)), to_stax(params)

    def apply_fun(params, inputs, *, rng=None, **kwargs):   # stax layers ignore other keywords
        with _named(name):
            return as_list(native.apply(to_native(params), inputs, rng=rng))

    # stax pairs take no masks: a native rule that passes or drops one is kept
    return _Layer(init_fun, apply_fun, name=name, masking=_MaskRule(
        out=native.masking.out if native.masking.out != "self" else "drop"))


def _stax_init(init):
    """A stax initializer as the native layers call it: stax calls ``init(key, shape)``
    (no dtype: the initializer's own default, float64 under x64, as in stax)."""
    return lambda key, shape, dtype=None: init(key, shape)


def _positive(kind, arg, value):
    if not isinstance(value, _numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{kind}: {arg} must be a positive int, got {value!r}")
    return int(value)


