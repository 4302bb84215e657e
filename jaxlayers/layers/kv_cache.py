"""Incremental decoding: causal self-attention from a key/value cache, and a generation loop.

A cache is a dict of arrays (a pytree, so it passes through `jit`, `lax.scan` and
`fori_loop`): ``key`` and ``value`` ``(batch, max_length, heads, head_dim)`` and ``index``,
the int32 number of steps already written. `cached_attention` projects the new steps with a
MultiHeadAttention's params, writes their keys and values at ``index`` and attends, causally,
over every step written so far; it gives the same numbers as the full causal pass.
`TransformerDecoder`'s ``apply(..., cache=)`` runs on it; `generate` drives a whole language
model one token at a time inside one compiled `lax.scan`.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .attention import dot_product_attention

__all__ = ["decoder_cache", "cached_attention", "generate"]


def decoder_cache(params, batch: int, max_length: int, dtype=jnp.float32) -> dict:
    """An empty key/value cache for a TransformerDecoder's params (or a
    MultiHeadAttention's): ``{"key", "value": zeros (batch, max_length, heads, head_dim),
    "index": 0}``. Use `dtype` = the dtype the decoder computes in."""
    attn = params.get("self_attention", params) if isinstance(params, dict) else None
    if not isinstance(attn, dict) or "key" not in attn or "value" not in attn:
        raise ValueError("decoder_cache: expected a TransformerDecoder's or a "
                         "MultiHeadAttention's params (a dict with 'self_attention', or with "
                         f"'key' and 'value'), received {type(params).__name__}")
    _, heads, key_dim = attn["key"]["kernel"].shape
    value_dim = attn["value"]["kernel"].shape[-1]
    if batch < 1 or max_length < 1:
        raise ValueError(f"decoder_cache: batch and max_length must be positive, received "
                         f"{batch} and {max_length}")
    return {"key": jnp.zeros((batch, max_length, heads, key_dim), dtype),
            "value": jnp.zeros((batch, max_length, heads, value_dim), dtype),
            "index": jnp.zeros((), jnp.int32)}


def _project(p, x, equation):
    kernel = p["kernel"].astype(x.dtype)
    y = jnp.einsum(equation, x, kernel)
    if "bias" in p:
        bias = p["bias"].astype(x.dtype)
        y = y + bias.reshape((1,) * (y.ndim - bias.ndim) + bias.shape)
    return y


def cached_attention(name, params, x, cache, *, implementation=None):
    """Causal self-attention of the new steps `x` ``(batch, n, dim)`` on the cache, with a
    MultiHeadAttention's `params`: ``(y (batch, n, out), new_cache)``.

    Writes the steps' keys and values at ``cache["index"]``; step ``index + t`` attends to
    steps ``0 .. index + t``. Steps past ``max_length`` cannot be written: their outputs
    are NaN (the index is traced, so this cannot be an error under jit).
    """
    if x.ndim != 3:
        raise ValueError(f"{name}: cached decoding takes (batch, steps, dim) inputs, received "
                         f"shape {x.shape}")
    keys, values, index = cache["key"], cache["value"], cache["index"]
    if keys.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: the cache holds a batch of {keys.shape[0]}, the input has "
                         f"{x.shape[0]}")
    n, length = x.shape[1], keys.shape[1]
    q = _project(params["query"], x, "btd,dnh->btnh")
    k = _project(params["key"], x, "btd,dnh->btnh").astype(keys.dtype)
    v = _project(params["value"], x, "btd,dnh->btnh").astype(values.dtype)
    keys = jax.lax.dynamic_update_slice(keys, k, (0, index, 0, 0))
    values = jax.lax.dynamic_update_slice(values, v, (0, index, 0, 0))
    steps = index + jnp.arange(n)
    mask = (jnp.arange(length)[None, :] <= steps[:, None])[None]        # (1, n, length)
    y, _ = dot_product_attention(q, keys.astype(q.dtype), values.astype(q.dtype), mask,
                                 scale=1.0 / math.sqrt(q.shape[-1]),
                                 implementation=implementation)
    y = jnp.where(index + n <= length, y, jnp.nan)
    y = _project(params["attention_output"], y, "btnh,nhd->btd")
    return y, {"key": keys, "value": values, "index": index + n}


def generate(step, params, cache, prompt, steps: int, *, rng=None, temperature=1.0):
    """Generate `steps` tokens after `prompt` with a cached model step, in one `lax.scan`.

    Args:
      step: ``step(params, cache, tokens (batch, n)) -> (logits (batch, n, vocab), cache)``,
        a pure function that runs the model on new tokens from its caches (it reads the
        position of the first new token from the cache's ``index``).
      params, cache: the model's params and empty caches (any pytrees `step` takes); each
        cache holds at least ``P + steps`` steps (every generated token is written).
      prompt: ``(batch, P)`` int tokens, P >= 1; run in one call of `step` (prefill).
      steps: how many tokens to generate.
      rng: a key to sample with; None picks the most likely token (greedy).
      temperature: divides the logits before sampling (> 0; may be traced).

    Returns ``(tokens (batch, steps), cache)``. Jit the call (e.g. ``jax.jit(generate,
    static_argnums=(0, 4))``) to compile the whole loop once.
    """
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 2 or prompt.shape[1] < 1 or not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise ValueError(f"generate: prompt must be (batch, P) integer tokens with P >= 1, "
                         f"received {prompt.dtype} of shape {prompt.shape}")
    greedy = rng is None
    logits, cache = step(params, cache, prompt)

    def pick(last, key):
        last = last.astype(jnp.float32)
        if greedy:
            return jnp.argmax(last, axis=-1).astype(prompt.dtype)
        return jax.random.categorical(key, last / temperature, axis=-1).astype(prompt.dtype)

    keys = (jax.random.split(rng, steps) if not greedy
            else jnp.zeros((steps, 2), jnp.uint32))

    def body(carry, key):
        last, cache = carry
        token = pick(last, key)
        logits, cache = step(params, cache, token[:, None])
        return (logits[:, -1], cache), token

    (_, cache), tokens = jax.lax.scan(body, (logits[:, -1], cache), keys)
    return tokens.T, cache
