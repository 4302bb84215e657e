"""Registry entries: jaxlayers.stax (stax-compatible layers) with `None` batch shapes.

Not here: the bfloat16 check (stax does not cast params to the input's dtype), `Dropout`
(stax's needs an rng in eval mode), `BatchNorm` alone (its params are the same for every
key, so stacked members cannot differ; it runs inside `stax-serial-conv-bn`).
"""
import jax.numpy as jnp

from jaxlayers import stax
from tests.cases import Case


def S(id, make, shape, **kw):
    return Case(f"stax-{id}", make, shape, bf16=False, **kw)


CASES = [
    S("Dense", lambda: stax.Dense(4), (None, 5)),
    S("ConvTranspose", lambda: stax.ConvTranspose(2, (3, 3), (2, 2), "SAME"), (None, 3, 3, 2)),
    S("serial-conv-bn", lambda: stax.serial(stax.Conv(3, (3, 3), (2, 1), "SAME"),
                                            stax.BatchNorm(), stax.Relu), (None, 5, 4, 2),
      batch=4),
    S("MaxPool", lambda: stax.MaxPool((2, 2), (1, 2), "SAME"), (None, 4, 5, 2)),
    S("AvgPool-NCHW", lambda: stax.AvgPool((2, 2), padding="SAME", spec="NCHW"),
      (None, 2, 3, 3)),
    S("SumPool", lambda: stax.SumPool((2,)), (None, 5, 2)),
    S("Flatten", lambda: stax.Flatten, (None, 2, 3, 2)),
    S("elementwise", lambda: stax.serial(stax.Dense(4), stax.Tanh, stax.Softplus, stax.Elu,
                                         stax.Selu, stax.Gelu, stax.Sigmoid, stax.LeakyRelu,
                                         stax.Exp, stax.LogSoftmax, stax.Softmax,
                                         stax.elementwise(jnp.sin)), (None, 3)),
    S("fan-out-parallel-sum", lambda: stax.serial(
        stax.FanOut(2), stax.parallel(stax.Dense(3), stax.serial(stax.Dense(3), stax.Relu)),
        stax.FanInSum), (None, 4)),
    S("fan-in-concat", lambda: stax.serial(
        stax.FanOut(3), stax.parallel(stax.Dense(2), stax.Identity, stax.Dense(1)),
        stax.FanInConcat()), (None, 3)),
    S("shape_dependent", lambda: stax.serial(stax.Dense(3), stax.shape_dependent(
        lambda s: stax.Dense(s[-1] * 2))), (None, 2)),
]
