"""The transformer floor written several ways, one difference at a time, to find what
makes XLA's compile of the training step slower (``python -m bench.transformer_probe
variants``; docs/bench.md, "Compile time").

Every variant computes the workload's model from the same weights (`transformer.weights`):
the floor's arithmetic with one part swapped for another formulation of the same numbers.

- ``proj``: the attention projections as einsums on Keras' (dim, heads, head_dim) and
  (heads, head_dim, dim) kernels (``einsum``), or as 2-D matrix products on the same
  kernels reshaped, bias added before the heads are split (``matmul``).
- ``attn``: `jax.nn.dot_product_attention` (``xla``); the einsum softmax as Keras and
  jaxlayers write it, the query scaled, masked to -1e9 (``keras``); the same with the
  scores scaled (``keras_scores``); Haiku's, scores scaled, masked to -1e30 (``haiku``).
- ``norm``: the floor's LayerNorm (``hand``); Keras' arithmetic ``x * inv + (beta - mean
  * inv)`` (``keras``); Haiku's ``inv * (x - mean) + offset`` (``haiku``).
- ``layout``: the params as Keras lays them out (``keras``), or the attention kernels
  stored 2-D and their biases flat, as Haiku stores them (``flat``; needs ``proj=matmul``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import transformer as T
from .common import functional


def _norm_hand(x, g, b):
    return T.layer_norm(x, g, b)


def _norm_keras(x, g, b):
    mean, var = jnp.mean(x, -1, keepdims=True), jnp.var(x, -1, keepdims=True)
    inv = lax.rsqrt(var + T.EPS) * g
    return x * inv + (b - mean * inv)


def _norm_haiku(x, g, b):
    mean, var = jnp.mean(x, -1, keepdims=True), jnp.var(x, -1, keepdims=True)
    return g * lax.rsqrt(var + T.EPS) * (x - mean) + b


def _in_einsum(h, wb):
    return jnp.einsum("btd,dnh->btnh", h, wb[0]) + wb[1]


def _in_matmul(h, wb):
    w, b = wb[0].reshape(h.shape[-1], -1), wb[1].reshape(-1)
    return (h @ w + b).reshape(h.shape[:-1] + (T.HEADS, T.HEAD))


def _out_einsum(a, wb):
    return jnp.einsum("btnh,nhd->btd", a, wb[0]) + wb[1]


def _out_matmul(a, wb):
    return a.reshape(a.shape[:2] + (-1,)) @ wb[0].reshape(-1, T.WIDTH) + wb[1]


def _causal(t):
    return jnp.tril(jnp.ones((t, t), bool))[None, None]


def _attn_xla(q, k, v):
    return jax.nn.dot_product_attention(q, k, v, is_causal=True)


def _einsum_softmax(q, k, v, *, scale_scores, fill):
    scale = T.HEAD ** -0.5
    if not scale_scores:
        q = q * jnp.asarray(scale, q.dtype)
    s = jnp.einsum("bsnh,btnh->bnts", k, q, preferred_element_type=jnp.float32)
    if scale_scores:
        s = s * scale
    w = jax.nn.softmax(jnp.where(_causal(q.shape[1]), s, fill), axis=-1)
    return jnp.einsum("bnts,bsnh->btnh", w.astype(v.dtype), v)


def _attn_keras(q, k, v):
    return _einsum_softmax(q, k, v, scale_scores=False, fill=-1e9)


def _attn_keras_scores(q, k, v):
    return _einsum_softmax(q, k, v, scale_scores=True, fill=-1e9)


def _attn_haiku(q, k, v):
    return _einsum_softmax(q, k, v, scale_scores=True, fill=-1e30)


PARTS = {"proj": {"einsum": (_in_einsum, _out_einsum), "matmul": (_in_matmul, _out_matmul)},
         "attn": {"xla": _attn_xla, "keras": _attn_keras, "keras_scores": _attn_keras_scores,
                  "haiku": _attn_haiku},
         "norm": {"hand": _norm_hand, "keras": _norm_keras, "haiku": _norm_haiku},
         "layout": {"keras": None, "flat": None}}
FLOOR = {"proj": "einsum", "attn": "xla", "norm": "hand", "layout": "keras"}

# name -> the parts that differ from the floor
VARIANTS = {
    "floor": {},
    "jl_like": {"attn": "keras", "norm": "keras"},               # jaxlayers before the change
    "jl_like_matmul": {"attn": "keras", "norm": "keras", "proj": "matmul"},
    "jl_like_matmul_scores": {"attn": "keras_scores", "norm": "keras", "proj": "matmul"},
    "jl_like_matmul_hknorm": {"attn": "keras", "norm": "haiku", "proj": "matmul"},
    "hk_like": {"attn": "haiku", "norm": "haiku", "proj": "matmul"},
    "hk_like_flat": {"attn": "haiku", "norm": "haiku", "proj": "matmul", "layout": "flat"},
}


def make_apply(proj="einsum", attn="xla", norm="hand"):
    """``apply(params, x)`` of the workload's model written with the given parts."""
    pin, pout = PARTS["proj"][proj]
    attend, ln = PARTS["attn"][attn], PARTS["norm"][norm]

    def apply(p, x):
        for blk in p["blocks"]:
            h = ln(x, *blk["ln1"])
            q, k, v = (pin(h, blk[n]) for n in "qkv")
            x = x + pout(attend(q, k, v), blk["o"])
            h = ln(x, *blk["ln2"])
            h = jax.nn.relu(h @ blk["fc1"][0] + blk["fc1"][1])
            x = x + h @ blk["fc2"][0] + blk["fc2"][1]
        x = ln(x, *p["ln"])
        return x @ p["head"][0] + p["head"][1]
    return apply


def _flat(ws):
    """The attention kernels 2-D ((dim, heads * head_dim), (heads * head_dim, dim)) and
    their biases flat; `_in_matmul` / `_out_matmul` read both layouts."""
    def flat(wb, out):
        k = wb[0].reshape(-1, T.WIDTH) if out else wb[0].reshape(T.WIDTH, -1)
        return k, wb[1].reshape(-1)
    blocks = [{n: (flat(v, n == "o") if n in "qkvo" else v) for n, v in b.items()}
              for b in ws["blocks"]]
    return {**ws, "blocks": blocks}


def builders(names=None) -> dict:
    """``{name: () -> Built}`` for the named variants (all by default)."""
    ws = T.weights()
    out = {}
    for name in names or VARIANTS:
        parts = {**FLOOR, **VARIANTS[name]}
        layout = parts.pop("layout")
        params = _flat(ws) if layout == "flat" else ws
        out[name] = (lambda a=make_apply(**parts), p=params: functional(a, p))
    return out
