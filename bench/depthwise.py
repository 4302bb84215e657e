"""Depthwise conv alone: (batch, 32, 32, 144) -> DepthwiseConv2D(k, padding="same"), MSE
against a random target; the shapes of the issue's table (MobileNet's middle blocks).

``hand`` is the straightforward JAX: ``lax.conv_general_dilated(feature_group_count=C)``.
jaxlayers runs its measured rule (`jaxlayers.layers.depthwise`), and each lowering is
also timed forced (``jaxlayers_xla``, ``jaxlayers_shifted``); Keras 3 runs the same layer
through `stateless_call`; Flax (linen, NNX) and Equinox run their grouped convolution
(``feature_group_count`` / ``groups`` = C: they have no depthwise layer). Same weights
everywhere.
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


def with_lowering(apply, lowering):
    """`apply` run with jaxlayers' depthwise lowering forced to `lowering` ("xla",
    "shifted"; None: the measured rule). The lowering is chosen when jit traces it."""
    def run(*args, **kwargs):
        from jaxlayers.layers import depthwise
        saved, depthwise.LOWERING = depthwise.LOWERING, lowering
        try:
            return apply(*args, **kwargs)
        finally:
            depthwise.LOWERING = saved
    return run


def build_jaxlayers(ws, k, lowering=None):
    jl = jl_names("DepthwiseConv2D")
    layer = jl.DepthwiseConv2D(k, padding="same")
    return functional(with_lowering(layer.apply, lowering), ws, mse)


# --------------------------------------------------------------------------- peers
# Flax and Equinox have no depthwise layer: their grouped convolution with
# feature_group_count / groups = C is the port, the same XLA op as `hand`.


def build_linen(ws, k):
    nn = peer("flax.linen")
    conv = nn.Conv(CHANNELS, (k, k), padding="SAME", feature_group_count=CHANNELS)
    params = {"kernel": jnp.asarray(ws["kernel"]).reshape(k, k, 1, CHANNELS),
              "bias": jnp.asarray(ws["bias"])}
    return peers.linen(conv, {"params": params}, mse)


def build_nnx(ws, k):
    nnx = peer("flax.nnx")
    conv = nnx.Conv(CHANNELS, CHANNELS, (k, k), padding="SAME", feature_group_count=CHANNELS,
                    rngs=nnx.Rngs(0))
    conv.kernel[...] = jnp.asarray(ws["kernel"]).reshape(k, k, 1, CHANNELS)
    conv.bias[...] = jnp.asarray(ws["bias"])
    return peers.nnx_split(conv, mse)


def build_eqx(ws, k):
    """Idiomatic Equinox: an unbatched channels-first Conv2d(groups=C), vmapped, with the
    NHWC data transposed in and out."""
    eqx = peer("equinox")
    import jax
    conv = eqx.nn.Conv2d(CHANNELS, CHANNELS, k, padding="SAME", groups=CHANNELS,
                         key=jax.random.key(0))
    conv = eqx.tree_at(lambda m: m.weight, conv,     # (k, k, C, 1) -> (C, 1, k, k)
                       jnp.asarray(ws["kernel"]).transpose(2, 3, 0, 1))
    conv = eqx.tree_at(lambda m: m.bias, conv, jnp.asarray(ws["bias"]).reshape(-1, 1, 1))

    class Net(eqx.Module):
        conv: eqx.nn.Conv2d

        def __call__(self, x, state, key, train):
            y = jax.vmap(self.conv)(x.transpose(0, 3, 1, 2))
            return y.transpose(0, 2, 3, 1), state

    return peers.eqx_partition(Net(conv), mse)


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
        "linen": lambda: build_linen(ws, k),
        "nnx_split": lambda: build_nnx(ws, k),
        "eqx_jit": lambda: build_eqx(ws, k),
        "keras_stateless": lambda: build_keras(ws, k),
    }
