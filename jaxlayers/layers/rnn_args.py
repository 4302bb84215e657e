"""The constructor arguments of the recurrent family: the checks the built-in cells and the
RNN layers share (errors name the cell or layer and the argument) and the ``Args:`` entries
their docstrings share (`shared_args` fills them in)."""
from __future__ import annotations

from .args import boolean, fraction, one_of, positive_int, refuse_unless_default
from .core import seed_arg

# The first ``Args:`` entries of each built-in cell, shared with the layer built on it.
_UNITS = """\
      units: the size of the state{} and of the output, a positive int."""
_GATES = """\
      recurrent_activation: the gates' activation, sigmoid by default."""
_BIAS = """\
      use_bias: whether the cell has a ``bias``."""
CELL_HEADS = {
    "SimpleRNN": "\n".join([_UNITS.format(""), """\
      activation: the activation (name or function), tanh by default.""", _BIAS]),
    "LSTM": "\n".join([_UNITS.format("s (h, c)"), """\
      activation: the cell and output activation (name or function), tanh by default.""",
                       _GATES, _BIAS, """\
      unit_forget_bias: initialise the f block of the bias to 1 (Jozefowicz et al.)."""]),
    "GRU": "\n".join([_UNITS.format(""), """\
      activation: the candidate's activation (name or function), tanh by default.""",
                      _GATES, _BIAS, """\
      reset_after: apply the reset gate after the recurrent matmul (True, Keras' default
        and cuDNN's form) or before it (False)."""]),
}

# ``Args:`` entries of every built-in cell and of the layers built on one.
CELL_ARGS = """\
      kernel_initializer, recurrent_initializer, bias_initializer: the initializers of
        ``kernel``, ``recurrent_kernel`` and ``bias`` (names or callables).
      kernel_regularizer, recurrent_regularizer, bias_regularizer: weight penalties,
        summed into the RNN's ``layer.penalty(params)``.
      kernel_constraint, recurrent_constraint, bias_constraint: projections applied by
        the RNN's ``layer.constrain(params)``.
      dropout: the fraction of the inputs dropped in training, in [0, 1) (then
        ``train=True`` needs an ``rng``).
      recurrent_dropout: the fraction of the recurrent state dropped in training, in
        [0, 1).
      seed: None or a non-negative int, accepted for Keras; randomness comes from the
        ``rng`` key."""

# ``Args:`` entries of `RNN` and every layer built on it.
LAYER_ARGS = """\
      return_sequences: return the output of every step, not only the last.
      return_state: also return the final states: ``(output, *states)``.
      go_backwards: process the sequence in reverse; a returned sequence is in
        processing (reversed) order, as in Keras.
      stateful: keep the last states between calls in the layer's state (the layer is
        stateful: ``init -> (shape, params, state)``, ``apply(params, state, x) -> (y,
        state)``, in training and inference alike, as Keras); needs a fixed batch size.
        `reset_states(state)` zeroes them.
      unroll: unroll the loop (`lax.scan` with ``unroll=True``).
      zero_output_for_mask: masked steps output zeros instead of the previous output.
      activity_regularizer: a regularizer of the output (all returned arrays); makes the
        layer stateful."""

# The performance hints of LSTM and GRU (and of their cells: `implementation`).
IMPLEMENTATION_ARG = """\
      implementation: 1 or 2, Keras' performance hint; the numbers are the same (with 1
        and `dropout` each gate gets its own input dropout mask, as in Keras)."""
CUDNN_ARG = """\
      use_cudnn: "auto", True or False, accepted: XLA compiles the loop for every
        backend, so the numbers do not depend on it."""


def shared_args(*fragments):
    """A decorator putting `fragments` (in order) in place of the line ``{shared}`` of a
    constructor's docstring."""
    def put(constructor):
        doc = constructor.__doc__
        constructor.__doc__ = doc.replace("      {shared}", "\n".join(fragments))
        return constructor
    return put


def lookup(module, what, value, name):
    """``module.get(value)`` (an activation, an initializer), its errors naming `name`."""
    try:
        return module.get(value)
    except ValueError as e:
        raise ValueError(f"{name}: {what}: {e}") from None


def check_units(kind, units) -> int:
    return positive_int(kind, "units", units)


def check_implementation(kind, implementation) -> int:
    return one_of(kind, "implementation", implementation, (1, 2))


def check_cudnn(kind, use_cudnn):
    return one_of(kind, "use_cudnn", use_cudnn, ("auto", True, False))


def check_cell_arguments(kind, units, use_bias, dropout, recurrent_dropout, seed,
                         implementation=2, **flags) -> tuple:
    """``(units, use_bias, dropout, recurrent_dropout)`` of a built-in cell (or of the RNN
    layer `kind` built on one), checked and normalised; `seed`, `implementation` and the
    boolean `flags` (unit_forget_bias, reset_after) are checked too."""
    seed_arg(kind, seed)
    check_implementation(kind, implementation)
    for arg, value in flags.items():
        boolean(kind, arg, value)
    return (check_units(kind, units), boolean(kind, "use_bias", use_bias),
            fraction(kind, "dropout", dropout, include_one=False),
            fraction(kind, "recurrent_dropout", recurrent_dropout, include_one=False))


def refuse_cell_activity_regularizer(kind, activity_regularizer) -> None:
    refuse_unless_default(kind, "activity_regularizer", activity_regularizer, None,
                          "a cell runs inside the RNN's loop; give it to the RNN layer, or "
                          "regularize the sequence with ActivityRegularization")
