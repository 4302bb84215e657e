"""A small residual network built with the functional API, trained on scikit-learn's digits.

Each 8x8 image is read as 8 rows of 8 pixels: Dense layers act on the last axis, so a
Dense layer here is a 1x8 "convolution" applied to every row (Conv2D lives in the conv
family; this example sticks to Dense / Reshape / Flatten so it runs on the core layers).
Two residual blocks (``x + f(x)`` with `jl.Add`) and a skip path joined by
`jl.Concatenate` feed the classifier. Prints the Keras-style summary (with its
"Connected to" column), trains with optax Adam, and writes the model plot to
examples/out/functional_resnet.png. Runs in well under a minute on a laptop CPU.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxlayers as jl

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def load_data():
    """Digits scaled to [0, 1] as (8, 8) images; a fixed stratified 75/25 split."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    return train_test_split(x, digits.target.astype(np.int32), test_size=0.25,
                            random_state=0, stratify=digits.target)


def residual_block(x, units, name):
    """``relu(x + Dense(Dense(x)))``: the identity skip of a ResNet block."""
    h = jl.named(jl.Dense(units, activation="relu"), f"{name}_a")(x)
    h = jl.named(jl.Dense(units), f"{name}_b")(h)
    return jl.Activation("relu")(jl.Add()([x, h]))


def build_model():
    images = jl.Input((8, 8), name="images")
    stem = jl.named(jl.Dense(32, activation="relu"), "stem")(images)   # per row: (8, 32)
    x = residual_block(stem, 32, "block1")
    x = residual_block(x, 32, "block2")
    x = jl.Concatenate()([jl.Flatten()(x), jl.Flatten()(images)])     # long skip to the pixels
    x = jl.Dropout(0.2)(x)
    logits = jl.named(jl.Dense(10), "classifier")(x)
    return jl.Model(images, logits, name="digits_resnet")


model = build_model()
tx = optax.adam(2e-3)


def loss_fn(params, x, y, rng):
    logits = model.apply(params, x, rng=rng, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@jax.jit
def step(params, opt_state, x, y, rng):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y, rng)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


@jax.jit
def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(model.apply(params, x), -1) == y)


def main(epochs=20, batch_size=32, seed=0):
    x_train, x_test, y_train, y_test = load_data()
    jl.summary(model)
    os.makedirs(OUT, exist_ok=True)
    try:
        path = jl.plot_model(model, to_file=os.path.join(OUT, "functional_resnet.png"))
        print(f"model plot written to {path}")
    except ImportError as e:  # the plot extra is optional
        print(f"no plot: {e}")
    key = jax.random.key(seed)
    _, params = model.init(key)
    print("params of the first block:", {k: v.shape for k, v in params["block1_a"].items()})
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
                  f"test acc {float(accuracy(params, x_test, y_test)):.4f}")
    test_acc = float(accuracy(params, x_test, y_test))
    print(f"final test accuracy: {test_acc:.4f}")
    return test_acc


if __name__ == "__main__":
    assert main() >= 0.95, "the functional ResNet did not reach 95% test accuracy"
