"""The seed's CNN, trained on real images: scikit-learn's handwritten digits.

    InputLayer (28, 28, 1) -> Conv2D(32, (3, 3), relu) -> MaxPooling2D((2, 2))
    -> Flatten -> Dense(10, softmax)

The 8x8 digits (1797 of them) are upsampled to 28x28 with bilinear `jax.image.resize`,
standardized with the training set's mean and std, and split 80/20 (stratified). Training
is a plain optax Adam loop over minibatches with a cosine-decayed learning rate, each batch
shifted by a random pixel or less (a light augmentation). Prints the Keras-style summary (320 and 54,090 parameters, as Keras counts
them) and the test accuracy (>= 97%), and writes two PNGs to examples/out/: sample test
predictions and the 32 learned first-layer filters.

Run: python examples/seed_cnn.py   (well under a minute on 2 CPU cores)
"""
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxlayers as jl

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
EPOCHS, BATCH, LR = 15, 32, 2e-3


def load_data():
    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None] / 16.0          # (1797, 8, 8, 1)
    images = np.asarray(jax.image.resize(images, (len(images), 28, 28, 1), "bilinear"))
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int32), test_size=0.2, stratify=digits.target,
        random_state=0)
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def build():
    return jl.serial(
        jl.InputLayer((28, 28, 1)),
        jl.Conv2D(32, (3, 3), activation="relu", padding="valid"),
        jl.MaxPooling2D((2, 2)),
        jl.Flatten(),
        jl.Dense(10, activation="softmax"),
    )


def main():
    t0 = time.time()
    x_train, x_test, y_train, y_test = load_data()
    model = build()
    info = jl.summary(model)
    counts = [sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(r.params))
              for r in info.rows]
    assert counts[1] == 320 and counts[4] == 54090, counts

    _, params = model.init(jax.random.key(0), None)
    steps = EPOCHS * (len(x_train) // BATCH)
    tx = optax.adam(optax.cosine_decay_schedule(LR, steps))   # decays to 0: a stable end
    opt_state = tx.init(params)

    def loss_fn(params, x, y):
        probs = model.apply(params, x, train=True)
        # The model ends in softmax (as the seed does): cross-entropy on its probabilities.
        logp = jnp.log(jnp.clip(probs, 1e-7, 1.0))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    predict = jax.jit(lambda params, x: jnp.argmax(model.apply(params, x), axis=-1))

    rng = np.random.default_rng(0)
    n = len(x_train) // BATCH * BATCH
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x_train))[:n].reshape(-1, BATCH)
        losses = []
        for idx in order:
            shift = tuple(rng.integers(-1, 2, size=2))
            x = np.roll(x_train[idx], shift, axis=(1, 2))
            params, opt_state, loss = step(params, opt_state, x, y_train[idx])
            losses.append(loss)
        acc = float(np.mean(np.asarray(predict(params, x_test)) == y_test))
        print(f"epoch {epoch + 1:2d}  loss {float(np.mean(losses)):.4f}  test accuracy {acc:.4f}")

    pred = np.asarray(predict(params, x_test))
    acc = float(np.mean(pred == y_test))
    print(f"test accuracy: {acc:.4f} on {len(y_test)} images  ({time.time() - t0:.1f} s)")
    save_figures(x_test, y_test, pred, np.asarray(params[1]["kernel"]))
    if acc < 0.97:
        sys.exit(f"test accuracy {acc:.4f} is below 0.97")


def save_figures(x, y, pred, kernel):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(OUT, exist_ok=True)
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.2))
    for i, ax in enumerate(axes.flat):
        ax.imshow(x[i, ..., 0], cmap="gray_r")  # standardized; the colormap rescales
        ax.set_title(f"{pred[i]} ({y[i]})", color="black" if pred[i] == y[i] else "red",
                     fontsize=9)
        ax.axis("off")
    fig.suptitle("Test digits: predicted (true)")
    fig.tight_layout()
    path = os.path.join(OUT, "seed_cnn_predictions.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(4, 8, figsize=(8, 4.4))
    lim = np.abs(kernel).max()
    for i, ax in enumerate(axes.flat):
        ax.imshow(kernel[:, :, 0, i], cmap="RdBu", vmin=-lim, vmax=lim)
        ax.axis("off")
    fig.suptitle("Learned Conv2D filters (3x3, 32)")
    fig.tight_layout()
    path2 = os.path.join(OUT, "seed_cnn_filters.png")
    fig.savefig(path2, dpi=100)
    plt.close(fig)
    print(f"wrote {path} and {path2}")


if __name__ == "__main__":
    main()
