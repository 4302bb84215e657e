"""BatchNormalization + Dropout on the scikit-learn digits (8x8 images, 10 classes).

The model is a small CNN (29k params): ``Conv2D -> BatchNormalization -> relu`` twice with 32
filters, ``MaxPooling2D -> Dropout``, the same once with 64 filters, ``MaxPooling2D -> Dropout``,
then ``GlobalAveragePooling2D -> Dropout -> Dense(10)``.
It is trained with the training step of DESIGN.md section 2 under ``jax.jit``: one forward
pass gives the loss, the gradients and the updated moving statistics.

It shows that
- evaluation with ``train=False`` is deterministic (no rng, moving statistics) and the state
  comes back unchanged;
- ``train=True`` differs: Dropout masks change with the key and BatchNormalization uses the
  batch statistics;
- the moving mean of one channel follows the (noisy, drifting) batch means during training
  (plotted to examples/out/batchnorm_dropout.png).

Run: ``python examples/batchnorm_dropout.py`` (about 35 s on 2 CPU cores, test accuracy ~99%).
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxlayers as jl

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
# Keras' default momentum 0.99 averages the batch statistics over ~100 steps; with 21 steps per
# epoch and weights that move fast early on, the moving statistics then lag the batch ones and
# inference accuracy trails for the first ~20 epochs (try it). 0.9 (~10 steps) tracks them.
MOMENTUM = 0.9


def data():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # (n, 8, 8, 1) in [0, 1]
    y = digits.target.astype(np.int32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def main(epochs: int = 30, batch_size: int = 64, seed: int = 0):
    x_train, x_test, y_train, y_test = data()

    def conv_bn_relu(filters):  # no conv bias: BatchNormalization's beta takes its place
        return (jl.Conv2D(filters, 3, padding="same", use_bias=False),
                jl.BatchNormalization(momentum=MOMENTUM), jl.relu)

    model = jl.serial(
        *conv_bn_relu(32), *conv_bn_relu(32),
        jl.MaxPooling2D(2), jl.Dropout(0.2),                               # (4, 4, 32)
        *conv_bn_relu(64),
        jl.MaxPooling2D(2), jl.Dropout(0.2),                               # (2, 2, 64)
        jl.GlobalAveragePooling2D(), jl.Dropout(0.3),
        jl.Dense(10),
    )
    key, rng = jax.random.split(jax.random.key(seed))
    _, params, state = jl.with_state(model).init(key, (None, 8, 8, 1))
    jl.summary(model, (None, 8, 8, 1))
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)

    def loss_fn(params, state, x, y, rng):
        logits, state = model.apply(params, state, x, rng=rng, train=True)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss + model.penalty(params), state

    @jax.jit
    def step(params, state, opt_state, x, y, rng):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y, rng)
        updates, opt_state = tx.update(grads, opt_state, params)
        return model.constrain(optax.apply_updates(params, updates)), state, opt_state, loss

    predict = jax.jit(lambda p, s, x: model.apply(p, s, x))  # train=False: no rng needed
    predict_train = jax.jit(lambda p, s, x, r: model.apply(p, s, x, rng=r, train=True))

    def accuracy(logits, y):
        return float(np.mean(np.argmax(np.asarray(logits), -1) == y))

    # Channel 0 of the first BatchNormalization (serial index 1): its moving mean after each
    # step, and the batch mean it was fed (recovered from the update rule
    # new = old * momentum + batch * (1 - momentum)).
    trace, batch_means = [], []
    n = len(x_train)
    start = time.perf_counter()
    for epoch in range(epochs):
        rng, perm_key = jax.random.split(rng)
        perm = np.asarray(jax.random.permutation(perm_key, n))
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            rng, sub = jax.random.split(rng)
            old = float(state[1]["moving_mean"][0])
            params, state, opt_state, loss = step(params, state, opt_state, x_train[idx],
                                                  y_train[idx], sub)
            trace.append(float(state[1]["moving_mean"][0]))
            batch_means.append((trace[-1] - MOMENTUM * old) / (1 - MOMENTUM))
        if epoch % 5 == 4 or epoch == epochs - 1:
            acc = accuracy(predict(params, state, x_test)[0], y_test)
            print(f"epoch {epoch + 1:3d}  loss {float(loss):.4f}  test accuracy {acc:.4f}")
    print(f"trained in {time.perf_counter() - start:.1f} s")

    # Inference mode is deterministic and leaves the state alone.
    y1, s1 = predict(params, state, x_test)
    y2, _ = predict(params, state, x_test)
    assert np.array_equal(np.asarray(y1), np.asarray(y2))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(s1),
                                                     jax.tree_util.tree_leaves(state)))
    # Training mode differs from it, and from itself with another key.
    t1, _ = predict_train(params, state, x_test, jax.random.key(1))
    t2, _ = predict_train(params, state, x_test, jax.random.key(2))
    print(f"inference accuracy {accuracy(y1, y_test):.4f} (deterministic: two runs agree "
          f"exactly)")
    print(f"training-mode accuracy {accuracy(t1, y_test):.4f} / {accuracy(t2, y_test):.4f} "
          f"with two keys; max |train - inference| logit gap "
          f"{float(jnp.max(jnp.abs(t1 - y1))):.3f}")
    assert not np.allclose(t1, y1) and not np.allclose(t1, t2)

    os.makedirs(OUT, exist_ok=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(batch_means, lw=0.6, alpha=0.4, color="gray", label="batch mean")
    ax.plot(trace, lw=1.5, label="moving_mean (state)")
    ax.legend(loc="best")
    ax.set_xlabel("training step")
    ax.set_ylabel("channel 0")
    ax.set_title("BatchNormalization (after the first Conv2D): moving mean of channel 0")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(OUT, "batchnorm_dropout.png")
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
    return accuracy(y1, y_test)


if __name__ == "__main__":
    main()
