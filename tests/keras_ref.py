"""Helpers to run a Keras 3 layer (JAX backend) with given weights, next to the matching
jaxlayers layer.

Inputs and weights can be made with numpy and param shapes come from `jax.eval_shape`
(`random_params`), so a reference test compiles little besides the two layers.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402


def keras_call(layer, weights, x, input_shape=None, **call_kwargs):
    """Build the Keras `layer`, copy `weights` in (Keras' order) and return layer(x) as numpy.

    Runs under implicit rank promotion, which Keras relies on.
    """
    with jax.numpy_rank_promotion("allow"):
        shape = input_shape or (None,) + tuple(np.shape(x)[1:])
        layer.build(shape)
        if weights:
            layer.set_weights([np.asarray(w) for w in weights])
        return np.asarray(layer(np.asarray(x), **call_kwargs))


def keras_apply(klayer, x, weights=()):
    """Keras' output for `x` with `weights` (Keras' order) copied in, built for x's shape."""
    return keras_call(klayer, weights, x, input_shape=np.shape(x))


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
    names = next((v for k, v in _INITIALIZERS.items() if kind.startswith(k)),
                 ("kernel_initializer",))
    return getattr(keras.layers, kind)(**{n: "zeros" for n in names}, **kwargs)
