"""Helpers to compute reference outputs with Keras 3 (JAX backend) from our params."""
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
        return np.asarray(layer(x, **call_kwargs))
