"""The seed model: InputLayer (10,) -> Dense 32 relu -> Dense 1 sigmoid.

Trained on scikit-learn's breast-cancer data (569 tumours, 30 measurements each),
standardised and reduced to its first 10 principal components (both fitted on the
training split only), predicting malignant (0) or benign (1). Prints the summary (352 + 33 = 385 parameters), the
shapes of the first Dense layer's kernel and bias, and the test accuracy.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

import jaxlayers as jl

model = jl.serial(
    jl.InputLayer((10,)),
    jl.Dense(32, activation="relu"),
    jl.Dense(1, activation="sigmoid"),
)


def load_data():
    data = load_breast_cancer()
    x, y = data.data, data.target.astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                        stratify=data.target)
    mean, std = x_train.mean(0), x_train.std(0)
    pca = PCA(n_components=10).fit((x_train - mean) / std)
    project = lambda a: pca.transform((a - mean) / std).astype(np.float32)
    return project(x_train), project(x_test), y_train, y_test


def bce(p, y, eps=1e-7):
    """Keras' binary cross-entropy on probabilities."""
    p = jnp.clip(p, eps, 1 - eps)
    return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))


tx = optax.adam(1e-3)


@jax.jit
def step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(lambda p: bce(model.apply(p, x), y))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def accuracy(params, x, y):
    return float(jnp.mean((model.apply(params, x) > 0.5) == (y > 0.5)))


def main(epochs=40, batch_size=32):
    x_train, x_test, y_train, y_test = load_data()
    summary = jl.summary(model, None)
    assert summary.total_params == 385
    _, params = model.init(jax.random.key(0), None)
    print("first Dense kernel:", params[1]["kernel"].shape, "bias:", params[1]["bias"].shape)
    opt_state = tx.init(params)
    rng = np.random.default_rng(0)
    n = len(x_train) // batch_size * batch_size
    for epoch in range(1, epochs + 1):
        for idx in rng.permutation(len(x_train))[:n].reshape(-1, batch_size):
            params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
        if epoch % 10 == 0:
            print(f"epoch {epoch:3d}  loss {float(loss):.4f}  "
                  f"test acc {accuracy(params, x_test, y_test):.4f}")
    acc = accuracy(params, x_test, y_test)
    print(f"final test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    assert main() >= 0.95, "seed_dense did not reach 95% test accuracy"
