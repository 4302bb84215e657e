"""The layer registry: every public layer with an example input, for the cross-cutting tests.

Each module in this package defines ``CASES``, a list of `Case`; `all_cases()` gathers them.
Add a module per layer family (``tests/cases/conv.py`` ...): nothing else needs editing.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable


@dataclasses.dataclass
class Case:
    """One registry entry.

    Attributes:
      id: the test id, e.g. ``"Dense-3d"``.
      make: ``() -> Layer``; called once per test so closures are fresh.
      input_shape: batch-first shape (None for free dims) or a tuple of shapes.
      batch: the size given to free dims when making concrete inputs.
      make_input: ``(key, concrete_shape) -> array``; default standard normal float32.
      grad: run `check_grads` (off for integer inputs or piecewise-constant layers).
      grad_wrt_input: include the input among the differentiated arguments.
      bf16: run the bfloat16 check; bf16_tol is its atol relative to max |y|.
      train: also run with ``train=True`` and an rng (layers with randomness).
      carries_state: the state advances in inference too and the batch size is fixed
        (stateful RNNs, as Keras' ``stateful=True``).
    """

    id: str
    make: Callable
    input_shape: Any
    batch: int = 3
    make_input: Callable | None = None
    grad: bool = True
    grad_wrt_input: bool = True
    bf16: bool = True
    bf16_tol: float = 5e-2
    train: bool = False
    carries_state: bool = False


def all_cases() -> list[Case]:
    """Every Case of every module in this package, in module order."""
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(getattr(module, "CASES", []))
    ids = [c.id for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, f"duplicate registry ids: {dup}"
    return cases
