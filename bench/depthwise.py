"""Depthwise conv alone: (batch, 32, 32, 144) -> DepthwiseConv2D(k, padding="same"), MSE
against a random target; the shapes of the issue's table (MobileNet's middle blocks).

``hand`` is the straightforward JAX: ``lax.conv_general_dilated(feature_group_count=C)``.
jaxlayers runs its measured rule (`jaxlayers.layers.depthwise`), and each lowering is
also timed forced (``jaxlayers_xla``, ``jaxlayers_shifted``); Keras 3 runs the same layer
through `stateless_call`. Same weights everywhere.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from . import peers
from .common import functional, jl_names, mse, peer

NAME = "depthwise"
BASE = {"batch": 16, "kernel": 3}
SCALING = [{"batch": 16, "kernel": 7}]
CHANNELS, SIZE = 144, 32


def data(cfg):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["batch"], SIZE, SIZE, CHANNELS)).astype(np.float32)
    y = rng.standard_normal((cfg["batch"], SIZE, SIZE, CHANNELS)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def weights(k):
    rng = np.random.default_rng(1)
    kernel = (rng.standard_normal((k, k, CHANNELS, 1)) / k).astype(np.float32)
    return {"kernel": kernel, "bias": (0.01 * rng.standard_normal(CHANNELS)).astype(np.float32)}


def hand_apply(params, x):
    k = params["kernel"]
    w = k.reshape(k.shape[:2] + (1, CHANNELS)).astype(x.dtype)
    y = lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=CHANNELS,
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + params["bias"].astype(x.dtype)


def build_jaxlayers(ws, k, lowering=None):
    jl = jl_names("DepthwiseConv2D")
    from jaxlayers.layers import depthwise
    layer = jl.DepthwiseConv2D(k, padding="same")

    def apply(params, x):        # the lowering is chosen when jit traces this
        saved, depthwise.LOWERING = depthwise.LOWERING, lowering
        try:
            return layer.apply(params, x)
        finally:
            depthwise.LOWERING = saved

    return functional(apply, ws, mse)


def build_keras(ws, k):
    keras = peer("keras")
    model = keras.Sequential([keras.Input((SIZE, SIZE, CHANNELS)),
                              keras.layers.DepthwiseConv2D(k, padding="same")])
    model.layers[0].set_weights([ws["kernel"], ws["bias"]])
    return peers.keras_stateless(model, mse)


def builders(cfg, x, y, dtype="float32"):
    if dtype != "float32":
        return {}
    k = cfg["kernel"]
    ws = weights(k)
    return {
        "hand": lambda: functional(hand_apply, ws, mse),
        "jaxlayers": lambda: build_jaxlayers(ws, k),
        "jaxlayers_xla": lambda: build_jaxlayers(ws, k, "xla"),
        "jaxlayers_shifted": lambda: build_jaxlayers(ws, k, "shifted"),
        "keras_stateless": lambda: build_keras(ws, k),
    }
