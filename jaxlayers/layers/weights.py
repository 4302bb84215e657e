"""Weight hooks of leaf layers: Keras' regularizers and constraints as (penalty, constrain)."""
from __future__ import annotations

from .. import constraints, regularizers
from ..core import ShapeError
from ..core.layer import _no_constraint, _zero_penalty

__all__ = ["weight_hooks"]


def weight_hooks(layer_name: str, **rules):
    """``(penalty, constrain)`` for a leaf layer's params dict.

    Each keyword is a param name mapped to ``(regularizer, constraint)``, either of
    which may be None, a Keras name (``"l2"``, ``"max_norm"``) or a callable. Params
    absent from the dict (e.g. ``bias`` with ``use_bias=False``) are skipped.
    Returns the zero penalty / identity when nothing is set.
    """
    regs, cons = {}, {}
    for param, (reg, con) in rules.items():
        try:
            if reg is not None:
                regs[param] = regularizers.get(reg)
            if con is not None:
                cons[param] = constraints.get(con)
        except ValueError as e:
            raise ShapeError(f"{param}: {e}", layer_name) from None

    penalty = _zero_penalty
    if regs:
        def penalty(params):
            return sum(fn(params[k]) for k, fn in regs.items() if k in params)

    constrain = _no_constraint
    if cons:
        def constrain(params):
            return {k: cons[k](v) if k in cons else v for k, v in params.items()}

    return penalty, constrain
