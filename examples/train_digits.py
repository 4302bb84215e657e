"""Train an MLP on scikit-learn's digits with `jl.fit`: progress bar, early stopping with
the best weights restored, a checkpoint every 5 epochs, and a PNG of the curves.

Run: python examples/train_digits.py   (writes examples/out/digits_curves.png)
"""
import os

import jax
import matplotlib
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxlayers as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.2,
                                                      random_state=0)

    model = jl.serial(jl.Dense(128, activation="relu", kernel_regularizer=jl.regularizers.L2(1e-4)),
                      jl.Dropout(0.2),
                      jl.Dense(64, activation="relu"),
                      jl.Dense(10))
    _, params = model.init(jax.random.key(0), (None, 64))
    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    schedule = optax.cosine_decay_schedule(3e-3, decay_steps=60 * 34)
    callbacks = [
        jl.EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True),
        jl.ModelCheckpoint(os.path.join(OUT, "digits-{epoch:03d}.safetensors"),
                           every_n_epochs=5),
    ]
    ts, history = jl.fit(model, params, optax.adam(schedule), loss, x_train, y_train,
                         epochs=60, batch_size=32, validation_data=(x_val, y_val),
                         metrics=["accuracy"], callbacks=callbacks, rng=1)
    test = jl.evaluate(model, ts, x_test, y_test, loss=loss, metrics=["accuracy"])
    print(f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.4f} "
          f"after {len(history.epoch)} epochs")

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        a.plot(history.epoch, history[key], label=key)
    for key in ("accuracy", "val_accuracy"):
        b.plot(history.epoch, history[key], label=key)
    a.set_xlabel("epoch"), b.set_xlabel("epoch"), a.legend(), b.legend()
    a.set_title("loss"), b.set_title("accuracy")
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "digits_curves.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
