"""MLP: (batch, 784) -> Dense 512 relu -> Dense 512 relu -> Dense 10 (logits), float32.

Every implementation starts from the same weights (`common.dense_weights`), so their
first losses must agree: the benchmark doubles as a check that they compute one model.
The tiny MLP (`bench.tiny_mlp`) reuses this module with (8, 16) -> 16 -> 16 -> 10.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import peers
from .common import classification_data, dense_weights, functional, peer

NAME = "mlp"
IN, HIDDEN, OUT = 784, (512, 512), 10
BASE = {"batch": 128}
SCALING = [{"batch": b} for b in (1, 32, 256, 2048)]


def data(cfg, n_in=IN):
    return classification_data((cfg["batch"], n_in), OUT)


def sizes(n_in=IN, hidden=HIDDEN):
    return (n_in,) + tuple(hidden) + (OUT,)


# --------------------------------------------------------------------------- the floor


def hand_apply(params, x):
    """The hand-written floor: ``relu(x @ W + b)`` per hidden layer, jax.numpy only."""
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w.astype(x.dtype) + b.astype(x.dtype))
    w, b = params[-1]
    return x @ w.astype(x.dtype) + b.astype(x.dtype)


def build_hand(ws, cast=None):
    return functional(hand_apply, tuple((w, b) for w, b in ws), cast=cast)


def hand_dict_apply(params, x):
    """The floor with params as Keras-named dicts (jaxlayers' layout), to separate pytree cost."""
    return hand_apply(tuple((p["kernel"], p["bias"]) for p in params), x)


def build_hand_dict(ws):
    b = functional(hand_dict_apply, jl_params(ws))
    b.note = "hand-written, params as {kernel, bias} dicts"
    return b


# --------------------------------------------------------------------------- jaxlayers


def jl_model(hidden):
    import jaxlayers as jl
    return jl.serial(*[jl.Dense(h, activation="relu") for h in hidden], jl.Dense(OUT))


def jl_params(ws):
    return tuple({"kernel": jnp.asarray(w), "bias": jnp.asarray(b)} for w, b in ws)


def build_jaxlayers(ws, hidden, cast=None):
    model = jl_model(hidden)
    _, params = model.init(jax.random.key(0), (None, ws[0][0].shape[0]))
    mine = jl_params(ws)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(mine)
    return functional(model.apply, mine, cast=cast)


# --------------------------------------------------------------------------- peers


def build_stax(ws):
    stax = peer("jax.example_libraries.stax")
    layers = []
    for w, _ in ws[:-1]:
        layers += [stax.Dense(w.shape[1]), stax.Relu]
    layers.append(stax.Dense(OUT))
    _, apply = stax.serial(*layers)
    params = []
    for w, b in ws[:-1]:
        params += [(w, b), ()]
    params.append(ws[-1])
    return peers.stax(apply, params)


def _linen_module(hidden):
    nn = peer("flax.linen")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for h in hidden:
                x = nn.relu(nn.Dense(h)(x))
            return nn.Dense(OUT)(x)
    return MLP()


def build_linen(ws, hidden):
    module = _linen_module(hidden)
    params = {f"Dense_{i}": {"kernel": w, "bias": b} for i, (w, b) in enumerate(ws)}
    return peers.linen(module, {"params": params})


def _nnx_model(ws):
    nnx = peer("flax.nnx")

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(w.shape[0], w.shape[1], rngs=rngs) for w, _ in ws])

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = nnx.relu(layer(x))
            return self.layers[-1](x)

    model = MLP(nnx.Rngs(0))
    for layer, (w, b) in zip(model.layers, ws):
        layer.kernel[...] = jnp.asarray(w)
        layer.bias[...] = jnp.asarray(b)
    return model


def build_nnx_split(ws):
    return peers.nnx_split(_nnx_model(ws))


def build_nnx_jit(ws):
    return peers.nnx_jit(_nnx_model(ws))


def _eqx_vmapped(ws):
    """The idiomatic Equinox forward: `jax.vmap` of the unbatched `eqx.nn.Linear` calls."""
    eqx = peer("equinox")

    class MLP(eqx.Module):
        layers: list

        def __call__(self, x, state, key, train):
            def one(v):
                for layer in self.layers[:-1]:
                    v = jax.nn.relu(layer(v))
                return self.layers[-1](v)
            return jax.vmap(one)(x), state

    keys = jax.random.split(jax.random.key(0), len(ws))
    layers = [eqx.nn.Linear(w.shape[0], w.shape[1], key=k) for (w, _), k in zip(ws, keys)]
    layers = [eqx.tree_at(lambda l: (l.weight, l.bias), l, (jnp.asarray(w.T), jnp.asarray(b)))
              for l, (w, b) in zip(layers, ws)]
    return MLP(layers)


def build_eqx_jit(ws):
    return peers.eqx_partition(_eqx_vmapped(ws))


def build_eqx_filter(ws):
    return peers.eqx_filter(_eqx_vmapped(ws))


def build_haiku(ws, hidden):
    hk = peer("haiku")

    def fn(x):
        return hk.nets.MLP(list(hidden) + [OUT], name="mlp")(x)

    t = hk.transform(fn)
    params = {("mlp/~/linear_%d" % i): {"w": jnp.asarray(w), "b": jnp.asarray(b)}
              for i, (w, b) in enumerate(ws)}
    ref = t.init(jax.random.key(0), jnp.zeros((1, ws[0][0].shape[0])))
    assert set(ref) == set(params), (set(ref), set(params))
    return peers.haiku(t, params)


def _keras_model(ws, hidden):
    keras = peer("keras")
    model = keras.Sequential([keras.Input((ws[0][0].shape[0],))] +
                             [keras.layers.Dense(h, activation="relu") for h in hidden] +
                             [keras.layers.Dense(OUT)])
    model.set_weights([a for wb in ws for a in wb])
    return model


def build_keras(ws, hidden):
    return peers.keras_stateless(_keras_model(ws, hidden))


def build_keras_fit(ws, hidden, x, y):
    keras = peer("keras")
    return peers.keras_fit(_keras_model(ws, hidden), x, y,
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


# --------------------------------------------------------------------------- registry


def builders(cfg, x, y, n_in=IN, hidden=HIDDEN, dtype="float32"):
    """name -> zero-argument builder, for one configuration."""
    ws = dense_weights(sizes(n_in, hidden))
    if dtype != "float32":
        cast = jnp.dtype(dtype)
        return {"hand": lambda: build_hand(ws, cast),
                "jaxlayers": lambda: build_jaxlayers(ws, hidden, cast)}
    return {
        "hand": lambda: build_hand(ws),
        "jaxlayers": lambda: build_jaxlayers(ws, hidden),
        "stax": lambda: build_stax(ws),
        "linen": lambda: build_linen(ws, hidden),
        "nnx_split": lambda: build_nnx_split(ws),
        "nnx_jit": lambda: build_nnx_jit(ws),
        "eqx_jit": lambda: build_eqx_jit(ws),
        "eqx_filter_jit": lambda: build_eqx_filter(ws),
        "haiku": lambda: build_haiku(ws, hidden),
        "keras_stateless": lambda: build_keras(ws, hidden),
        "keras_fit": lambda: build_keras_fit(ws, hidden, x, y),
    }
