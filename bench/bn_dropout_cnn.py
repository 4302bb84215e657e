"""BatchNorm + Dropout CNN (state and rng): (batch, 28, 28, 1) -> Conv 32 3x3 -> BatchNorm ->
relu -> MaxPool 2 -> Conv 64 3x3 -> BatchNorm -> relu -> MaxPool 2 -> Flatten -> Dropout 0.5
-> Dense 128 relu -> Dropout 0.5 -> Dense 10.

BatchNorm as Keras: momentum 0.99, epsilon 1e-3, moving statistics updated in training and
used in inference. The training step carries params, BatchNorm state, Adam state and an
rng key in and out. Same starting weights everywhere, but first losses differ a little:
each library draws its own dropout masks.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import peers
from .cnn import KERNELS, data, fill, pool_window
from .common import conv_weights, jl_names, peer, stateful, unavailable

NAME = "bn_dropout_cnn"
BASE = {"batch": 64}
SCALING = []
MOMENTUM, EPS, RATE = 0.99, 1e-3, 0.5


def weights():
    return conv_weights(KERNELS)


# --------------------------------------------------------------------------- the floor


def batchnorm(x, gamma, beta, mean, var, train):
    dt = x.dtype
    if train:
        xf = x.astype(jnp.float32)
        m, v = xf.mean((0, 1, 2)), xf.var((0, 1, 2))
        new = (mean * MOMENTUM + m * (1 - MOMENTUM), var * MOMENTUM + v * (1 - MOMENTUM))
    else:
        m, v, new = mean, var, (mean, var)
    scale = gamma * lax.rsqrt(v + EPS)
    return x * scale.astype(dt) + (beta - m * scale).astype(dt), new


def dropout(x, rng, train):
    if not train:
        return x
    keep = jax.random.bernoulli(rng, 1 - RATE, x.shape)
    return jnp.where(keep, x / (1 - RATE), 0).astype(x.dtype)


def hand_apply(params, state, x, rng, train):
    (k1, b1, g1, be1), (k2, b2, g2, be2), (w3, b3), (w4, b4) = params
    (m1, v1), (m2, v2) = state
    r1, r2 = jax.random.split(rng) if train else (None, None)
    conv = lambda x, k, b: lax.conv_general_dilated(
        x, k.astype(x.dtype), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    x, s1 = batchnorm(conv(x, k1, b1), g1, be1, m1, v1, train)
    x = pool_window(jax.nn.relu(x))
    x, s2 = batchnorm(conv(x, k2, b2), g2, be2, m2, v2, train)
    x = pool_window(jax.nn.relu(x))
    x = dropout(x.reshape(x.shape[0], -1), r1, train)
    x = dropout(jax.nn.relu(x @ w3 + b3), r2, train)
    return x @ w4 + b4, (s1, s2)


def build_hand(ws, cast=None):
    (k1, b1), (k2, b2), d3, d4 = [tuple(jnp.asarray(a) for a in wb) for wb in ws]
    ones = lambda n: (jnp.ones(n), jnp.zeros(n))
    params = ((k1, b1) + ones(32), (k2, b2) + ones(64), d3, d4)
    state = ((jnp.zeros(32), jnp.ones(32)), (jnp.zeros(64), jnp.ones(64)))
    return stateful(hand_apply, params, state, cast=cast)


# --------------------------------------------------------------------------- jaxlayers


def build_jaxlayers(ws, cast=None):
    jl = jl_names("Conv2D", "MaxPooling2D", "BatchNormalization")
    model = jl.with_state(jl.serial(
        jl.Conv2D(32, (3, 3)), jl.BatchNormalization(), jl.Activation("relu"),
        jl.MaxPooling2D((2, 2)),
        jl.Conv2D(64, (3, 3)), jl.BatchNormalization(), jl.Activation("relu"),
        jl.MaxPooling2D((2, 2)),
        jl.Flatten(), jl.Dropout(RATE), jl.Dense(128, activation="relu"), jl.Dropout(RATE),
        jl.Dense(10)))
    _, params, state = model.init(jax.random.key(0), (None, 28, 28, 1))

    def apply(params, state, x, rng, train):
        return model.apply(params, state, x, rng=rng, train=train)
    return stateful(apply, fill(params, ws), state, cast=cast)


# --------------------------------------------------------------------------- peers


def _linen(ws):
    nn = peer("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=MOMENTUM,
                                      epsilon=EPS)
            x = nn.max_pool(nn.relu(bn()(nn.Conv(32, (3, 3), padding="VALID")(x))), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(bn()(nn.Conv(64, (3, 3), padding="VALID")(x))), (2, 2), (2, 2))
            x = nn.Dropout(RATE, deterministic=not train)(x.reshape(x.shape[0], -1))
            x = nn.Dropout(RATE, deterministic=not train)(nn.relu(nn.Dense(128)(x)))
            return nn.Dense(10)(x)

    net = Net()
    v = net.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), False)
    names = ["Conv_0", "Conv_1", "Dense_0", "Dense_1"]
    params = dict(v["params"])
    for n, (k, b) in zip(names, ws):
        params[n] = {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
    return peers.linen(net, {"params": params, "batch_stats": v["batch_stats"]},
                       has_state=True, dropout=True)


def _nnx_model(ws):
    nnx = peer("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(1, 32, (3, 3), padding="VALID", rngs=rngs)
            self.n1 = nnx.BatchNorm(32, momentum=MOMENTUM, epsilon=EPS, rngs=rngs)
            self.c2 = nnx.Conv(32, 64, (3, 3), padding="VALID", rngs=rngs)
            self.n2 = nnx.BatchNorm(64, momentum=MOMENTUM, epsilon=EPS, rngs=rngs)
            self.d1 = nnx.Linear(1600, 128, rngs=rngs)
            self.d2 = nnx.Linear(128, 10, rngs=rngs)
            self.drop = nnx.Dropout(RATE, rngs=rngs)

        def __call__(self, x, train):
            ura, det = not train, not train
            x = nnx.max_pool(nnx.relu(self.n1(self.c1(x), use_running_average=ura)), (2, 2),
                             (2, 2))
            x = nnx.max_pool(nnx.relu(self.n2(self.c2(x), use_running_average=ura)), (2, 2),
                             (2, 2))
            x = self.drop(x.reshape(x.shape[0], -1), deterministic=det)
            x = self.drop(nnx.relu(self.d1(x)), deterministic=det)
            return self.d2(x)

    m = Net(nnx.Rngs(0))
    for layer, (k, b) in zip((m.c1, m.c2, m.d1, m.d2), ws):
        layer.kernel[...], layer.bias[...] = jnp.asarray(k), jnp.asarray(b)
    return m


def _eqx(ws, how):
    eqx = peer("equinox")
    ks = jax.random.split(jax.random.key(0), 4)

    class Net(eqx.Module):
        c1: eqx.nn.Conv2d
        n1: eqx.nn.BatchNorm
        c2: eqx.nn.Conv2d
        n2: eqx.nn.BatchNorm
        d1: eqx.nn.Linear
        d2: eqx.nn.Linear
        pool: eqx.nn.MaxPool2d
        drop: eqx.nn.Dropout

        def __call__(self, x, state, key, train):
            keys = jax.random.split(key, x.shape[0] * 2).reshape(x.shape[0], 2) \
                if train else None

            def one(v, k, state):
                v, state = self.n1(self.c1(v), state, inference=not train)
                v = self.pool(jax.nn.relu(v))
                v, state = self.n2(self.c2(v), state, inference=not train)
                v = self.pool(jax.nn.relu(v)).reshape(-1)
                v = self.drop(v, key=None if k is None else k[0], inference=not train)
                v = self.drop(jax.nn.relu(self.d1(v)), key=None if k is None else k[1],
                              inference=not train)
                return self.d2(v), state
            return jax.vmap(one, in_axes=(0, 0 if train else None, None), out_axes=(0, None),
                            axis_name="batch")(jnp.transpose(x, (0, 3, 1, 2)), keys, state)

    def make():
        return Net(eqx.nn.Conv2d(1, 32, 3, key=ks[0]),
                   eqx.nn.BatchNorm(32, "batch", eps=EPS, momentum=MOMENTUM, mode="batch"),
                   eqx.nn.Conv2d(32, 64, 3, key=ks[1]),
                   eqx.nn.BatchNorm(64, "batch", eps=EPS, momentum=MOMENTUM, mode="batch"),
                   eqx.nn.Linear(1600, 128, key=ks[2]), eqx.nn.Linear(128, 10, key=ks[3]),
                   eqx.nn.MaxPool2d(2, 2), eqx.nn.Dropout(RATE))

    m, state = eqx.nn.make_with_state(make)()
    (k1, b1), (k2, b2), (w3, b3), (w4, b4) = ws
    w3 = w3.reshape(5, 5, 64, 128).transpose(2, 0, 1, 3).reshape(1600, 128)
    f = jnp.asarray
    m = eqx.tree_at(
        lambda m: (m.c1.weight, m.c1.bias, m.c2.weight, m.c2.bias, m.d1.weight, m.d1.bias,
                   m.d2.weight, m.d2.bias), m,
        (f(k1.transpose(3, 2, 0, 1)), f(b1.reshape(-1, 1, 1)), f(k2.transpose(3, 2, 0, 1)),
         f(b2.reshape(-1, 1, 1)), f(w3.T), f(b3), f(w4.T), f(b4)))
    return (peers.eqx_partition if how == "jit" else peers.eqx_filter)(m, state=state)


def _haiku(ws):
    hk = peer("haiku")

    def fn(x, train):
        bn = lambda: hk.BatchNorm(True, True, decay_rate=MOMENTUM, eps=EPS)
        conv = lambda n: hk.Conv2D(n, 3, padding="VALID")
        pool = lambda x: hk.max_pool(x, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        drop = lambda x: hk.dropout(hk.next_rng_key(), RATE, x) if train else x
        x = pool(jax.nn.relu(bn()(conv(32)(x), train)))
        x = pool(jax.nn.relu(bn()(conv(64)(x), train)))
        x = drop(hk.Flatten()(x))
        x = drop(jax.nn.relu(hk.Linear(128)(x)))
        return hk.Linear(10)(x)

    t = hk.transform_with_state(fn)
    params, state = t.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), True)
    params = {k: dict(v) for k, v in params.items()}
    for name, (k, b) in zip([n for n in params if "w" in params[n]], ws):
        assert params[name]["w"].shape == k.shape, name
        params[name] = {"w": jnp.asarray(k), "b": jnp.asarray(b)}
    return peers.haiku(t, params, state=state, dropout=True)


def _keras_model(ws):
    keras = peer("keras")
    L = keras.layers
    bn = lambda: L.BatchNormalization(momentum=MOMENTUM, epsilon=EPS)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(32, 3), bn(), L.Activation("relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3), bn(), L.Activation("relu"), L.MaxPooling2D(2), L.Flatten(),
        L.Dropout(RATE), L.Dense(128, activation="relu"), L.Dropout(RATE), L.Dense(10)])
    for layer, (k, b) in zip([l for l in model.layers if hasattr(l, "kernel")], ws):
        layer.kernel.assign(k)
        layer.bias.assign(b)
    return model


def builders(cfg, x, y, dtype="float32"):
    ws = weights()
    if dtype != "float32":
        return {}
    keras = lambda: peer("keras")
    return {
        "hand": lambda: build_hand(ws),
        "jaxlayers": lambda: build_jaxlayers(ws),
        "stax": unavailable("stax's BatchNorm keeps no moving statistics"),
        "linen": lambda: _linen(ws),
        "nnx_split": lambda: peers.nnx_split(_nnx_model(ws), train_kw=True),
        "nnx_jit": lambda: peers.nnx_jit(_nnx_model(ws), train_kw=True),
        "eqx_jit": lambda: _eqx(ws, "jit"),
        "eqx_filter_jit": lambda: _eqx(ws, "filter"),
        "haiku": lambda: _haiku(ws),
        "keras_stateless": lambda: peers.keras_stateless(_keras_model(ws)),
        "keras_fit": lambda: peers.keras_fit(
            _keras_model(ws), x, y,
            loss=keras().losses.SparseCategoricalCrossentropy(from_logits=True)),
    }
