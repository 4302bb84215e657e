"""A small causal transformer language model on English text that ships with Python.

The text is Python's own help topics (`pydoc_data.topics`, ~0.46 M characters: nothing is
downloaded). The model is keras_hub's recipe on jaxlayers' layers: token embedding plus a
learned position embedding, pre-norm `TransformerDecoder` blocks (causal self-attention), a
final LayerNormalization and a Dense head. It trains with `jl.fit`, reports bits per character
on held-out text (the last 10%), writes a PNG of the loss curves and prints a sample
generated one token at a time from the key/value cache (`jl.generate`: one compiled scan).

Run: python examples/char_transformer.py [--epochs 2] [--minutes 4]   (writes examples/out/char_curves.png)
"""
import argparse
import math
import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from pydoc_data.topics import topics

import jaxlayers as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
LENGTH, WIDTH, HEADS, BLOCKS = 64, 96, 4, 2


def corpus():
    """The help topics as one string, and the vocabulary (rare characters share one id)."""
    text = "\n\n".join(topics[k] for k in sorted(topics))
    chars, counts = np.unique(np.frombuffer(text.encode("utf-32-le"), np.uint32),
                              return_counts=True)
    kept = chars[counts >= 20]
    vocab = ["\0"] + [chr(c) for c in kept]           # id 0: any rare character
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index.get(c, 0) for c in text], np.int32)
    return ids, vocab


def windows(ids, stride):
    """(inputs, next-character targets) of LENGTH steps, starting every `stride` characters."""
    starts = np.arange(0, len(ids) - LENGTH - 1, stride)
    idx = starts[:, None] + np.arange(LENGTH + 1)[None]
    seq = ids[idx]
    return seq[:, :-1], seq[:, 1:]


def build(vocab_size):
    layers = ([jl.Embedding(vocab_size, WIDTH), jl.residual(jl.PositionEmbedding(LENGTH))]
              + [jl.TransformerDecoder(4 * WIDTH, HEADS, dropout=0.1, normalize_first=True)
                 for _ in range(BLOCKS)]
              + [jl.LayerNormalization(epsilon=1e-5), jl.Dense(vocab_size)])
    return layers, jl.serial(*layers)


def cached_step(layers):
    """The model on new tokens from the decoders' caches: ``(params, caches, tokens) ->
    (logits, caches)``, pure, for `jl.generate`."""
    embed, position, *rest = layers
    blocks, (norm, head) = rest[:BLOCKS], rest[BLOCKS:]
    pos = position.children[0] if position.children else position

    def step(params, caches, tokens):
        x = embed.apply(params[0], tokens)
        x = x + pos.apply(params[1][0], x, start_index=caches[0]["index"])
        new = []
        for block, p, cache in zip(blocks, params[2:2 + BLOCKS], caches):
            x, cache = block.apply(p, x, cache=cache)
            new.append(cache)
        x = norm.apply(params[2 + BLOCKS], x)
        return head.apply(params[3 + BLOCKS], x), new
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs (the schedule's length)")
    parser.add_argument("--minutes", type=float, default=4.0,
                        help="stop after the epoch that passes this time budget")
    args = parser.parse_args()

    ids, vocab = corpus()
    split = int(0.9 * len(ids))
    x_train, y_train = windows(ids[:split], LENGTH // 2)
    x_test, y_test = windows(ids[split:], LENGTH)
    freq = np.bincount(ids[:split], minlength=len(vocab)) / split
    unigram = -np.sum(freq[freq > 0] * np.log2(freq[freq > 0]))
    print(f"{len(ids)} characters, vocabulary {len(vocab)}, unigram entropy "
          f"{unigram:.2f} bits/char; {len(x_train)} training windows of {LENGTH}")

    layers, model = build(len(vocab))
    _, params = model.init(jax.random.key(0), (None, LENGTH))
    n_params = sum(a.size for a in jax.tree_util.tree_leaves(params))
    print(f"{n_params} params")

    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    batch, epochs = 32, args.epochs
    steps = epochs * math.ceil(len(x_train) / batch)
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 3e-3, 200, steps),
                                 weight_decay=0.01))
    start = time.time()

    def budget(run, epoch, logs):
        if time.time() - start > 60 * args.minutes:
            run.stop_training = True
    ts, history = jl.fit(model, params, tx, loss, x_train, y_train, epochs=epochs,
                         batch_size=batch, validation_data=(x_test, y_test), rng=1,
                         callbacks=[budget], verbose=2)
    held_out = jl.evaluate(model, ts, x_test, y_test, loss=loss)["loss"] / math.log(2)
    print(f"held-out: {held_out:.3f} bits/char after {len(history.epoch)} epochs in "
          f"{time.time() - start:.0f} s (unigram baseline {unigram:.2f})")

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("loss", "val_loss"):
        ax.plot(np.array(history.epoch) + 1, np.array(history[key]) / math.log(2), label=key)
    ax.axhline(unigram, color="gray", linestyle="--", label="unigram")
    ax.set_xlabel("epoch"), ax.set_ylabel("bits per character"), ax.legend()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "char_curves.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path}")

    prompt_text = "The for statement"
    index = {c: i for i, c in enumerate(vocab)}
    prompt = jnp.array([[index.get(c, 0) for c in prompt_text]], jnp.int32)
    blocks = ts.params[2:2 + BLOCKS]
    caches = [jl.decoder_cache(p, batch=1, max_length=LENGTH) for p in blocks]
    generate = jax.jit(jl.generate, static_argnums=(0, 4))
    tokens, _ = generate(cached_step(layers), ts.params, caches, prompt,
                         LENGTH - prompt.shape[1], rng=jax.random.key(2), temperature=0.8)
    print("sample:", repr(prompt_text + "".join(vocab[int(t)] for t in tokens[0])))


if __name__ == "__main__":
    main()
