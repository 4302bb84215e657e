"""Helpers shared by the conv / pooling / reshaping tests: run a Keras 3 layer (JAX backend)
with given weights, next to the matching jaxlayers layer."""
import jax
import numpy as np


def keras_apply(klayer, x, weights=()):
    """Keras' output for `x` with `weights` (Keras' order) copied in, rank promotion allowed."""
    with jax.numpy_rank_promotion("allow"):
        klayer.build(x.shape)
        if weights:
            klayer.set_weights([np.asarray(w) for w in weights])
        return np.asarray(klayer(np.asarray(x)))


def randomized(params, key=jax.random.key(7)):
    """`params` with every array replaced by standard normal values (biases non-zero)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    return jax.tree_util.tree_unflatten(
        tree, [jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)])
