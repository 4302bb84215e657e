"""A user-written layer in about ten lines, stateless and stateful.

`MyDense(output_dim)` is a kernel-only matmul with a uniform initializer; it is used
in `jl.serial` with `Activation("relu")` and `Dense(1, activation="sigmoid")` and
trained on the breast-cancer data of `seed_dense.py`. `RunningMean()` is a stateful
layer that tracks the moving average of its input in training and passes it through.
"""
import jax
import jax.numpy as jnp
import optax

import jaxlayers as jl
from seed_dense import bce, load_data


def MyDense(output_dim, minval=-0.05, maxval=0.05):
    """y = x @ kernel; kernel (in, output_dim) drawn uniformly from [minval, maxval)."""
    def init(key, input_shape):
        kernel = jax.random.uniform(key, (input_shape[-1], output_dim), minval=minval,
                                    maxval=maxval)
        return input_shape[:-1] + (output_dim,), {"kernel": kernel}

    def apply(params, x, **kwargs):
        return x @ params["kernel"]

    return jl.Layer(init, apply, name=f"MyDense({output_dim})")


def RunningMean(momentum=0.9):
    """Passes x through; its state tracks the moving average of x over the batch axis."""
    def init(key, input_shape):
        return input_shape, (), {"mean": jnp.zeros(input_shape[-1])}

    def apply(params, state, x, *, rng=None, train=False):
        if train:
            state = {"mean": momentum * state["mean"] + (1 - momentum) * x.mean(0)}
        return x, state

    return jl.Layer(init, apply, name="RunningMean()", stateful=True)


def main(epochs=40, batch_size=32):
    x_train, x_test, y_train, y_test = load_data()
    model = jl.serial(MyDense(16), jl.Activation("relu"), RunningMean(),
                      jl.Dense(1, activation="sigmoid"))
    assert model.stateful  # one stateful child makes the whole model stateful
    jl.summary(model, (None, 10))
    _, params, state = model.init(jax.random.key(0), (None, 10))
    tx = optax.adam(3e-3)
    opt_state = tx.init(params)

    def loss_fn(params, state, x, y):
        p, state = model.apply(params, state, x, train=True)
        return bce(p, y), state

    @jax.jit
    def step(params, state, opt_state, x, y):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    for epoch in range(epochs):
        for i in range(0, len(x_train) - batch_size + 1, batch_size):
            params, state, opt_state, loss = step(params, state, opt_state,
                                                  x_train[i:i + batch_size],
                                                  y_train[i:i + batch_size])
    probs, _ = model.apply(params, state, x_test)
    acc = float(jnp.mean((probs > 0.5) == (y_test > 0.5)))
    print(f"running mean of the hidden layer (first 4 units): {state[2]['mean'][:4]}")
    print(f"test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    assert main() >= 0.93
