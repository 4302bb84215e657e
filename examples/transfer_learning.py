"""Transfer learning from a Keras model: pre-train a Keras MLP on digits 0-4, save it as
.keras, import it with `jl.from_keras`, keep its body frozen (optax + `jl.inference`) and
fine-tune a new head on digits 5-9 from 10 examples per class.

Run: python examples/transfer_learning.py   (writes examples/out/pretrained.keras)
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import jaxlayers as jl  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    r = np.random.default_rng(0)

    # 1. a "pre-trained" Keras model: digits 0-4
    low = y < 5
    km = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                           keras.layers.Dropout(0.1), keras.layers.Dense(32, activation="relu"),
                           keras.layers.Dense(5)])
    km.compile(optimizer=keras.optimizers.Adam(3e-3),
               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
               metrics=["accuracy"])
    with jax.numpy_rank_promotion("allow"):
        km.fit(x[low], y[low], epochs=10, batch_size=32, verbose=0)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "pretrained.keras")
    km.save(path)

    # 2. import it; keep everything up to the 32-unit layer as a frozen feature extractor
    model, params, _ = jl.from_keras(path)
    print("imported:", model.name, [c.name for c in model.children])
    body, body_params = jl.take(model, params, -1)          # drop the 5-class head
    head = jl.Dense(5)
    _, head_params = head.init(jax.random.key(1), (None, 32))
    net = jl.serial(jl.inference(body), head)
    net_params = (body_params, head_params)
    tx = jl.freeze(optax.adam(1e-2), (True, False))         # body frozen, head trained

    # 3. fine-tune on digits 5-9 with 10 labelled examples per class
    high = np.flatnonzero(y >= 5)
    r.shuffle(high)
    few = np.concatenate([high[y[high] == c][:10] for c in range(5, 10)])
    test = np.setdiff1d(high, few)
    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    ts, _ = jl.fit(net, net_params, tx, loss, x[few], y[few] - 5, epochs=60, batch_size=25,
                   metrics=["accuracy"], verbose=0)
    frozen_ok = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(ts.params[0]),
                                                         jax.tree.leaves(body_params)))
    res = jl.evaluate(net, ts, x[test], y[test] - 5, loss=loss, metrics=["accuracy"])
    print(f"digits 5-9 from 50 labels: test accuracy {res['accuracy']:.4f} "
          f"(body unchanged: {frozen_ok})")


if __name__ == "__main__":
    main()
