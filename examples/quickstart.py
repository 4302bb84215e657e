"""Quickstart: an MLP on scikit-learn's handwritten digits (8x8 images, 10 classes).

Builds the model, prints its summary, trains it with optax Adam, prints loss and
accuracy per epoch and the final test accuracy. Runs in a few seconds on a laptop CPU.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxlayers as jl


def load_data():
    """Digits scaled to [0, 1], flattened to 64 features; a fixed stratified 75/25 split."""
    digits = load_digits()
    x = (digits.images / 16.0).reshape(len(digits.images), -1).astype(np.float32)
    return train_test_split(x, digits.target.astype(np.int32), test_size=0.25,
                            random_state=0, stratify=digits.target)


model = jl.serial(
    jl.InputLayer((64,)),
    jl.Dense(128, activation="relu"),
    jl.Dropout(0.2),
    jl.Dense(64, activation="relu"),
    jl.Dense(10),
)


def loss_fn(params, x, y, rng):
    logits = model.apply(params, x, rng=rng, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


tx = optax.adam(1e-3)


@jax.jit
def step(params, opt_state, x, y, rng):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y, rng)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


@jax.jit
def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(model.apply(params, x), -1) == y)


def main(epochs=30, batch_size=32, seed=0):
    x_train, x_test, y_train, y_test = load_data()
    key = jax.random.key(seed)
    jl.summary(model, (None, 64))
    _, params = model.init(key, (None, 64))
    opt_state = tx.init(params)
    rng = np.random.default_rng(seed)
    n = len(x_train) // batch_size * batch_size  # full batches only: one compiled shape
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))[:n].reshape(-1, batch_size)
        losses = []
        for i, idx in enumerate(order):
            params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx],
                                           jax.random.fold_in(key, epoch * 10_000 + i))
            losses.append(loss)
        if epoch % 5 == 0 or epoch == 1:
            print(f"epoch {epoch:3d}  loss {float(np.mean(losses)):.4f}  "
                  f"train acc {float(accuracy(params, x_train, y_train)):.4f}  "
                  f"test acc {float(accuracy(params, x_test, y_test)):.4f}")
    test_acc = float(accuracy(params, x_test, y_test))
    print(f"final test accuracy: {test_acc:.4f}")
    return test_acc


if __name__ == "__main__":
    assert main() >= 0.95, "quickstart did not reach 95% test accuracy"
