"""Optimizers by Keras name: ``jl.fit(model, params, "adam", ...)``.

Each name gives the optax transformation that computes Keras 3's update with Keras'
default hyperparameters (Adam's learning rate 0.001 and epsilon 1e-7, SGD's 0.01, ...),
checked against Keras' own optimizers step by step in the tests.
"""
from __future__ import annotations

import functools

import optax

# name -> (optax constructor, Keras' defaults in optax's argument names)
KERAS_DEFAULTS = {
    "adam": (optax.adam, dict(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-7)),
    "adamw": (optax.adamw, dict(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-7,
                                weight_decay=0.004)),
    "sgd": (optax.sgd, dict(learning_rate=0.01)),
    "rmsprop": (optax.rmsprop, dict(learning_rate=0.001, decay=0.9, eps=1e-7)),
    "adagrad": (optax.adagrad, dict(learning_rate=0.001, initial_accumulator_value=0.1,
                                    eps=1e-7)),
    "adadelta": (optax.adadelta, dict(learning_rate=0.001, rho=0.95, eps=1e-7)),
    "adamax": (optax.adamax, dict(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-7)),
    "lion": (optax.lion, dict(learning_rate=0.001, b1=0.9, b2=0.99, weight_decay=0.0)),
}

# Keras optimizers whose update optax does not compute the same way.
NOT_BY_NAME = {
    "nadam": "Keras' Nadam uses a momentum schedule optax.nadam lacks",
    "ftrl": "optax has no FTRL",
    "adafactor": "Keras' Adafactor differs from optax.adafactor (relative step, clipping)",
}


@functools.lru_cache(maxsize=None)
def _by_name(name):
    make, kwargs = KERAS_DEFAULTS[name]
    return make(**kwargs)


def get(identifier) -> optax.GradientTransformation:
    """An optax transformation from a Keras optimizer name (case-insensitive) or an optax
    ``GradientTransformation`` (returned as it is). The same name always gives the same
    object, so repeated `fit` calls reuse the compiled step."""
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in KERAS_DEFAULTS:
            return _by_name(name)
        reason = NOT_BY_NAME.get(name)
        raise ValueError(
            f"fit: unknown optimizer name {identifier!r}"
            + (f" ({reason}; build it with optax)" if reason else "")
            + f"; names: {', '.join(sorted(KERAS_DEFAULTS))}, or pass an optax "
              f"GradientTransformation such as optax.adam(1e-3)")
    if not (hasattr(identifier, "init") and hasattr(identifier, "update")):
        raise TypeError(f"fit: optimizer must be an optax GradientTransformation or a Keras "
                        f"optimizer name such as 'adam', received {identifier!r}")
    return identifier
