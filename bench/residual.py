"""Residual functional model: (batch, 28, 28, 1) -> x = Conv 16 3x3 same relu ->
y = Conv 16 3x3 same relu -> Conv 16 3x3 same -> relu(x + y) -> MaxPool 2 -> Flatten -> Dense 10.

jaxlayers builds it with the functional API (`jl.Input`, `jl.Add`, `jl.Model`); the
peers write it as they would. Same starting weights everywhere.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import peers
from .cnn import data, fill, pool_window
from .common import conv_weights, functional, jl_names, peer

NAME = "residual"
BASE = {"batch": 64}
SCALING = []
KERNELS = [(3, 3, 1, 16), (3, 3, 16, 16), (3, 3, 16, 16), (14 * 14 * 16, 10)]


def weights():
    return conv_weights(KERNELS)


def conv_same(x, k, b):
    return lax.conv_general_dilated(x, k.astype(x.dtype), (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC")) + b.astype(x.dtype)


def hand_apply(params, x):
    (k1, b1), (k2, b2), (k3, b3), (w4, b4) = params
    x = jax.nn.relu(conv_same(x, k1, b1))
    y = conv_same(jax.nn.relu(conv_same(x, k2, b2)), k3, b3)
    z = pool_window(jax.nn.relu(x + y))
    return z.reshape(z.shape[0], -1) @ w4.astype(z.dtype) + b4.astype(z.dtype)


def build_jaxlayers(ws, cast=None):
    jl = jl_names("Conv2D", "MaxPooling2D", "Input", "Model", "Add")
    inp = jl.Input((28, 28, 1))
    x = jl.Conv2D(16, 3, padding="same", activation="relu")(inp)
    y = jl.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = jl.Conv2D(16, 3, padding="same")(y)
    z = jl.MaxPooling2D(2)(jl.Activation("relu")(jl.Add()([x, y])))
    model = jl.Model(inp, jl.Dense(10)(jl.Flatten()(z)))
    _, params = model.init(jax.random.key(0), (None, 28, 28, 1))
    return functional(model.apply, fill(params, ws), cast=cast)


def build_stax(ws):
    stax = peer("jax.example_libraries.stax")
    conv = lambda: stax.Conv(16, (3, 3), padding="SAME")
    _, apply = stax.serial(conv(), stax.Relu, stax.FanOut(2),
                           stax.parallel(stax.serial(conv(), stax.Relu, conv()), stax.Identity),
                           stax.FanInSum, stax.Relu, stax.MaxPool((2, 2), (2, 2)), stax.Flatten,
                           stax.Dense(10))
    (k1, b1), (k2, b2), (k3, b3), d4 = ws
    b = lambda v: v.reshape(1, 1, 1, -1)
    params = [(k1, b(b1)), (), (), [[(k2, b(b2)), (), (k3, b(b3))], ()], (), (), (), (), d4]
    return peers.stax(apply, params)


def _linen(ws):
    nn = peer("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (3, 3), padding="SAME")(x))
            y = nn.relu(nn.Conv(16, (3, 3), padding="SAME")(x))
            y = nn.Conv(16, (3, 3), padding="SAME")(y)
            z = nn.max_pool(nn.relu(x + y), (2, 2), (2, 2))
            return nn.Dense(10)(z.reshape(z.shape[0], -1))

    names = ["Conv_0", "Conv_1", "Conv_2", "Dense_0"]
    return peers.linen(Net(), {"params": {n: {"kernel": k, "bias": b}
                                          for n, (k, b) in zip(names, ws)}})


def _nnx_model(ws):
    nnx = peer("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(1, 16, (3, 3), padding="SAME", rngs=rngs)
            self.c2 = nnx.Conv(16, 16, (3, 3), padding="SAME", rngs=rngs)
            self.c3 = nnx.Conv(16, 16, (3, 3), padding="SAME", rngs=rngs)
            self.d = nnx.Linear(14 * 14 * 16, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.c1(x))
            y = self.c3(nnx.relu(self.c2(x)))
            z = nnx.max_pool(nnx.relu(x + y), (2, 2), (2, 2))
            return self.d(z.reshape(z.shape[0], -1))

    m = Net(nnx.Rngs(0))
    for layer, (k, b) in zip((m.c1, m.c2, m.c3, m.d), ws):
        layer.kernel[...], layer.bias[...] = jnp.asarray(k), jnp.asarray(b)
    return m


def _eqx_model(ws):
    eqx = peer("equinox")
    ks = jax.random.split(jax.random.key(0), 4)

    class Net(eqx.Module):
        c1: eqx.nn.Conv2d
        c2: eqx.nn.Conv2d
        c3: eqx.nn.Conv2d
        d: eqx.nn.Linear
        pool: eqx.nn.MaxPool2d

        def __call__(self, x, state, key, train):
            def one(v):
                v = jax.nn.relu(self.c1(v))
                w = self.c3(jax.nn.relu(self.c2(v)))
                return self.d(self.pool(jax.nn.relu(v + w)).reshape(-1))
            return jax.vmap(one)(jnp.transpose(x, (0, 3, 1, 2))), state

    conv = lambda i, k: eqx.nn.Conv2d(i, 16, 3, padding=1, key=k)
    m = Net(conv(1, ks[0]), conv(16, ks[1]), conv(16, ks[2]), eqx.nn.Linear(3136, 10, key=ks[3]),
            eqx.nn.MaxPool2d(2, 2))
    (k1, b1), (k2, b2), (k3, b3), (w4, b4) = ws
    w4 = w4.reshape(14, 14, 16, 10).transpose(2, 0, 1, 3).reshape(3136, 10)
    f = jnp.asarray
    o = lambda k: f(k.transpose(3, 2, 0, 1))
    c = lambda b: f(b.reshape(-1, 1, 1))
    return eqx.tree_at(
        lambda m: (m.c1.weight, m.c1.bias, m.c2.weight, m.c2.bias, m.c3.weight, m.c3.bias,
                   m.d.weight, m.d.bias), m,
        (o(k1), c(b1), o(k2), c(b2), o(k3), c(b3), f(w4.T), f(b4)))


def _haiku(ws):
    hk = peer("haiku")

    def fn(x):
        x = jax.nn.relu(hk.Conv2D(16, 3)(x))
        y = jax.nn.relu(hk.Conv2D(16, 3)(x))
        y = hk.Conv2D(16, 3)(y)
        z = hk.max_pool(jax.nn.relu(x + y), (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return hk.Linear(10)(hk.Flatten()(z))

    t = hk.transform(fn)
    ref = t.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    params = {n: {"w": jnp.asarray(k), "b": jnp.asarray(b)} for n, (k, b) in zip(ref, ws)}
    return peers.haiku(t, params)


def _keras_model(ws):
    keras = peer("keras")
    L = keras.layers
    inp = keras.Input((28, 28, 1))
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    y = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = L.Conv2D(16, 3, padding="same")(y)
    z = L.MaxPooling2D(2)(L.Activation("relu")(L.Add()([x, y])))
    model = keras.Model(inp, L.Dense(10)(L.Flatten()(z)))
    model.set_weights([a for wb in ws for a in wb])
    return model


def builders(cfg, x, y, dtype="float32"):
    ws = weights()
    if dtype != "float32":
        return {}
    keras = lambda: peer("keras")
    return {
        "hand": lambda: functional(hand_apply, tuple(ws)),
        "jaxlayers": lambda: build_jaxlayers(ws),
        "stax": lambda: build_stax(ws),
        "linen": lambda: _linen(ws),
        "nnx_split": lambda: peers.nnx_split(_nnx_model(ws)),
        "nnx_jit": lambda: peers.nnx_jit(_nnx_model(ws)),
        "eqx_jit": lambda: peers.eqx_partition(_eqx_model(ws)),
        "eqx_filter_jit": lambda: peers.eqx_filter(_eqx_model(ws)),
        "haiku": lambda: _haiku(ws),
        "keras_stateless": lambda: peers.keras_stateless(_keras_model(ws)),
        "keras_fit": lambda: peers.keras_fit(
            _keras_model(ws), x, y,
            loss=keras().losses.SparseCategoricalCrossentropy(from_logits=True)),
    }
