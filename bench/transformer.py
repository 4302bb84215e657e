"""Transformer: (batch, T, 128) -> 2 pre-norm causal decoder blocks (4 heads of 32, MLP 512
relu) -> LayerNorm -> Dense 256, softmax cross-entropy over every position.

A block is ``x + MHA(LN(x))`` (causal) then ``x + Dense(128)(relu(Dense(512)(LN(x))))``,
LayerNorm epsilon 1e-5 everywhere. Every implementation starts from the same weights
(Keras' layout: query/key/value kernels (128, 4, 32), output kernel (4, 32, 128),
converted to each library's), with random biases and LayerNorm scales so that a miswired
one shows in `loss0`.

``hand`` is the floor: einsum projections around `jax.nn.dot_product_attention
(is_causal=True)`. ``jaxlayers`` is a `serial` of two `jl.TransformerDecoder
(normalize_first=True)` blocks (keras_hub's pre-norm decoder); ``jaxlayers_mha`` the same
model as a `serial` of `residual`s of `LayerNormalization`, `MultiHeadAttention
(use_causal_mask=True)` and `Dense`. The peers run their own attention layers: Flax linen
`MultiHeadDotProductAttention`, NNX `MultiHeadAttention` (split/merge), Equinox
`MultiheadAttention` (vmapped, plain jit), Haiku `MultiHeadAttention`, Keras
`MultiHeadAttention(use_causal_mask=True)` through `stateless_call`.

The sweep runs T = 128, 512, 2048 at batch 4 (batch 32 at T=2048 is minutes a step on a
2-core CPU); ``MEMORY`` asks the harness for each compiled step's temporary memory.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import peers
from .common import functional, jl_names, peer, xent

NAME = "transformer"
BASE = {"batch": 32, "seq": 128}
SCALING = [{"batch": 4, "seq": t} for t in (128, 512, 2048)]
MEMORY = True
WIDTH, HEADS, MLP, BLOCKS, CLASSES, EPS = 128, 4, 512, 2, 256, 1e-5
HEAD = WIDTH // HEADS


def data(cfg):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["batch"], cfg["seq"], WIDTH)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=(cfg["batch"], cfg["seq"])).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


def weights(seed=0):
    """The canonical weights, Keras layout: ``{"blocks": [...], "ln": (g, b), "head": (k, b)}``."""
    rng = np.random.default_rng(seed + 3)

    def w(*shape, fan_in):
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    def small(*shape):
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)

    def ln():
        return (1 + small(WIDTH), small(WIDTH))

    blocks = [{"ln1": ln(),
               "q": (w(WIDTH, HEADS, HEAD, fan_in=WIDTH), small(HEADS, HEAD)),
               "k": (w(WIDTH, HEADS, HEAD, fan_in=WIDTH), small(HEADS, HEAD)),
               "v": (w(WIDTH, HEADS, HEAD, fan_in=WIDTH), small(HEADS, HEAD)),
               "o": (w(HEADS, HEAD, WIDTH, fan_in=WIDTH), small(WIDTH)),
               "ln2": ln(),
               "fc1": (w(WIDTH, MLP, fan_in=WIDTH), small(MLP)),
               "fc2": (w(MLP, WIDTH, fan_in=MLP), small(WIDTH))} for _ in range(BLOCKS)]
    return {"blocks": blocks, "ln": ln(), "head": (w(WIDTH, CLASSES, fan_in=WIDTH), small(CLASSES))}


# --------------------------------------------------------------------------- the floor


def layer_norm(x, g, b):
    xf = x.astype(jnp.float32)
    mean = xf.mean(-1, keepdims=True)
    var = jnp.square(xf - mean).mean(-1, keepdims=True)
    return ((xf - mean) * lax.rsqrt(var + EPS) * g + b).astype(x.dtype)


def hand_apply(p, x):
    dt = x.dtype

    def proj(h, wb, eq):
        return jnp.einsum(eq, h, wb[0].astype(dt)) + wb[1].astype(dt)

    for blk in p["blocks"]:
        h = layer_norm(x, *blk["ln1"])
        q, k, v = (proj(h, blk[n], "btd,dnh->btnh") for n in "qkv")
        a = jax.nn.dot_product_attention(q, k, v, is_causal=True)
        x = x + proj(a, blk["o"], "btnh,nhd->btd")
        h = layer_norm(x, *blk["ln2"])
        h = jax.nn.relu(proj(h, blk["fc1"], "btd,df->btf"))
        x = x + proj(h, blk["fc2"], "btf,fd->btd")
    x = layer_norm(x, *p["ln"])
    return proj(x, p["head"], "btd,dc->btc")


# --------------------------------------------------------------------------- jaxlayers


def _kb(wb):
    return {"kernel": jnp.asarray(wb[0]), "bias": jnp.asarray(wb[1])}


def _ln(gb):
    return {"gamma": jnp.asarray(gb[0]), "beta": jnp.asarray(gb[1])}


def _mha(blk):
    return {"query": _kb(blk["q"]), "key": _kb(blk["k"]), "value": _kb(blk["v"]),
            "attention_output": _kb(blk["o"])}


def _same_tree(made, mine):
    """`mine` with the structure and shapes `init` gave (a wrong conversion fails here)."""
    a, b = jax.tree_util.tree_structure(made), jax.tree_util.tree_structure(mine)
    assert a == b, (a, b)
    for m, n in zip(jax.tree_util.tree_leaves(made), jax.tree_util.tree_leaves(mine)):
        assert m.shape == n.shape, (m.shape, n.shape)
    return mine


def build_jaxlayers(ws, seq, cast=None):
    jl = jl_names("TransformerDecoder", "LayerNormalization", "Dense")
    model = jl.serial(*[jl.TransformerDecoder(MLP, HEADS, normalize_first=True,
                                              layer_norm_epsilon=EPS)
                        for _ in range(BLOCKS)],
                      jl.LayerNormalization(epsilon=EPS), jl.Dense(CLASSES))
    _, made = model.init(jax.random.key(0), (None, seq, WIDTH))
    params = tuple({"self_attention": _mha(b), "self_attention_layer_norm": _ln(b["ln1"]),
                    "feedforward_layer_norm": _ln(b["ln2"]),
                    "feedforward_intermediate_dense": _kb(b["fc1"]),
                    "feedforward_output_dense": _kb(b["fc2"])} for b in ws["blocks"])
    params += (_ln(ws["ln"]), _kb(ws["head"]))
    return functional(model.apply, _same_tree(made, params), cast=cast)


def build_jaxlayers_mha(ws, seq, cast=None):
    jl = jl_names("MultiHeadAttention", "LayerNormalization", "Dense", "residual")
    layers, params = [], []
    for b in ws["blocks"]:
        layers += [jl.residual(jl.LayerNormalization(epsilon=EPS),
                               jl.MultiHeadAttention(HEADS, HEAD, use_causal_mask=True)),
                   jl.residual(jl.LayerNormalization(epsilon=EPS),
                               jl.Dense(MLP, activation="relu"), jl.Dense(WIDTH))]
        params += [(_ln(b["ln1"]), _mha(b)), (_ln(b["ln2"]), _kb(b["fc1"]), _kb(b["fc2"]))]
    model = jl.serial(*layers, jl.LayerNormalization(epsilon=EPS), jl.Dense(CLASSES))
    _, made = model.init(jax.random.key(0), (None, seq, WIDTH))
    params = tuple(params) + (_ln(ws["ln"]), _kb(ws["head"]))
    return functional(model.apply, _same_tree(made, params), cast=cast)


# --------------------------------------------------------------------------- Flax


def build_linen(ws, seq):
    nn = peer("flax.linen")

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, mask):
            h = nn.LayerNorm(epsilon=EPS, name="ln1")(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=HEADS, qkv_features=WIDTH,
                                                    out_features=WIDTH, name="attn")(h, mask=mask)
            h = nn.LayerNorm(epsilon=EPS, name="ln2")(x)
            h = nn.relu(nn.Dense(MLP, name="fc1")(h))
            return x + nn.Dense(WIDTH, name="fc2")(h)

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            mask = nn.make_causal_mask(jnp.ones(x.shape[:2]), dtype=jnp.bool_)
            for i in range(BLOCKS):
                x = Block(name=f"block{i}")(x, mask)
            return nn.Dense(CLASSES, name="head")(nn.LayerNorm(epsilon=EPS, name="ln")(x))

    def ln(gb):
        return {"scale": gb[0], "bias": gb[1]}

    def kb(wb):
        return {"kernel": wb[0], "bias": wb[1]}

    params = {f"block{i}": {"ln1": ln(b["ln1"]), "ln2": ln(b["ln2"]),
                            "attn": {"query": kb(b["q"]), "key": kb(b["k"]),
                                     "value": kb(b["v"]), "out": kb(b["o"])},
                            "fc1": kb(b["fc1"]), "fc2": kb(b["fc2"])}
              for i, b in enumerate(ws["blocks"])}
    params.update(ln=ln(ws["ln"]), head=kb(ws["head"]))
    net = Net()
    made = net.init(jax.random.key(0), jnp.zeros((1, seq, WIDTH)))["params"]
    return peers.linen(net, {"params": _same_tree(made, jax.tree_util.tree_map(
        jnp.asarray, params))})


def build_nnx(ws, seq):
    nnx = peer("flax.nnx")

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.ln1 = nnx.LayerNorm(WIDTH, epsilon=EPS, rngs=rngs)
            self.attn = nnx.MultiHeadAttention(num_heads=HEADS, in_features=WIDTH,
                                               qkv_features=WIDTH, out_features=WIDTH,
                                               decode=False, rngs=rngs)
            self.ln2 = nnx.LayerNorm(WIDTH, epsilon=EPS, rngs=rngs)
            self.fc1 = nnx.Linear(WIDTH, MLP, rngs=rngs)
            self.fc2 = nnx.Linear(MLP, WIDTH, rngs=rngs)

        def __call__(self, x, mask):
            x = x + self.attn(self.ln1(x), mask=mask)
            return x + self.fc2(nnx.relu(self.fc1(self.ln2(x))))

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.blocks = nnx.List([Block(rngs) for _ in range(BLOCKS)]) if hasattr(
                nnx, "List") else [Block(rngs) for _ in range(BLOCKS)]
            self.ln = nnx.LayerNorm(WIDTH, epsilon=EPS, rngs=rngs)
            self.head = nnx.Linear(WIDTH, CLASSES, rngs=rngs)

        def __call__(self, x):
            mask = nnx.make_causal_mask(jnp.ones(x.shape[:2]), dtype=jnp.bool_)
            for b in self.blocks:
                x = b(x, mask)
            return self.head(self.ln(x))

    def put(layer, wb, names=("kernel", "bias")):
        for n, a in zip(names, wb):
            getattr(layer, n)[...] = jnp.asarray(a)

    m = Net(nnx.Rngs(0))
    for blk, b in zip(m.blocks, ws["blocks"]):
        put(blk.ln1, b["ln1"], ("scale", "bias"))
        put(blk.ln2, b["ln2"], ("scale", "bias"))
        for layer, n in ((blk.attn.query, "q"), (blk.attn.key, "k"), (blk.attn.value, "v"),
                         (blk.attn.out, "o"), (blk.fc1, "fc1"), (blk.fc2, "fc2")):
            put(layer, b[n])
    put(m.ln, ws["ln"], ("scale", "bias"))
    put(m.head, ws["head"])
    return peers.nnx_split(m)


# --------------------------------------------------------------------------- Equinox, Haiku


def build_eqx(ws, seq):
    """Idiomatic Equinox: unbatched (T, D) modules, `jax.vmap` over the batch and time."""
    eqx = peer("equinox")
    keys = iter(jax.random.split(jax.random.key(0), 8 * BLOCKS + 2))

    class Block(eqx.Module):
        ln1: eqx.nn.LayerNorm
        attn: eqx.nn.MultiheadAttention
        ln2: eqx.nn.LayerNorm
        fc1: eqx.nn.Linear
        fc2: eqx.nn.Linear

        def __call__(self, x, mask):
            h = jax.vmap(self.ln1)(x)
            x = x + self.attn(h, h, h, mask=mask)
            h = jax.vmap(self.ln2)(x)
            return x + jax.vmap(lambda t: self.fc2(jax.nn.relu(self.fc1(t))))(h)

    class Net(eqx.Module):
        blocks: list
        ln: eqx.nn.LayerNorm
        head: eqx.nn.Linear

        def __call__(self, x, state, key, train):
            def one(x):
                mask = jnp.tril(jnp.ones((x.shape[0], x.shape[0]), bool))
                for b in self.blocks:
                    x = b(x, mask)
                return jax.vmap(lambda t: self.head(self.ln(t)))(x)
            return jax.vmap(one)(x), state

    def heads_in(w):            # (D, N, H) -> Linear weight (N*H, D), heads major
        return jnp.asarray(w.reshape(WIDTH, -1).T)

    def linear(i, o, wb, weight=None):
        lin = eqx.nn.Linear(i, o, key=next(keys))
        lin = eqx.tree_at(lambda m: m.weight, lin, jnp.asarray(wb[0].T) if weight is None
                          else weight)
        return eqx.tree_at(lambda m: m.bias, lin, jnp.asarray(wb[1]).reshape(-1))

    def norm(gb):
        m = eqx.nn.LayerNorm(WIDTH, eps=EPS, use_weight=True, use_bias=True)
        m = eqx.tree_at(lambda m: m.weight, m, jnp.asarray(gb[0]))
        return eqx.tree_at(lambda m: m.bias, m, jnp.asarray(gb[1]))

    blocks = []
    for b in ws["blocks"]:
        attn = eqx.nn.MultiheadAttention(HEADS, WIDTH, use_query_bias=True, use_key_bias=True,
                                         use_value_bias=True, use_output_bias=True,
                                         key=next(keys))
        for n, field in (("q", "query_proj"), ("k", "key_proj"), ("v", "value_proj")):
            attn = eqx.tree_at(lambda m, f=field: getattr(m, f), attn,
                               linear(WIDTH, WIDTH, b[n], heads_in(b[n][0])))
        attn = eqx.tree_at(lambda m: m.output_proj, attn,
                           linear(WIDTH, WIDTH, b["o"], jnp.asarray(b["o"][0].reshape(-1, WIDTH).T)))
        blocks.append(Block(norm(b["ln1"]), attn, norm(b["ln2"]),
                            linear(WIDTH, MLP, b["fc1"]), linear(MLP, WIDTH, b["fc2"])))
    net = Net(blocks, norm(ws["ln"]), linear(WIDTH, CLASSES, ws["head"]))
    return peers.eqx_partition(net)


def build_haiku(ws, seq):
    hk = peer("haiku")

    def fwd(x):
        mask = jnp.tril(jnp.ones((1, 1, x.shape[1], x.shape[1]), bool))
        for i in range(BLOCKS):
            h = hk.LayerNorm(-1, True, True, eps=EPS, name=f"ln1_{i}")(x)
            x = x + hk.MultiHeadAttention(HEADS, HEAD, model_size=WIDTH,
                                          w_init=hk.initializers.VarianceScaling(1.0),
                                          name=f"attn_{i}")(h, h, h, mask=mask)
            h = hk.LayerNorm(-1, True, True, eps=EPS, name=f"ln2_{i}")(x)
            h = jax.nn.relu(hk.Linear(MLP, name=f"fc1_{i}")(h))
            x = x + hk.Linear(WIDTH, name=f"fc2_{i}")(h)
        x = hk.LayerNorm(-1, True, True, eps=EPS, name="ln")(x)
        return hk.Linear(CLASSES, name="head")(x)

    def wb(pair):               # heads merged, heads major: (D, N*H), (N*H, D)
        k, b = pair
        k = k.reshape(-1, WIDTH) if k.shape[0] == HEADS and k.ndim == 3 else k.reshape(
            k.shape[0], -1)
        return {"w": k, "b": b.reshape(-1)}

    def ln(gb):
        return {"scale": gb[0], "offset": gb[1]}

    params = {}
    for i, b in enumerate(ws["blocks"]):
        params.update({f"ln1_{i}": ln(b["ln1"]), f"ln2_{i}": ln(b["ln2"]),
                       f"attn_{i}/query": wb(b["q"]), f"attn_{i}/key": wb(b["k"]),
                       f"attn_{i}/value": wb(b["v"]), f"attn_{i}/linear": wb(b["o"]),
                       f"fc1_{i}": wb(b["fc1"]), f"fc2_{i}": wb(b["fc2"])})
    params.update(ln=ln(ws["ln"]), head=wb(ws["head"]))
    t = hk.without_apply_rng(hk.transform(fwd))
    made = t.init(jax.random.key(0), jnp.zeros((1, seq, WIDTH)))
    params = _same_tree(made, jax.tree_util.tree_map(jnp.asarray, params))
    return functional(t.apply, params)


# --------------------------------------------------------------------------- Keras


def build_keras(ws, seq):
    keras = peer("keras")
    L = keras.layers
    inp = keras.Input((seq, WIDTH))
    x, sets = inp, []
    for b in ws["blocks"]:
        ln1, mha, ln2 = L.LayerNormalization(epsilon=EPS), L.MultiHeadAttention(HEADS, HEAD), \
            L.LayerNormalization(epsilon=EPS)
        fc1, fc2 = L.Dense(MLP, activation="relu"), L.Dense(WIDTH)
        h = ln1(x)
        x = L.Add()([x, mha(h, h, use_causal_mask=True)])
        x = L.Add()([x, fc2(fc1(ln2(x)))])
        sets += [(ln1, list(b["ln1"])), (ln2, list(b["ln2"])), (fc1, list(b["fc1"])),
                 (fc2, list(b["fc2"])), (mha, [a for n in "qkvo" for a in b[n]])]
    ln, head = L.LayerNormalization(epsilon=EPS), L.Dense(CLASSES)
    model = keras.Model(inp, head(ln(x)))
    for layer, values in sets + [(ln, list(ws["ln"])), (head, list(ws["head"]))]:
        layer.set_weights(values)
    return peers.keras_stateless(model)


def builders(cfg, x, y, dtype="float32"):
    ws, seq = weights(), cfg["seq"]
    if dtype != "float32":
        cast = jnp.dtype(dtype)
        return {"hand": lambda: functional(hand_apply, ws, cast=cast),
                "jaxlayers": lambda: build_jaxlayers(ws, seq, cast),
                "jaxlayers_mha": lambda: build_jaxlayers_mha(ws, seq, cast)}
    return {
        "hand": lambda: functional(hand_apply, ws),
        "jaxlayers": lambda: build_jaxlayers(ws, seq),
        "jaxlayers_mha": lambda: build_jaxlayers_mha(ws, seq),
        "linen": lambda: build_linen(ws, seq),
        "nnx_split": lambda: build_nnx(ws, seq),
        "eqx_jit": lambda: build_eqx(ws, seq),
        "haiku": lambda: build_haiku(ws, seq),
        "keras_stateless": lambda: build_keras(ws, seq),
    }
