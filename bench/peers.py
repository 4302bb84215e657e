"""How each peer library is driven, once for every workload.

Each helper takes a model written in that library (by the workload module) and returns a
`Built` with the library's usual fast path: the same Adam, the same loss, a jitted step
with the params and optimizer state in and out (donated), and a jitted inference pass.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .common import functional, peer, stateful, tx, xent
from .timing import Built, Unavailable


# --------------------------------------------------------------------------- Flax linen


def linen(module, variables, loss=xent, *, cast=None, has_state=False, dropout=False):
    """A linen module: `apply` with ``{"params": ...}`` (and ``batch_stats`` / a dropout rng)."""
    if not has_state and not dropout:
        return functional(lambda p, x: module.apply({"params": p}, x), variables["params"],
                          loss, cast=cast)
    stats = variables.get("batch_stats", {})

    def apply(params, state, x, rng, train):
        rngs = {"dropout": rng} if (dropout and train) else {}
        if train:
            out, upd = module.apply({"params": params, "batch_stats": state}, x, train=True,
                                    rngs=rngs, mutable=["batch_stats"])
            return out, upd.get("batch_stats", state)
        return module.apply({"params": params, "batch_stats": state}, x, train=False), state

    return stateful(apply, variables["params"], stats, loss, cast=cast)


# --------------------------------------------------------------------------- Flax NNX


def nnx_split(model, loss=xent, *, cast=None, train_kw=False):
    """NNX's fast path: `nnx.split` once, `nnx.merge` inside a plain `jax.jit`.

    Model and optimizer travel as one pure state pytree (donated); the graph
    definition is closed over. `train_kw` passes ``train=`` to the model call
    (for models with BatchNorm / Dropout that read it).
    """
    nnx = peer("flax.nnx")
    opt = nnx.Optimizer(model, tx(), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    kw = (lambda t: {"train": t}) if train_kw else (lambda t: {})

    def fwd(m, x, t):
        return m(x if cast is None else x.astype(cast), **kw(t))

    def train(state, x, y):
        m, o = nnx.merge(graphdef, state)
        l, g = nnx.value_and_grad(lambda m: loss(fwd(m, x, True), y))(m)
        o.update(m, g)
        return nnx.state((m, o)), l

    def infer(state, x):
        m, _ = nnx.merge(graphdef, state)
        return fwd(m, x, False)

    return Built(carry=state, train=jax.jit(train, donate_argnums=0), infer=jax.jit(infer),
                 infer_arg=lambda c: c)


def nnx_jit(model, loss=xent, *, cast=None, train_kw=False):
    """NNX's default: `nnx.jit` over the stateful model and optimizer objects."""
    nnx = peer("flax.nnx")
    opt = nnx.Optimizer(model, tx(), wrt=nnx.Param)
    kw = (lambda t: {"train": t}) if train_kw else (lambda t: {})

    def fwd(m, x, t):
        return m(x if cast is None else x.astype(cast), **kw(t))

    @nnx.jit
    def step(m, o, x, y):
        l, g = nnx.value_and_grad(lambda m: loss(fwd(m, x, True), y))(m)
        o.update(m, g)
        return l

    @nnx.jit
    def infer(m, x):
        return fwd(m, x, False)

    def train(carry, x, y):
        return carry, step(carry[0], carry[1], x, y)

    return Built(carry=(model, opt), train=train, infer=infer)


# --------------------------------------------------------------------------- Equinox


def eqx_partition(model, loss=xent, *, cast=None, state=None, needs_key=False):
    """Equinox through a plain `jax.jit`: `eqx.partition` once, `eqx.combine` inside.

    `model(x, state, key, train)` is the batched forward (the workload vmaps as it needs);
    with `state` (an `eqx.nn.State`) it returns ``(out, state)``.
    """
    eqx = peer("equinox")
    opt = tx()
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def fwd(params, st, x, key, train):
        m = eqx.combine(params, static)
        return m(x if cast is None else x.astype(cast), st, key, train)

    def loss_fn(params, st, x, y, key):
        out, st = fwd(params, st, x, key, True)
        return loss(out, y), st

    def train(carry, x, y):
        params, st, opt_state, key = carry
        key, sub = jax.random.split(key)
        (l, st), g = jax.value_and_grad(loss_fn, has_aux=True)(params, st, x, y, sub)
        updates, opt_state = opt.update(g, opt_state, params)
        return (eqx.apply_updates(params, updates), st, opt_state, key), l

    def infer(ps, x):
        return fwd(ps[0], ps[1], x, None, False)[0]

    return Built(carry=(params, state, opt.init(params), jax.random.key(1)),
                 train=jax.jit(train, donate_argnums=0), infer=jax.jit(infer),
                 infer_arg=lambda c: (c[0], c[1]))


def eqx_filter(model, loss=xent, *, cast=None, state=None):
    """Equinox's default: `eqx.filter_jit` + `eqx.filter_value_and_grad` on the model."""
    eqx = peer("equinox")
    opt = tx()

    def fwd(m, st, x, key, train):
        return m(x if cast is None else x.astype(cast), st, key, train)

    @eqx.filter_jit(donate="all-except-first")
    def step(batch, m, st, opt_state, key):
        x, y = batch
        key, sub = jax.random.split(key)

        def loss_fn(m):
            out, s = fwd(m, st, x, sub, True)
            return loss(out, y), s
        (l, st2), g = eqx.filter_value_and_grad(loss_fn, has_aux=True)(m)
        updates, opt_state = opt.update(g, opt_state, eqx.filter(m, eqx.is_inexact_array))
        return eqx.apply_updates(m, updates), st2, opt_state, key, l

    @eqx.filter_jit
    def infer(ms, x):
        return fwd(ms[0], ms[1], x, None, False)[0]

    def train(carry, x, y):
        *carry, l = step((x, y), *carry)
        return tuple(carry), l

    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    return Built(carry=(model, state, opt_state, jax.random.key(1)), train=train, infer=infer,
                 infer_arg=lambda c: (c[0], c[1]))


# --------------------------------------------------------------------------- Haiku


def haiku(transformed, params, loss=xent, *, cast=None, state=None, dropout=False):
    """A `hk.transform` / `hk.transform_with_state` function: pure params (and state)."""
    if state is None and not dropout:
        return functional(lambda p, x: transformed.apply(p, None, x), params, loss, cast=cast)
    state = {} if state is None else state

    def apply(params, st, x, rng, train):
        return transformed.apply(params, st, rng, x, train)

    return stateful(apply, params, state, loss, cast=cast)


# --------------------------------------------------------------------------- stax / keras


def stax(apply_fun, params, loss=xent, *, cast=None, dropout=False):
    if not dropout:
        return functional(apply_fun, params, loss, cast=cast)

    def apply(params, state, x, rng, train):
        return apply_fun(params, x, rng=rng, mode="train" if train else "test"), state

    return stateful(apply, params, (), loss, cast=cast)


def keras_stateless(model, loss=xent):
    """Keras 3 (JAX backend): `model.stateless_call` over trainable / non-trainable values."""
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def apply(params, state, x, rng, train):
        return model.stateless_call(params, state, x, training=train)

    return stateful(apply, tv, ntv, loss)


def keras_fit(model, x, y, loss="sparse_categorical_crossentropy"):
    """Keras' own `fit` (jit_compile, one batch per step): seconds for n steps via fit_steps.

    The training data is the one batch repeated, so a step is the same work as elsewhere.
    Inference uses `predict_on_batch`.
    """
    keras = peer("keras")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.get(loss)
                  if isinstance(loss, str) else loss, jit_compile=True)
    xb, yb = np.asarray(x), np.asarray(y)
    cache = {}

    def fit_steps(n):
        if n not in cache:
            cache[n] = (np.concatenate([xb] * n), np.concatenate([yb] * n))
        xs, ys = cache[n]
        t0 = time.perf_counter()
        model.fit(xs, ys, batch_size=len(xb), epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - t0

    return Built(carry=(None,), train=None, infer=lambda _, x: model.predict_on_batch(x),
                 infer_arg=lambda c: None, fit_steps=fit_steps,
                 note="fit(): per-step time from one fit over the repeated batch, "
                      "epoch overhead included")
