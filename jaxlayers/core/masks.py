"""`MaskRule`: what a layer does to a time-step mask (docs/design.md, section 3)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

__all__ = ["DROP", "MaskRule", "PASS", "THREAD", "consumes_mask", "makes_mask"]


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
