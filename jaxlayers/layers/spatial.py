"""Shared spatial arithmetic for the conv, pooling and reshaping families (private).

Two ideas live here, once for every rank:

- the layout: where the batch, spatial and channel axes sit for ``"channels_last"``
  (``(batch, *spatial, channels)``) and ``"channels_first"`` (``(batch, channels, *spatial)``),
  and the matching ``lax`` dimension-number strings;
- the window arithmetic: the explicit ``(lo, hi)`` padding and the output size of a
  sliding window for ``"valid"``, ``"same"`` and ``"causal"`` (Keras' rules, KERAS_NOTES.md).
"""
from __future__ import annotations

import dataclasses
import numbers

from ..core import Shape, ShapeError, as_shape, is_free
from .checks import check_rank

FORMATS = ("channels_last", "channels_first")


# --------------------------------------------------------------------------- arguments


def data_format(kind: str, value) -> str:
    """Keras' `data_format` (None means ``"channels_last"``), or a ValueError naming `kind`."""
    value = "channels_last" if value is None else str(value).lower()
    if value not in FORMATS:
        raise ValueError(f"{kind}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {value!r}")
    return value


def int_tuple(kind: str, value, n: int, arg: str, allow_zero: bool = False) -> tuple:
    """`value` (an int or `n` ints) as a tuple of `n` ints, each > 0 (>= 0 with `allow_zero`)."""
    values = (value,) * n if _is_int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    low = 0 if allow_zero else 1
    if (values is None or len(values) != n or any(
            not _is_int(v) or v < low for v in values)):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{kind}: {arg} must be a {what} int or a tuple of {n} {what} ints, "
                         f"got {value!r}")
    return tuple(int(v) for v in values)


def _is_int(v) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def padding_mode(kind: str, value, allowed=("valid", "same")) -> str:
    """A lower-cased padding mode from `allowed`, or a ValueError naming `kind`."""
    mode = value.lower() if isinstance(value, str) else value
    if mode not in allowed:
        raise ValueError(f"{kind}: padding must be one of {', '.join(map(repr, allowed))}, "
                         f"got {value!r}")
    return mode


def pairs(kind: str, value, n: int, arg: str) -> tuple:
    """Keras' per-dimension ``(before, after)`` amounts (ZeroPadding / Cropping).

    An int applies to both sides of every dim; a tuple of `n` ints gives each dim a
    symmetric amount; a tuple of `n` pairs gives both sides explicitly. For ``n == 1``
    an int or one pair ``(before, after)``.
    """
    def bad():
        form = ("an int or a pair (before, after)" if n == 1 else
                f"an int, a tuple of {n} ints or a tuple of {n} (before, after) pairs")
        return ValueError(f"{kind}: {arg} must be {form} of non-negative ints, got {value!r}")

    def ok(v):
        return _is_int(v) and v >= 0

    if ok(value):
        return ((int(value), int(value)),) * n
    try:
        items = tuple(value)
    except TypeError:
        raise bad() from None
    if n == 1:
        if len(items) == 2 and all(map(ok, items)):
            return (tuple(int(v) for v in items),)
        raise bad()
    if len(items) != n:
        raise bad()
    out = []
    for item in items:
        if ok(item):
            out.append((int(item), int(item)))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(map(ok, item)):
            out.append((int(item[0]), int(item[1])))
        else:
            raise bad()
    return tuple(out)


# --------------------------------------------------------------------------- layout


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the axes of a rank-`rank` spatial input sit for `data_format`."""

    rank: int
    data_format: str = "channels_last"

    @property
    def first(self) -> bool:
        return self.data_format == "channels_first"

    @property
    def channel_axis(self) -> int:
        return 1 if self.first else self.rank + 1

    @property
    def spatial_axes(self) -> tuple:
        start = 2 if self.first else 1
        return tuple(range(start, start + self.rank))

    def split(self, shape) -> tuple:
        """``(batch, spatial_dims, channels)`` of a full input shape."""
        shape = tuple(shape)
        return shape[0], tuple(shape[a] for a in self.spatial_axes), shape[self.channel_axis]

    def join(self, batch, spatial, channels) -> Shape:
        """The full shape for ``(batch, spatial_dims, channels)`` in this layout."""
        spatial = tuple(spatial)
        dims = (batch, channels) + spatial if self.first else (batch,) + spatial + (channels,)
        return Shape(dims)

    def window(self, sizes, fill=1) -> tuple:
        """A full-rank tuple with `sizes` on the spatial axes and `fill` elsewhere."""
        full = [fill] * (self.rank + 2)
        for a, s in zip(self.spatial_axes, sizes):
            full[a] = s
        return tuple(full)

    def conv_dims(self, kernel: str = "IO") -> tuple:
        """``lax.conv_general_dilated`` dimension numbers: (lhs, rhs, out) spec strings.

        The kernel is always stored spatial-first (Keras' layout), its last two axes
        named by `kernel` (``"IO"`` for Conv, ``"OI"`` for the transposed conv).
        """
        sp = "DHW"[3 - self.rank:] if self.rank <= 3 else "".join(
            chr(ord("a") + i) for i in range(self.rank))
        data = "NC" + sp if self.first else "N" + sp + "C"
        return data, sp + kernel, data

    def check(self, name: str, input_shape, need_channels: bool = True) -> Shape:
        """The input shape as a `Shape` of rank ``rank + 2``, or a ShapeError naming `name`."""
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=self.rank + 2)
        if need_channels and is_free(self.split(shape)[2]):
            raise ShapeError(f"the channel axis ({self.data_format}) of the input must be "
                             f"known, received {shape!r}", name)
        return shape

    def check_array(self, name: str, x, channels=None) -> tuple:
        """The spatial dims of array `x`, after checking its rank (and channels) at apply."""
        if x.ndim != self.rank + 2:
            raise ShapeError(f"expected a rank-{self.rank + 2} input ({self.describe()}), "
                             f"received shape {Shape(x.shape)!r}", name)
        _, spatial, c = self.split(x.shape)
        if channels is not None and c != channels:
            raise ShapeError(f"expected {channels} input channels ({self.describe()}), "
                             f"received shape {Shape(x.shape)!r}", name)
        return spatial

    def describe(self) -> str:
        sp = ", ".join(f"d{i + 1}" for i in range(self.rank)) if self.rank > 1 else "steps"
        return f"batch, channels, {sp}" if self.first else f"batch, {sp}, channels"


# --------------------------------------------------------------------------- windows


def window_padding(n: int, k: int, s: int = 1, d: int = 1, mode: str = "valid") -> tuple:
    """``(lo, hi)`` padding of one spatial dim of size `n` for a window `k`, stride `s`,
    dilation `d`: none for "valid"; ``(k_eff - 1, 0)`` for "causal"; for "same" the total
    ``max((ceil(n / s) - 1) * s + k_eff - n, 0)`` split with the odd element after."""
    k_eff = (k - 1) * d + 1
    if mode == "valid":
        return 0, 0
    if mode == "causal":
        return k_eff - 1, 0
    total = max((-(-n // s) - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def window_output(n, k: int, s: int = 1, d: int = 1, mode: str = "valid"):
    """The output size of a sliding window over a dim of size `n` (None when `n` is free);
    may be <= 0, which `window_outputs` turns into a ShapeError."""
    if is_free(n):
        return None
    lo, hi = window_padding(n, k, s, d, mode)
    return (n + lo + hi - ((k - 1) * d + 1)) // s + 1


def window_outputs(name: str, shape, spatial, kernel, strides, dilation, mode,
                   arg: str = "kernel_size") -> tuple:
    """`window_output` per spatial dim; a ShapeError naming `name`, `shape` and `arg`
    when one is not positive (e.g. a kernel larger than a "valid" input)."""
    out = tuple(window_output(n, k, s, d, mode)
                for n, k, s, d in zip(spatial, kernel, strides, dilation))
    for n, k, d, o in zip(spatial, kernel, dilation, out):
        if o is not None and o < 1:
            eff = "" if d == 1 else f" (dilated to {(k - 1) * d + 1})"
            raise ShapeError(
                f"{arg}={tuple(kernel)!r}{eff} does not fit input shape {Shape(shape)!r} with "
                f"padding={mode!r}: a spatial dim of size {n} would give output size {o}", name)
    return out


def all_window_padding(spatial, kernel, strides, dilation, mode) -> list:
    """`window_padding` for every spatial dim, as the list ``lax`` takes."""
    return [window_padding(n, k, s, d, mode)
            for n, k, s, d in zip(spatial, kernel, strides, dilation)]
