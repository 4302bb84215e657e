"""Train 16 MLPs on scikit-learn's digits at once (one vmapped, jitted step) and compare
each member's test accuracy with the ensemble's (mean of the members' probabilities).

Run: python examples/ensemble.py
"""
import jax
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jaxlayers as jl


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)

    member = jl.serial(jl.Dense(32, activation="relu"), jl.Dropout(0.1), jl.Dense(10))
    ens = jl.ensemble(member, 16)
    _, params = ens.init(jax.random.key(0), (None, 64))      # every leaf: (16, ...)
    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    ts, history = jl.fit(ens, params, optax.adam(3e-3), loss, x_train, y_train, epochs=15,
                         batch_size=64, metrics=["accuracy"], verbose=2)

    logits = jl.predict(ens, ts, x_test)                      # (16, samples, 10)
    members = (logits.argmax(-1) == y_test).mean(axis=1)
    probs = np.asarray(jax.nn.softmax(logits, axis=-1)).mean(axis=0)
    combined = (probs.argmax(-1) == y_test).mean()
    for i, acc in enumerate(members):
        print(f"member {i:2d}: test accuracy {acc:.4f}")
    print(f"members: mean {members.mean():.4f}, best {members.max():.4f}; "
          f"ensemble: {combined:.4f}")


if __name__ == "__main__":
    main()
