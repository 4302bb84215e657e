"""Helpers to run a Keras 3 layer (JAX backend) with given weights, next to the matching
jaxlayers layer.

Inputs and weights can be made with numpy and param shapes come from `jax.eval_shape`
(`random_params`), so a reference test compiles little besides the two layers.
"""
import contextlib
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


def keras_model_outputs(km, x):
    """The outputs of Keras model `km` on `x` in inference, as a list of numpy arrays, from
    one jitted `stateless_call` (the numbers of ``km(x)`` without seconds of eager dispatch
    per op for a large model)."""
    with jax.numpy_rank_promotion("allow"):
        trainable = [v.value for v in km.trainable_variables]
        frozen = [v.value for v in km.non_trainable_variables]
        call = jax.jit(lambda t, n, x: km.stateless_call(t, n, x, training=False)[0])
        out = call(trainable, frozen, x)
    return [np.asarray(y) for y in (out if isinstance(out, (list, tuple)) else [out])]


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


@contextlib.contextmanager
def numpy_initializers(seed=0):
    """Inside the block Keras' random initializers draw from numpy (the same distributions):
    building a large Keras model then compiles no random op per weight shape (seconds for a
    keras.applications model). The weights stay random and are copied as they are."""
    from keras.src.backend.jax import random as backend_random
    rng = np.random.default_rng(seed)

    def cast(sample, dtype):
        return np.asarray(sample, dtype or keras.config.floatx())

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return cast(rng.normal(mean, stddev, shape), dtype)

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return cast(rng.uniform(minval, maxval, shape), dtype)

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        sample = rng.standard_normal(shape)
        outside = np.abs(sample) > 2.0                  # redrawn, as jax's [-2, 2] cut
        while outside.any():
            sample[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(sample) > 2.0
        return cast(sample * stddev + mean, dtype)

    replaced = {"normal": normal, "uniform": uniform, "truncated_normal": truncated_normal}
    saved = {name: getattr(backend_random, name) for name in replaced}
    try:
        for name, fn in replaced.items():
            setattr(backend_random, name, fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(backend_random, name, fn)
