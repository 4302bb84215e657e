"""jl.LSTM vs a straightforward hand-written lax.scan LSTM: one jitted Adam training step.

Workload (issue 4): (64, 50, 10) float32 -> LSTM(64) -> Dense(1), MSE, optax.adam. The
hand-written LSTM does the input matmul inside the scan (the obvious way to write it);
jaxlayers hoists it out of the loop into one matmul over all time steps. Both compute the same
numbers (checked before timing). Prints the best-of-N step times and their ratio.

    python bench/lstm.py [--steps 50 200 1000] [--repeats 50]
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxlayers as jl

B, F, U = 64, 10, 64


def hand_lstm(params, x):
    """The straightforward LSTM: x_t @ W inside the loop. Keras' layout and gate order."""
    (cell, dense) = params
    W, R, b = cell["kernel"], cell["recurrent_kernel"], cell["bias"]

    def step(carry, x_t):
        h, c = carry
        z = x_t @ W + h @ R + b
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((x.shape[0], U), x.dtype)
    (h, _), _ = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    return h @ dense["kernel"] + dense["bias"]


def make_step(apply, tx):
    def loss_fn(params, x, y):
        return jnp.mean((apply(params, x) - y) ** 2)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def time_steps(steps, params, opt_state, x, y, repeats):
    """The best-of-`repeats` time of each step function, run alternately (so a busy machine
    slows both alike)."""
    for step in steps:
        jax.block_until_ready(step(params, opt_state, x, y))
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, ts in zip(steps, times):
            t = time.perf_counter()
            jax.block_until_ready(step(params, opt_state, x, y))
            ts.append(time.perf_counter() - t)
    return [float(np.min(ts)) for ts in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="+", default=[50])
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    model = jl.serial(jl.LSTM(U), jl.Dense(1))
    _, params = model.init(jax.random.key(0), (None, None, F))
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    print(f"device: {jax.devices()[0]}")
    for steps in args.steps:
        x = jax.random.normal(jax.random.key(1), (B, steps, F))
        y = jax.random.normal(jax.random.key(2), (B, 1))
        np.testing.assert_allclose(jax.jit(model.apply)(params, x), jax.jit(hand_lstm)(params, x),
                                   atol=1e-4)
        t_jl, t_hand = time_steps([make_step(model.apply, tx), make_step(hand_lstm, tx)],
                                  params, opt_state, x, y, args.repeats)
        print(f"T={steps:5d}  jaxlayers {t_jl * 1e3:8.3f} ms   hand-written scan "
              f"{t_hand * 1e3:8.3f} ms   ratio jaxlayers/hand {t_jl / t_hand:.3f}")


if __name__ == "__main__":
    main()
