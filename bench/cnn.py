"""CNN: (batch, 28, 28, 1) -> Conv 32 3x3 relu -> MaxPool 2 -> Conv 64 3x3 relu -> MaxPool 2
-> Flatten -> Dense 128 relu -> Dense 10, float32, "valid" padding throughout.

All implementations start from the same weights (Keras layout: HWIO kernels, the dense
kernel's rows in (h, w, c) flatten order), so their first losses agree.

Three floors: ``hand`` is the naive one (`lax.reduce_window` max pooling, whose backward
pass is slow on XLA:CPU), ``hand_reshape_pool`` pools by reshape + max (exact for a pool
that tiles its input: stride == size, "valid", the remainder cropped), ``hand_pool_mixed``
runs `reduce_window` forward and the reshape + max gradient backward (a `custom_vjp`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import peers
from .common import classification_data, conv_weights, functional, jl_names, peer

NAME = "cnn"
BASE = {"batch": 64}
SCALING = [{"batch": b} for b in (1, 32, 256, 2048)]
KERNELS = [(3, 3, 1, 32), (3, 3, 32, 64), (5 * 5 * 64, 128), (128, 10)]


def data(cfg):
    return classification_data((cfg["batch"], 28, 28, 1), 10)


def weights():
    return conv_weights(KERNELS)


# --------------------------------------------------------------------------- the floors


def conv(x, w, b):
    y = lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), "VALID",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b.astype(x.dtype)


def pool_window(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def pool_reshape(x):
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


@jax.custom_vjp
def pool_mixed(x):
    """`reduce_window` forward (fastest for inference), reshape + max backward (fastest
    gradient on XLA:CPU); the same gradient as either where the pool tiles the input."""
    return pool_window(x)


def _pool_mixed_fwd(x):
    return pool_window(x), x


def _pool_mixed_bwd(x, g):
    return jax.vjp(pool_reshape, x)[1](g)


pool_mixed.defvjp(_pool_mixed_fwd, _pool_mixed_bwd)


def hand_apply(params, x, pool=pool_window):
    (k1, b1), (k2, b2), (w3, b3), (w4, b4) = params
    x = pool(jax.nn.relu(conv(x, k1, b1)))
    x = pool(jax.nn.relu(conv(x, k2, b2)))
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(x @ w3.astype(x.dtype) + b3.astype(x.dtype))
    return x @ w4.astype(x.dtype) + b4.astype(x.dtype)


def build_hand(ws, cast=None, pool=pool_window):
    return functional(lambda p, x: hand_apply(p, x, pool), tuple(ws), cast=cast)


# --------------------------------------------------------------------------- jaxlayers


def fill(params, ws):
    """Put `ws` (kernel, bias) pairs into the dicts of a params pytree, in order."""
    it = iter(ws)

    def walk(p):
        if isinstance(p, dict) and "kernel" in p:
            k, b = next(it)
            assert p["kernel"].shape == k.shape, (p["kernel"].shape, k.shape)
            return {**p, "kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
        if isinstance(p, (tuple, list)):
            return type(p)(walk(q) for q in p)
        if isinstance(p, dict):
            return {k: walk(v) for k, v in p.items()}
        return p
    out = walk(params)
    assert next(it, None) is None, "not every weight was used"
    return out


def jl_model():
    jl = jl_names("Conv2D", "MaxPooling2D")
    return jl.serial(jl.Conv2D(32, (3, 3), activation="relu"), jl.MaxPooling2D((2, 2)),
                     jl.Conv2D(64, (3, 3), activation="relu"), jl.MaxPooling2D((2, 2)),
                     jl.Flatten(), jl.Dense(128, activation="relu"), jl.Dense(10))


def build_jaxlayers(ws, cast=None):
    model = jl_model()
    _, params = model.init(jax.random.key(0), (None, 28, 28, 1))
    return functional(model.apply, fill(params, ws), cast=cast)


# --------------------------------------------------------------------------- peers


def build_stax(ws):
    stax = peer("jax.example_libraries.stax")
    _, apply = stax.serial(stax.Conv(32, (3, 3)), stax.Relu, stax.MaxPool((2, 2), (2, 2)),
                           stax.Conv(64, (3, 3)), stax.Relu, stax.MaxPool((2, 2), (2, 2)),
                           stax.Flatten, stax.Dense(128), stax.Relu, stax.Dense(10))
    (k1, b1), (k2, b2), d3, d4 = ws
    params = [(k1, b1.reshape(1, 1, 1, -1)), (), (), (k2, b2.reshape(1, 1, 1, -1)), (), (), (),
              d3, (), d4]
    return peers.stax(apply, params)


def _linen_module():
    nn = peer("flax.linen")

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3), padding="VALID")(x)), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(nn.Conv(64, (3, 3), padding="VALID")(x)), (2, 2), (2, 2))
            x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
            return nn.Dense(10)(x)
    return CNN()


def build_linen(ws):
    names = ["Conv_0", "Conv_1", "Dense_0", "Dense_1"]
    return peers.linen(_linen_module(),
                       {"params": {n: {"kernel": k, "bias": b} for n, (k, b) in zip(names, ws)}})


def _nnx_model(ws):
    nnx = peer("flax.nnx")

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(1, 32, (3, 3), padding="VALID", rngs=rngs)
            self.c2 = nnx.Conv(32, 64, (3, 3), padding="VALID", rngs=rngs)
            self.d1 = nnx.Linear(1600, 128, rngs=rngs)
            self.d2 = nnx.Linear(128, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.max_pool(nnx.relu(self.c1(x)), (2, 2), (2, 2))
            x = nnx.max_pool(nnx.relu(self.c2(x)), (2, 2), (2, 2))
            x = x.reshape(x.shape[0], -1)
            return self.d2(nnx.relu(self.d1(x)))

    m = CNN(nnx.Rngs(0))
    for layer, (k, b) in zip((m.c1, m.c2, m.d1, m.d2), ws):
        layer.kernel[...], layer.bias[...] = jnp.asarray(k), jnp.asarray(b)
    return m


def _eqx_model(ws):
    """Idiomatic Equinox: unbatched channels-first modules, `jax.vmap` over the batch.

    The dense kernel's rows are permuted to the (c, h, w) flatten order, so the model
    is the same function as the others.
    """
    eqx = peer("equinox")
    ks = jax.random.split(jax.random.key(0), 4)

    class CNN(eqx.Module):
        c1: eqx.nn.Conv2d
        c2: eqx.nn.Conv2d
        d1: eqx.nn.Linear
        d2: eqx.nn.Linear
        pool: eqx.nn.MaxPool2d

        def __call__(self, x, state, key, train):
            def one(v):
                v = self.pool(jax.nn.relu(self.c1(v)))
                v = self.pool(jax.nn.relu(self.c2(v)))
                return self.d2(jax.nn.relu(self.d1(v.reshape(-1))))
            return jax.vmap(one)(jnp.transpose(x, (0, 3, 1, 2))), state

    (k1, b1), (k2, b2), (w3, b3), (w4, b4) = ws
    w3 = w3.reshape(5, 5, 64, 128).transpose(2, 0, 1, 3).reshape(1600, 128)
    m = CNN(eqx.nn.Conv2d(1, 32, 3, key=ks[0]), eqx.nn.Conv2d(32, 64, 3, key=ks[1]),
            eqx.nn.Linear(1600, 128, key=ks[2]), eqx.nn.Linear(128, 10, key=ks[3]),
            eqx.nn.MaxPool2d(2, 2))
    f = lambda a: jnp.asarray(a)
    return eqx.tree_at(
        lambda m: (m.c1.weight, m.c1.bias, m.c2.weight, m.c2.bias, m.d1.weight, m.d1.bias,
                   m.d2.weight, m.d2.bias), m,
        (f(k1.transpose(3, 2, 0, 1)), f(b1.reshape(-1, 1, 1)), f(k2.transpose(3, 2, 0, 1)),
         f(b2.reshape(-1, 1, 1)), f(w3.T), f(b3), f(w4.T), f(b4)))


def _haiku(ws):
    hk = peer("haiku")

    def fn(x):
        x = hk.max_pool(jax.nn.relu(hk.Conv2D(32, 3, padding="VALID")(x)), (1, 2, 2, 1),
                        (1, 2, 2, 1), "VALID")
        x = hk.max_pool(jax.nn.relu(hk.Conv2D(64, 3, padding="VALID")(x)), (1, 2, 2, 1),
                        (1, 2, 2, 1), "VALID")
        x = jax.nn.relu(hk.Linear(128)(hk.Flatten()(x)))
        return hk.Linear(10)(x)

    t = hk.transform(fn)
    ref = t.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    params = {name: {"w": jnp.asarray(k), "b": jnp.asarray(b)} for name, (k, b) in zip(ref, ws)}
    for name in ref:
        assert ref[name]["w"].shape == params[name]["w"].shape, name
    return peers.haiku(t, params)


def _keras_model(ws):
    keras = peer("keras")
    L = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                              L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"),
                              L.MaxPooling2D(2), L.Flatten(), L.Dense(128, activation="relu"),
                              L.Dense(10)])
    model.set_weights([a for wb in ws for a in wb])
    return model


def builders(cfg, x, y, dtype="float32"):
    ws = weights()
    if dtype != "float32":
        cast = jnp.dtype(dtype)
        return {"hand": lambda: build_hand(ws, cast),
                "hand_reshape_pool": lambda: build_hand(ws, cast, pool_reshape),
                "hand_pool_mixed": lambda: build_hand(ws, cast, pool_mixed),
                "jaxlayers": lambda: build_jaxlayers(ws, cast)}
    keras = lambda: peer("keras")
    return {
        "hand": lambda: build_hand(ws),
        "hand_reshape_pool": lambda: build_hand(ws, pool=pool_reshape),
        "hand_pool_mixed": lambda: build_hand(ws, pool=pool_mixed),
        "jaxlayers": lambda: build_jaxlayers(ws),
        "stax": lambda: build_stax(ws),
        "linen": lambda: build_linen(ws),
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
