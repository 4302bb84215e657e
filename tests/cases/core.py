"""Registry entries: core layers and combinators."""
import jax
import jax.numpy as jnp

import jaxlayers as jl
from tests.cases import Case


def _stax_pair(units):
    """A raw stax ``(init, apply)`` pair (plain tuples, -1 for the batch), as jax's stax makes."""
    def init(key, input_shape):
        w = jax.random.normal(key, (input_shape[-1], units)) * 0.5
        return input_shape[:-1] + (units,), (w,)

    def apply(params, x, **kwargs):
        return x @ params[0]

    return init, apply

CASES = [
    Case("InputLayer", lambda: jl.InputLayer((5,)), (None, 5)),
    Case("Dense-2d", lambda: jl.Dense(4), (None, 5)),
    Case("Dense-3d-tanh", lambda: jl.Dense(4, activation="tanh"), (None, 3, 5)),
    Case("Dense-nobias", lambda: jl.Dense(4, use_bias=False), (None, 5)),
    Case("Activation-name", lambda: jl.Activation("gelu"), (None, 6)),
    Case("Activation-fn", lambda: jl.Activation(jnp.tanh), (None, 2, 3)),
    Case("Identity", lambda: jl.Identity(), (None, 4)),
    Case("Flatten", lambda: jl.Flatten(), (None, 2, 3, 4)),
    Case("Flatten-channels_first", lambda: jl.Flatten("channels_first"), (None, 2, 3, 4)),
    Case("Reshape", lambda: jl.Reshape((3, -1)), (None, 2, 6)),
    Case("Permute", lambda: jl.Permute((2, 1)), (None, 3, 5)),
    Case("RepeatVector", lambda: jl.RepeatVector(3), (None, 4)),
    Case("Lambda", lambda: jl.Lambda(lambda x: jnp.sin(x[:, :2])), (None, 5)),
    Case("Lambda-output_shape", lambda: jl.Lambda(lambda x: x * 2, output_shape=(5,)), (None, 5)),
    Case("Dropout", lambda: jl.Dropout(0.5), (None, 8), train=True),
    Case("Dropout-noise_shape", lambda: jl.Dropout(0.3, noise_shape=(None, 1, 4)), (None, 3, 4),
         train=True),
    Case("serial", lambda: jl.serial(jl.Dense(8), jl.relu, jl.Dense(3)), (None, 5)),
    Case("Sequential-list", lambda: jl.Sequential([jl.Dense(4), jl.relu, jl.Dense(2)],
                                                  name="encoder"), (None, 5)),
    Case("serial-list-residual", lambda: jl.serial([jl.Dense(5), jl.residual(jl.Dense(5))]),
         (None, 5)),
    Case("serial-free-time", lambda: jl.serial(jl.Dense(4), jl.tanh), (None, None, 5)),
    Case("serial-nested", lambda: jl.serial(jl.serial(jl.Dense(4), jl.elu), jl.Dense(2)),
         (None, 5)),
    Case("parallel", lambda: jl.parallel(jl.Dense(3), jl.Dense(2)), ((None, 4), (None, 5))),
    Case("branch-FanInConcat",
         lambda: jl.serial(jl.branch(jl.Dense(3), jl.Dense(2)), jl.FanInConcat(-1)), (None, 4)),
    Case("FanOut-FanInSum", lambda: jl.serial(jl.FanOut(2), jl.parallel(jl.Dense(3), jl.Dense(3)),
                                              jl.FanInSum()), (None, 4)),
    Case("residual", lambda: jl.residual(jl.Dense(6), jl.relu, jl.Dense(4)), (None, 4)),
    Case("as_layer-pair-and-function", lambda: jl.serial(jl.as_layer(_stax_pair(3)),
                                                         jl.as_layer(jnp.sin)), (None, 4)),
    Case("named", lambda: jl.named(jl.Dense(3), "head"), (None, 4)),
    Case("serial-dropout", lambda: jl.serial(jl.Dense(6), jl.Dropout(0.2), jl.Dense(2)),
         (None, 4), train=True),
]
