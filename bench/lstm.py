"""LSTM: (batch 64, time, 10) -> LSTM 64 (last output) -> Dense 1, mean squared error.

Weights start in Keras' layout (kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u,),
gates i, f, c, o; forget bias 1) and are converted to each peer's layout where the peer
computes the same function (Keras, Flax linen / NNX, Equinox, Haiku), so first losses agree.

Two floors: ``hand`` is the straightforward `lax.scan` (input matmul inside the step),
``hand_hoisted`` computes the input projection for all steps in one matmul first.
The GRU and SimpleRNN workloads (`bench.gru`, `bench.simple_rnn`) reuse this module with
the cell switched.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import peers
from .common import SEED, functional, jl_names, mse, peer, unavailable

NAME = "lstm"
CELL = "lstm"
UNITS, FEATURES, BATCH = 64, 10, 64
BASE = {"seq": 50}
SCALING = [{"seq": t} for t in (50, 200, 1000)]
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def data(cfg):
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, cfg["seq"], FEATURES)).astype(np.float32)
    y = rng.standard_normal((BATCH, 1)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def weights(cell):
    """Keras-layout weights: {"kernel", "recurrent_kernel", "bias"} and the Dense (w, b)."""
    rng = np.random.default_rng(SEED + 3)
    g = GATES[cell] * UNITS
    lim = np.sqrt(6 / (FEATURES + g))
    k = rng.uniform(-lim, lim, (FEATURES, g)).astype(np.float32)
    q, _ = np.linalg.qr(rng.standard_normal((g, UNITS)))
    rk = q.T.astype(np.float32)                       # orthogonal (u, g)
    if cell == "lstm":
        b = (0.01 * rng.standard_normal(g)).astype(np.float32)
        b[UNITS:2 * UNITS] += 1.0                     # unit_forget_bias
    elif cell == "simple_rnn":
        b = (0.01 * rng.standard_normal(g)).astype(np.float32)
    else:
        b = (0.01 * rng.standard_normal((2, g))).astype(np.float32)
    dw = rng.uniform(-0.3, 0.3, (UNITS, 1)).astype(np.float32)
    db = np.zeros(1, np.float32)
    return {"kernel": k, "recurrent_kernel": rk, "bias": b}, (dw, db)


# --------------------------------------------------------------------------- the floors


def lstm_step(rk, h, c, z):
    z = z + h @ rk
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def gru_step(rk, b1, h, xz):
    """Keras' GRU with reset_after=True; `xz` is x @ kernel + bias[0]."""
    hz = h @ rk + b1
    xz_, xr, xh = jnp.split(xz, 3, axis=-1)
    hz_, hr, hh = jnp.split(hz, 3, axis=-1)
    z = jax.nn.sigmoid(xz_ + hz_)
    r = jax.nn.sigmoid(xr + hr)
    cand = jnp.tanh(xh + r * hh)
    return z * h + (1 - z) * cand


def simple_step(rk, h, xz):
    """Keras' SimpleRNN: ``tanh(x @ kernel + bias + h @ recurrent_kernel)``."""
    return jnp.tanh(xz + h @ rk)


def hand_apply(params, x, cell="lstm", hoist=False):
    rnn, (dw, db) = params
    dt = x.dtype
    k, rk, b = (rnn[n].astype(dt) for n in ("kernel", "recurrent_kernel", "bias"))
    xs = jnp.swapaxes(x, 0, 1)                        # time major
    h0 = jnp.zeros((x.shape[0], UNITS), dt)
    b0, b1 = (b[0], b[1]) if cell == "gru" else (b, None)
    if hoist:
        xs = xs @ k + b0

    def proj(xt):
        return xt if hoist else xt @ k + b0

    if cell == "lstm":
        def step(carry, xt):
            h, c = lstm_step(rk, *carry, proj(xt))
            return (h, c), None
        (h, _), _ = lax.scan(step, (h0, h0), xs)
    else:
        def step(h, xt):
            if cell == "gru":
                return gru_step(rk, b1, h, proj(xt)), None
            return simple_step(rk, h, proj(xt)), None
        h, _ = lax.scan(step, h0, xs)
    return h @ dw.astype(dt) + db.astype(dt)


def build_hand(w, cell, cast=None, hoist=False):
    return functional(lambda p, x: hand_apply(p, x, cell, hoist), w, mse, cast=cast)


# --------------------------------------------------------------------------- jaxlayers


def build_jaxlayers(w, cell, cast=None):
    name = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}[cell]
    jl = jl_names(name)
    model = jl.serial(getattr(jl, name)(UNITS), jl.Dense(1))
    _, params = model.init(jax.random.key(0), (None, None, FEATURES))
    rnn, (dw, db) = w
    mine = ({k: jnp.asarray(v) for k, v in rnn.items()},
            {"kernel": jnp.asarray(dw), "bias": jnp.asarray(db)})
    same = jax.tree_util.tree_map(lambda a, b: a.shape == b.shape, params, mine)
    assert all(jax.tree_util.tree_leaves(same)), "jaxlayers' weight layout is not Keras'"
    return functional(model.apply, mine, mse, cast=cast)


# --------------------------------------------------------------------------- peers


def _split(a, n):
    return np.split(a, n, axis=-1)


def build_linen(w, cell):
    nn = peer("flax.linen")
    rnn, (dw, db) = w
    k, rk, b = rnn["kernel"], rnn["recurrent_kernel"], rnn["bias"]
    if cell == "simple_rnn":   # one bias, on the input Dense
        c = nn.SimpleCell(UNITS)
        p = {"i": {"kernel": k, "bias": b}, "h": {"kernel": rk}}
    elif cell == "lstm":
        c = nn.OptimizedLSTMCell(UNITS)
        ks, rks, bs = _split(k, 4), _split(rk, 4), _split(b, 4)
        p = {}
        for g, kk, rr, bb in zip("ifgo", ks, rks, bs):
            p["i" + g] = {"kernel": kk}
            p["h" + g] = {"kernel": rr, "bias": bb}
    else:
        c = nn.GRUCell(UNITS)
        (kz, kr, kh), (rz, rr, rh) = _split(k, 3), _split(rk, 3)
        (b0z, b0r, b0h), (b1z, b1r, b1h) = _split(b[0], 3), _split(b[1], 3)
        p = {"iz": {"kernel": kz, "bias": b0z + b1z}, "ir": {"kernel": kr, "bias": b0r + b1r},
             "in": {"kernel": kh, "bias": b0h}, "hz": {"kernel": rz}, "hr": {"kernel": rr},
             "hn": {"kernel": rh, "bias": b1h}}

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.RNN(c, name="rnn")(x)[:, -1]
            return nn.Dense(1, name="out")(h)

    params = {"rnn": {"cell": p}, "out": {"kernel": dw, "bias": db}}
    return peers.linen(Net(), {"params": params}, mse)


def _nnx_model(w, cell):
    nnx = peer("flax.nnx")
    rnn, (dw, db) = w

    class Net(nnx.Module):
        def __init__(self, rngs):
            Cell = {"lstm": nnx.OptimizedLSTMCell, "gru": nnx.GRUCell,
                    "simple_rnn": nnx.SimpleCell}[cell]
            self.rnn = nnx.RNN(Cell(FEATURES, UNITS, rngs=rngs))
            self.out = nnx.Linear(UNITS, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(self.rnn(x)[:, -1])

    m = Net(nnx.Rngs(0))
    m.out.kernel[...], m.out.bias[...] = jnp.asarray(dw), jnp.asarray(db)
    if cell == "lstm":   # fused gates i, f, g, o: Keras' layout exactly
        m.rnn.cell.dense_i.kernel[...] = jnp.asarray(rnn["kernel"])
        m.rnn.cell.dense_h.kernel[...] = jnp.asarray(rnn["recurrent_kernel"])
        m.rnn.cell.dense_h.bias[...] = jnp.asarray(rnn["bias"])
        note = ""
    elif cell == "simple_rnn":
        m.rnn.cell.dense_i.kernel[...] = jnp.asarray(rnn["kernel"])
        m.rnn.cell.dense_i.bias[...] = jnp.asarray(rnn["bias"])
        m.rnn.cell.dense_h.kernel[...] = jnp.asarray(rnn["recurrent_kernel"])
        note = ""
    else:
        note = "own init (NNX GRUCell's fused gate order differs)"
    return m, note


def _nnx(w, cell, how):
    m, note = _nnx_model(w, cell)
    built = (peers.nnx_split if how == "split" else peers.nnx_jit)(m, mse)
    built.note = note
    return built


def _eqx_model(w, cell):
    """Equinox's cell under `lax.scan` over time, `jax.vmap` over the batch (idiomatic)."""
    eqx = peer("equinox")
    rnn, (dw, db) = w
    ks = jax.random.split(jax.random.key(0), 2)
    Cell = eqx.nn.LSTMCell if cell == "lstm" else eqx.nn.GRUCell
    c = Cell(FEATURES, UNITS, key=ks[0])
    f = jnp.asarray
    if cell == "lstm":   # weight_ih (4u, in), gates i, f, g, o
        c = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias), c,
                        (f(rnn["kernel"].T), f(rnn["recurrent_kernel"].T), f(rnn["bias"])))
    else:                # gates r, z, n; bias_n is the recurrent candidate bias
        def rzn(a):
            z, r, h = _split(a, 3)
            return np.concatenate([r, z, h], axis=-1)
        b = rnn["bias"]
        bi = rzn(b[0] + np.concatenate([b[1][:2 * UNITS], np.zeros(UNITS, np.float32)]))
        c = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias, c.bias_n), c,
                        (f(rzn(rnn["kernel"]).T), f(rzn(rnn["recurrent_kernel"]).T), f(bi),
                         f(b[1][2 * UNITS:])))
    out = eqx.tree_at(lambda l: (l.weight, l.bias), eqx.nn.Linear(UNITS, 1, key=ks[1]),
                      (f(dw.T), f(db)))

    class Net(eqx.Module):
        cell: eqx.Module
        out: eqx.nn.Linear

        def __call__(self, x, state, key, train):
            def one(seq):
                h0 = jnp.zeros(UNITS, seq.dtype)
                init = (h0, h0) if cell == "lstm" else h0

                def step(carry, xt):
                    return self.cell(xt, carry), None
                carry, _ = lax.scan(step, init, seq)
                return self.out(carry[0] if cell == "lstm" else carry)
            return jax.vmap(one)(x), state

    return Net(c, out)


def _haiku(w, cell):
    hk = peer("haiku")
    rnn, (dw, db) = w
    def Core(units):
        if cell == "simple_rnn":
            return hk.VanillaRNN(units, double_bias=False)
        return (hk.LSTM if cell == "lstm" else hk.GRU)(units)

    def fn(x):
        core = Core(UNITS)
        out, _ = hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)
        return hk.Linear(1)(out[:, -1])

    t = hk.transform(fn)
    params = t.init(jax.random.key(0), jnp.zeros((2, 3, FEATURES)))
    params = {k: dict(v) for k, v in params.items()}
    params["linear"] = {"w": jnp.asarray(dw), "b": jnp.asarray(db)}
    note = ""
    if cell == "simple_rnn":
        params["vanilla_rnn/linear"] = {"w": jnp.asarray(rnn["kernel"]),
                                        "b": jnp.asarray(rnn["bias"])}
        params["vanilla_rnn/linear_1"] = {"w": jnp.asarray(rnn["recurrent_kernel"])}
        note = "relu, not tanh: Haiku's VanillaRNN has a fixed ReLU"
    elif cell == "lstm":   # one Linear over [x, h], gates i, g, f, o, forget bias +1 inside
        def igfo(a):
            i, f, g, o = _split(a, 4)
            return np.concatenate([i, g, f, o], axis=-1)
        b = rnn["bias"].copy()
        b[UNITS:2 * UNITS] -= 1.0
        params["lstm/linear"] = {
            "w": jnp.asarray(igfo(np.concatenate([rnn["kernel"], rnn["recurrent_kernel"]]))),
            "b": jnp.asarray(igfo(b))}
    else:
        note = "own init; Haiku's GRU resets before the recurrent matmul (reset_after=False)"
    built = peers.haiku(t, params, mse)
    built.note = note
    return built


def _keras_model(w, cell):
    keras = peer("keras")
    rnn, (dw, db) = w
    Layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU,
             "simple_rnn": keras.layers.SimpleRNN}[cell]
    model = keras.Sequential([keras.Input((None, FEATURES)), Layer(UNITS), keras.layers.Dense(1)])
    model.set_weights([rnn["kernel"], rnn["recurrent_kernel"], rnn["bias"], dw, db])
    return model


def builders(cfg, x, y, dtype="float32", cell=None):
    cell = cell or CELL
    w = weights(cell)
    if dtype != "float32":
        cast = jnp.dtype(dtype)
        return {"hand": lambda: build_hand(w, cell, cast),
                "hand_hoisted": lambda: build_hand(w, cell, cast, hoist=True),
                "jaxlayers": lambda: build_jaxlayers(w, cell, cast)}
    return {
        "hand": lambda: build_hand(w, cell),
        "hand_hoisted": lambda: build_hand(w, cell, hoist=True),
        "jaxlayers": lambda: build_jaxlayers(w, cell),
        "stax": unavailable("stax has no recurrent layers"),
        "linen": lambda: build_linen(w, cell),
        "nnx_split": lambda: _nnx(w, cell, "split"),
        "nnx_jit": lambda: _nnx(w, cell, "jit"),
        "eqx_jit": (unavailable("Equinox has no SimpleRNN cell") if cell == "simple_rnn"
                    else lambda: peers.eqx_partition(_eqx_model(w, cell), mse)),
        "eqx_filter_jit": (unavailable("Equinox has no SimpleRNN cell") if cell == "simple_rnn"
                           else lambda: peers.eqx_filter(_eqx_model(w, cell), mse)),
        "haiku": lambda: _haiku(w, cell),
        "keras_stateless": lambda: peers.keras_stateless(_keras_model(w, cell), mse),
        "keras_fit": lambda: peers.keras_fit(_keras_model(w, cell), x, y, loss="mse"),
    }
