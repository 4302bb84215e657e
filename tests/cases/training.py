"""Registry entries: layer wrappers from jaxlayers.training (inference, take)."""
import jax

import jaxlayers as jl
from tests.cases import Case


def _taken():
    model = jl.serial(jl.Dense(4), jl.relu, jl.Dense(3), jl.Dense(2))
    return jl.take(model, model.init(jax.random.key(0), (None, 5))[1], 2)[0]


CASES = [
    Case("inference-dropout", lambda: jl.inference(jl.serial(jl.Dense(4), jl.Dropout(0.5))),
         (None, 5)),
    Case("inference-stateful", lambda: jl.inference(jl.Dense(3, activity_regularizer="l2")),
         (None, 5)),
    Case("take-serial", _taken, (None, 5)),
]
