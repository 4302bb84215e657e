"""The seed's Embedding(1000, 64) -> Flatten -> Dense(1, sigmoid) model, on real text: is a
64-character snippet Python code or English prose?

Data, all shipped with installed packages: English prose from scikit-learn's data set
descriptions (sklearn/datasets/descr/*.rst) and Python code from standard-library modules
(docstrings removed with `ast`, comments dropped by `ast.unparse`). Each example is 64 bytes,
one token per byte (token = byte + 1, so 0 stays free for padding; vocabulary < 1000).

Three steps:
1. The seed's model with a free sequence length (input (None, None)): Flatten cannot know its
   size, and jaxlayers says so at init, naming the layer.
2. The same model with a fixed length (input (None, 64)): trained with optax' Adam.
3. The usual alternative that keeps the length free: Embedding -> GlobalAveragePooling1D ->
   Dense, evaluated on the 64-byte test snippets and on their 32-byte halves.
Writes examples/out/seed_embedding.png (the test accuracies and the 2-D PCA of the learned
byte embeddings of the fixed-length model).
"""
import ast
import glob
import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import sklearn

import jaxlayers as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LENGTH, STEPS, SEED = 64, 300, 0
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
CODE_MODULES = ["argparse", "csv", "json.decoder", "json.encoder", "textwrap", "shlex",
                "calendar", "fractions", "statistics", "heapq", "bisect", "difflib",
                "configparser", "dataclasses", "string", "pprint"]


def prose():
    folder = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "descr")
    texts = [open(f, encoding="utf-8").read() for f in sorted(glob.glob(f"{folder}/*.rst"))]
    return " ".join(" ".join(t.split()) for t in texts)  # one line, single spaces


def code():
    import importlib
    out = []
    for name in CODE_MODULES:
        tree = ast.parse(open(importlib.import_module(name).__file__, encoding="utf-8").read())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        out.append(ast.unparse(tree))
    return "\n".join(out)


def windows(text, length):
    data = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + 1
    n = len(data) // length
    return data[:n * length].reshape(n, length)


def dataset(length, rng):
    a, b = windows(prose(), length), windows(code(), length)
    n = min(len(a), len(b))                             # balanced classes
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(n), np.ones(n)].astype(np.float32)   # 1 = code
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return x[:split], y[:split], x[split:], y[split:]


def train(model, input_shape, x, y, key):
    _, params = model.init(key, input_shape)
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)

    def loss_fn(params, x, y):
        p = jnp.clip(model.apply(params, x)[:, 0], 1e-7, 1 - 1e-7)
        return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for i in range(STEPS):
        key, sub = jax.random.split(key)
        idx = jax.random.choice(sub, len(x), (128,), replace=False)
        params, opt_state, loss = step(params, opt_state, x[idx], y[idx])
    print(f"  trained {STEPS} steps, last batch loss {float(loss):.4f}")
    return params


def accuracy(model, params, x, y):
    return float(jnp.mean((jax.jit(model.apply)(params, x)[:, 0] > 0.5) == (y > 0.5)))


def main():
    t0 = time.time()
    rng = np.random.default_rng(SEED)
    x_train, y_train, x_test, y_test = dataset(LENGTH, rng)
    print(f"{len(x_train)} training and {len(x_test)} test snippets of {LENGTH} bytes "
          f"(half prose, half code)")

    def seed_model():
        return jl.serial(jl.Embedding(1000, 64), jl.Flatten(), jl.Dense(1, activation="sigmoid"),
                         name="seed_embedding")

    print("\n1. the seed's model with a free sequence length:")
    try:
        seed_model().init(jax.random.key(0), (None, None))
    except jl.ShapeError as e:
        print(f"  jl.ShapeError: {e}")

    print(f"\n2. the same model with a fixed length, input (None, {LENGTH}):")
    model = seed_model()
    jl.summary(model, (None, LENGTH))
    params = train(model, (None, LENGTH), x_train, y_train, jax.random.key(SEED))
    acc_fixed = accuracy(model, params, x_test, y_test)
    print(f"  test accuracy {acc_fixed:.3f} (balanced classes: chance is 0.5)")

    print("\n3. Embedding -> GlobalAveragePooling1D -> Dense, any length:")
    pooled = jl.serial(jl.Embedding(1000, 64), jl.GlobalAveragePooling1D(),
                       jl.Dense(1, activation="sigmoid"),
                       name="pooled_embedding")
    jl.summary(pooled, (None, None))
    pparams = train(pooled, (None, None), x_train, y_train, jax.random.key(SEED + 1))
    acc_pool = accuracy(pooled, pparams, x_test, y_test)
    x32 = np.concatenate([x_test[:, :32], x_test[:, 32:]])  # halves of the test snippets
    y32 = np.r_[y_test, y_test]
    acc_pool32 = accuracy(pooled, pparams, x32, y32)
    print(f"  test accuracy {acc_pool:.3f} on {LENGTH}-byte snippets, {acc_pool32:.3f} on "
          f"32-byte snippets (same params)")

    os.makedirs(OUT, exist_ok=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = [f"Flatten\n(len {LENGTH})", f"GAP1D\n(len {LENGTH})", "GAP1D\n(len 32)"]
    bars = a1.bar(labels, [acc_fixed, acc_pool, acc_pool32], color=["tab:blue", "tab:orange",
                                                                     "tab:orange"])
    a1.bar_label(bars, fmt="%.3f")
    a1.axhline(0.5, color="gray", ls="--", lw=0.8)
    a1.set_ylim(0, 1.05)
    a1.set_ylabel("test accuracy")
    a1.set_title("code vs prose, held-out snippets")
    table = np.asarray(params[0]["embeddings"])
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789()[]{}:=._,'\"+-*/<>")
    vecs = table[[ord(c) + 1 for c in chars]]
    vecs = vecs - vecs.mean(0)
    _, _, vt = np.linalg.svd(vecs, full_matrices=False)
    xy = vecs @ vt[:2].T
    a2.scatter(xy[:, 0], xy[:, 1], s=0)
    for (u, v), c in zip(xy, chars):
        a2.annotate(c, (u, v), ha="center", va="center",
                    color="tab:red" if not c.isalnum() else "tab:blue")
    a2.set_title("learned byte embeddings (PCA, Flatten model)")
    fig.tight_layout()
    path = os.path.join(OUT, "seed_embedding.png")
    fig.savefig(path, dpi=100)
    print(f"\nwrote {path}  ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
