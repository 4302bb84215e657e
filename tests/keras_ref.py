"""Helpers shared by the conv / pooling / reshaping tests: run a Keras 3 layer (JAX backend)
with given weights, next to the matching jaxlayers layer.

Inputs and weights are made with numpy, and param shapes come from `jax.eval_shape`, so
a reference test compiles little besides the two layers' own computations.
"""
import jax
import numpy as np


def keras_apply(klayer, x, weights=()):
    """Keras' output for `x` with `weights` (Keras' order) copied in, rank promotion allowed."""
    with jax.numpy_rank_promotion("allow"):
        klayer.build(x.shape)
        if weights:
            klayer.set_weights([np.asarray(w) for w in weights])
        return np.asarray(klayer(np.asarray(x)))


def normal(shape, seed=1):
    """Standard normal float32 numpy values."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def random_params(layer, input_shape, seed=7):
    """``(output_shape, params)`` of `layer` for `input_shape`, the params standard normal
    (so biases are non-zero), without running the initializers."""
    out = jax.eval_shape(lambda k: layer.init(k, input_shape), jax.random.key(0))
    out_shape, shapes = out[0], out[1]
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(
        lambda s: rng.standard_normal(s.shape).astype(np.float32), shapes)
    return out_shape, params


_INITIALIZERS = {"Depthwise": ("depthwise_initializer",),
                 "Separable": ("depthwise_initializer", "pointwise_initializer")}


def keras_layer(kind, **kwargs):
    """``keras.layers.<kind>(**kwargs)`` with zeros initializers: the weights are copied in
    anyway, and Keras' random initializers cost about a second of compilation each."""
    import keras
    names = next((v for k, v in _INITIALIZERS.items() if kind.startswith(k)),
                 ("kernel_initializer",))
    return getattr(keras.layers, kind)(**{n: "zeros" for n in names}, **kwargs)
