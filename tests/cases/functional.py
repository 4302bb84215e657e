"""Registry entries: merge layers (as fan-ins) and functional models."""
import jax
import jax.numpy as jnp

import jaxlayers as jl
from tests.cases import Case


# Weight shapes are mostly (4, 4): each new shape costs an XLA compile of the initializer.
def residual():
    inp = jl.Input((4,))
    h = jl.Dense(4)(jl.Dense(4, activation="relu")(inp))
    return jl.Model(inp, jl.Dense(4)(jl.Activation("relu")(jl.Add()([inp, h]))))


def inception():
    inp = jl.Input((4,))
    a = jl.Dense(4, activation="relu")(inp)
    b = jl.Dense(4, activation="tanh")(jl.Dense(4)(inp))
    c = jl.Average()([jl.Dense(4)(inp), jl.Dense(4)(inp)])
    return jl.Model(inp, jl.Concatenate()([a, b, c]))


def two_in_two_out():
    a, b = jl.Input((4,)), jl.Input((4,))
    h = jl.Dense(4, activation="tanh")(jl.Concatenate()([a, b]))
    return jl.Model([a, b], [jl.Dense(4)(h), jl.Multiply()([jl.Dense(4)(b), h])])


def siamese():
    shared = jl.Dense(4, activation="tanh")
    a, b = jl.Input((4,)), jl.Input((4,))
    return jl.Model([a, b], jl.Dot(-1, normalize=True)([shared(a), shared(b)]))


def nested():
    inp = jl.Input((4,))
    block = jl.Model(inp, jl.Add()([inp, jl.Dense(4)(inp)]), name="block")
    x = jl.Input((4,))
    h = jl.serial(block, jl.Dense(4), jl.elu)(block(x))
    return jl.Model(x, jl.Dense(4)(h))


def dropout():
    inp = jl.Input((4,))
    drop = jl.Dropout(0.3)
    return jl.Model(inp, jl.Subtract()([drop(jl.Dense(4)(inp)), drop(inp)]))


def stateful():
    inp = jl.Input((4,))
    h = jl.Dense(4, activity_regularizer="l2")(inp)
    return jl.Model(inp, jl.Maximum()([h, jl.Dense(4)(inp)]))


def ids(key, shape):
    """Integer indices in [0, 7) (0 = padding for mask_zero)."""
    return jax.random.randint(key, shape, 0, 7)


def masked_merge():
    """Two zero-padded id sequences, their masks ORed by Concatenate, then an RNN."""
    a, b = jl.Input((None,), dtype=jnp.int32), jl.Input((None,), dtype=jnp.int32)
    merged = jl.Concatenate()([jl.Embedding(7, 2, mask_zero=True)(a),
                               jl.Embedding(7, 2, mask_zero=True)(b)])
    # glorot rather than orthogonal recurrent init: a QR under vmap costs seconds to compile
    return jl.Model([a, b], jl.SimpleRNN(2, recurrent_initializer="glorot_uniform")(merged))


CASES = [
    Case("Add", lambda: jl.Add(), ((None, 4), (None, 4))),
    Case("Add-broadcast", lambda: jl.Add(), ((None, 1, 4), (None, 3, 4))),
    Case("Add-rank", lambda: jl.Add(), ((None, 4), (None, 3, 4))),
    Case("Subtract", lambda: jl.Subtract(), ((None, 4), (None, 4))),
    Case("Multiply", lambda: jl.Multiply(), ((None, 3, 1), (None, 1, 4))),
    Case("Average", lambda: jl.Average(), ((None, 4), (None, 4), (None, 4))),
    Case("Maximum", lambda: jl.Maximum(), ((None, 4), (None, 4))),
    Case("Minimum", lambda: jl.Minimum(), ((None, 2, 4), (None, 2, 4))),
    Case("Concatenate", lambda: jl.Concatenate(), ((None, 2, 3), (None, 2, 5))),
    Case("Concatenate-axis1", lambda: jl.Concatenate(axis=1), ((None, 2, 3), (None, 4, 3))),
    Case("Dot", lambda: jl.Dot(1), ((None, 4), (None, 4))),
    Case("Dot-normalize", lambda: jl.Dot(-1, normalize=True), ((None, 3, 4), (None, 4))),
    Case("Dot-axes-pair", lambda: jl.Dot((1, 2)), ((None, 5, 2), (None, 3, 5))),
    Case("serial-branch-Multiply",
         lambda: jl.serial(jl.branch(jl.Dense(4), jl.Dense(4)), jl.Multiply()), (None, 4)),
    Case("Model-residual", residual, (None, 4)),
    Case("Model-inception", inception, (None, 4)),
    Case("Model-two-in-two-out", two_in_two_out, ((None, 4), (None, 4))),
    Case("Model-siamese-shared", siamese, ((None, 4), (None, 4))),
    Case("Model-nested", nested, (None, 4)),
    Case("Model-dropout", dropout, (None, 4), train=True),
    Case("Model-stateful", stateful, (None, 4)),
    Case("serial-of-Model", lambda: jl.serial(residual(), jl.Dense(4)), (None, 4)),
    Case("Model-masked-merge", masked_merge, ((None, 4), (None, 4)), make_input=ids,
         grad_wrt_input=False),
]
