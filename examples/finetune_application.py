"""Fine-tune an imported keras.applications body: augmentation in front, the body frozen.

Builds Keras' MobileNetV2 locally (random weights: nothing is downloaded here; with internet,
`weights="imagenet"` gives the pretrained body and the same code fine-tunes it), imports it
with `jl.from_keras`, puts an augmentation stack (active only in training) before it, keeps
the body frozen (optax `jl.freeze` + `jl.inference`, so its BatchNormalization statistics stay
too) and trains a new head on scikit-learn's digits, resized to 32x32 RGB by the model itself.

Run: python examples/finetune_application.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import jaxlayers as jl  # noqa: E402


def main():
    digits = load_digits()
    x = np.repeat((digits.images / 16.0)[..., None], 3, axis=-1).astype(np.float32)  # (n, 8, 8, 3)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1200], order[1200:]

    # 1. the body: keras.applications, built locally, imported as a functional jl.Model
    with jax.numpy_rank_promotion("allow"):
        km = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                            include_top=False, weights=None)
    model, params, state = jl.from_keras(km)
    # random weights: the early blocks give the more useful features (with ImageNet weights,
    # keep the whole body: `body, body_params, body_state = model, params, state`)
    body, body_params, body_state = jl.take(model, params, "block_2_add", state)

    # 2. the model: resize + augmentation (train=True only) -> frozen body -> new head. The
    # head standardizes the body's features with a Normalization adapted on them (a random
    # body's features are tiny; with ImageNet weights this step is harmless).
    prepare = [jl.Resizing(32, 32), jl.Rescaling(2.0, offset=-1.0)]
    augment = jl.serial(jl.RandomFlip("horizontal"), jl.RandomRotation(0.05),
                        jl.RandomZoom(0.1))
    features = jl.serial(*prepare, jl.inference(body), jl.Flatten())
    feats, _ = features.apply(((), (), body_params, ()), ((), (), body_state, ()), x[train])
    head = [jl.adapt(jl.Normalization(), feats), jl.Dropout(0.2), jl.Dense(10)]
    net = jl.serial(*prepare, augment, jl.inference(body), jl.Flatten(), *head)
    _, params, state = jl.with_state(net).init(jax.random.key(0), (None, 8, 8, 3))
    params = params[:3] + (body_params,) + params[4:]       # the imported weights
    state = state[:3] + (body_state,) + state[4:]
    trained = tuple(i == len(params) - 1 for i in range(len(params)))   # the last Dense only
    tx = jl.freeze(optax.adam(1e-2), tuple(not t for t in trained))

    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    ts, history = jl.fit(net, params, tx, loss, x[train],
                         y[train], epochs=15, batch_size=64, state=state,
                         metrics=["accuracy"], verbose=0)
    unchanged = all(np.array_equal(a, b) for a, b in
                    zip(jax.tree.leaves(ts.params[3]), jax.tree.leaves(body_params)))
    res = jl.evaluate(net, ts, x[test], y[test], loss=loss,
                      metrics=["accuracy"])
    print(f"head on a frozen MobileNetV2 body (random weights): test accuracy "
          f"{res['accuracy']:.3f} after {len(history.history['loss'])} epochs; body unchanged: "
          f"{unchanged}")
    assert unchanged and res["accuracy"] > 0.6, res


if __name__ == "__main__":
    main()
