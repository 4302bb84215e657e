"""What every workload shares: data, weights, the loss, Adam, the jitted step makers,
and the optional imports of the peers."""
from __future__ import annotations

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .timing import Built, Unavailable

LR = 1e-3
SEED = 0


def tx():
    return optax.adam(LR)


def xent(logits, y):
    """Mean softmax cross-entropy with integer labels, computed in float32."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y).mean()


def mse(pred, y):
    return jnp.mean((pred.astype(jnp.float32).reshape(y.shape) - y) ** 2)


def peer(module: str):
    """Import an optional peer library, or raise `Unavailable` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Unavailable(f"{module} is not installed (pip install -e '.[bench]')") from None


def unavailable(reason):
    """A builder that reports `reason` (a peer without the layers a workload needs)."""
    def build():
        raise Unavailable(reason)
    return build


def jl_names(*names):
    """The jaxlayers attributes `names`, or `Unavailable` when one is missing (not merged yet)."""
    import jaxlayers as jl
    missing = [n for n in names if not hasattr(jl, n)]
    if missing:
        raise Unavailable(f"jaxlayers has no {', '.join(missing)} yet (not available yet)")
    return jl


# --------------------------------------------------------------------------- data, weights


def classification_data(shape, classes, seed=SEED):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, classes, size=(shape[0],)).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


def glorot(rng, shape):
    fan_in = int(np.prod(shape[:-1]))
    fan_out = int(shape[-1]) if len(shape) == 2 else int(np.prod(shape[:-2])) * int(shape[-1])
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, size=shape).astype(np.float32)


def dense_weights(sizes, seed=SEED):
    """Keras-layout `(kernel (in, out), bias (out,))` pairs for a chain of Dense layers.

    Biases are small random numbers (not zeros) so that a wrongly wired bias shows
    in the loss check.
    """
    rng = np.random.default_rng(seed + 1)
    return [(glorot(rng, (a, b)), (0.01 * rng.standard_normal(b)).astype(np.float32))
            for a, b in zip(sizes[:-1], sizes[1:])]


def conv_weights(shapes, seed=SEED):
    """`(kernel, bias)` pairs for the given kernel shapes (HWIO for convs, (in, out) dense)."""
    rng = np.random.default_rng(seed + 2)
    return [(glorot(rng, s), (0.01 * rng.standard_normal(s[-1])).astype(np.float32))
            for s in shapes]


# --------------------------------------------------------------------------- step makers


def functional(apply, params, loss=xent, *, cast=None):
    """`Built` for a pure ``apply(params, x) -> out``: jitted Adam step, donated carry.

    `cast` (a dtype) casts the input before `apply` (the mixed-precision path: params
    stay float32, compute follows the input's dtype).
    """
    opt = tx()

    def fwd(params, x):
        return apply(params, x if cast is None else x.astype(cast))

    def loss_fn(params, x, y):
        return loss(fwd(params, x), y)

    def train(carry, x, y):
        params, opt_state = carry
        l, g = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), l

    params = jax.tree_util.tree_map(jnp.asarray, params)
    return Built(carry=(params, opt.init(params)),
                 train=jax.jit(train, donate_argnums=0),
                 infer=jax.jit(fwd))


def stateful(apply, params, state, loss=xent, *, cast=None, seed=SEED):
    """`Built` for ``apply(params, state, x, rng, train) -> (out, state)``.

    The carry is ``(params, state, opt_state, rng)``; each step splits a fresh key.
    Inference runs with ``train=False`` on ``(params, state)``.
    """
    opt = tx()

    def fwd(params, state, x, rng, train):
        return apply(params, state, x if cast is None else x.astype(cast), rng, train)

    def loss_fn(params, state, x, y, rng):
        out, state = fwd(params, state, x, rng, True)
        return loss(out, y), state

    def train(carry, x, y):
        params, state, opt_state, rng = carry
        rng, sub = jax.random.split(rng)
        (l, state), g = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y, sub)
        updates, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), state, opt_state, rng), l

    def infer(ps, x):
        return fwd(ps[0], ps[1], x, None, False)[0]

    params = jax.tree_util.tree_map(jnp.asarray, params)
    return Built(carry=(params, state, opt.init(params), jax.random.key(seed)),
                 train=jax.jit(train, donate_argnums=0), infer=jax.jit(infer),
                 infer_arg=lambda c: (c[0], c[1]))
