"""The issue-3 CNN: jaxlayers vs the same model hand-written with lax, one jitted Adam train
step and one inference pass on (64, 28, 28, 1) float32. Prints times and ratios.

    Conv2D 32 3x3 relu -> MaxPool 2 -> Conv2D 64 3x3 relu -> MaxPool 2 -> Flatten
    -> Dense 128 relu -> Dense 10

Run: python bench/cnn.py [--repeats N]
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import jaxlayers as jl

BATCH = 64


def jaxlayers_model():
    model = jl.serial(jl.Conv2D(32, 3, activation="relu"), jl.MaxPooling2D(2),
                      jl.Conv2D(64, 3, activation="relu"), jl.MaxPooling2D(2), jl.Flatten(),
                      jl.Dense(128, activation="relu"), jl.Dense(10))
    _, params = model.init(jax.random.key(0), (None, 28, 28, 1))
    return model.apply, params


def hand_model(params_jl):
    """The same network with lax.conv_general_dilated / lax.reduce_window and the same weights."""
    params = [params_jl[0], params_jl[2], params_jl[5], params_jl[6]]
    dn = ("NHWC", "HWIO", "NHWC")

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def apply(params, x):
        c1, c2, d1, d2 = params
        x = jax.nn.relu(lax.conv_general_dilated(x, c1["kernel"], (1, 1), "VALID",
                                                 dimension_numbers=dn) + c1["bias"])
        x = pool(x)
        x = jax.nn.relu(lax.conv_general_dilated(x, c2["kernel"], (1, 1), "VALID",
                                                 dimension_numbers=dn) + c2["bias"])
        x = pool(x)
        x = x.reshape(x.shape[0], -1)
        x = jax.nn.relu(x @ d1["kernel"] + d1["bias"])
        return x @ d2["kernel"] + d2["bias"]

    return apply, params


def make_step(apply, tx):
    def loss_fn(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), y).mean()

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def timed(fn, *args, repeats):
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - t0)
    return best, compile_s


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    repeats = parser.parse_args().repeats
    x = jnp.asarray(np.random.default_rng(0).standard_normal((BATCH, 28, 28, 1)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(1).integers(0, 10, BATCH), jnp.int32)
    jl_apply, jl_params = jaxlayers_model()
    hw_apply, hw_params = hand_model(jl_params)
    np.testing.assert_allclose(jl_apply(jl_params, x), hw_apply(hw_params, x), atol=1e-4)
    tx = optax.adam(1e-3)
    rows = []
    for what, fn, args in [
        ("train step", make_step(jl_apply, tx), (jl_params, tx.init(jl_params), x, y)),
        ("train step", make_step(hw_apply, tx), (hw_params, tx.init(hw_params), x, y)),
        ("inference", jax.jit(jl_apply), (jl_params, x)),
        ("inference", jax.jit(hw_apply), (hw_params, x)),
    ]:
        rows.append((what,) + timed(fn, *args, repeats=repeats))
    print(f"{jax.devices()[0].platform}, batch {BATCH}, best of {repeats}")
    for i in (0, 2):
        (what, t_jl, c_jl), (_, t_hw, c_hw) = rows[i], rows[i + 1]
        print(f"{what:10s}  jaxlayers {t_jl * 1e3:8.3f} ms  hand-written {t_hw * 1e3:8.3f} ms  "
              f"ratio {t_jl / t_hw:5.2f}x   compile {c_jl:5.2f} s vs {c_hw:5.2f} s "
              f"({c_jl / c_hw:4.2f}x)")


if __name__ == "__main__":
    main()
