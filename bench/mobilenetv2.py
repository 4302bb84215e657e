"""MobileNetV2 from keras.applications (alpha 1.0, weights=None, 10 classes) at a small
input size, imported with `jl.from_keras`: training step (Adam, BatchNormalization in
training mode) and inference, against the same Keras model run through
`stateless_call` in the same kind of jitted step (the reference row: ratios are to it).

``jaxlayers_xla`` forces XLA's grouped convolution for the depthwise layers (what every
JAX library runs); ``jaxlayers_folded`` times inference of `jl.fold_for_inference`'s
model (BatchNormalization folded into the convs; its train column is the unfolded step).
"""
from __future__ import annotations

from . import peers
from .common import classification_data, jl_names, peer, stateful, xent
from .timing import Built

NAME = "mobilenetv2"
BASE = {"batch": 16, "size": 64}
SCALING = []
REFERENCE = "keras_stateless"
CLASSES = 10


def data(cfg):
    return classification_data((cfg["batch"], cfg["size"], cfg["size"], 3), CLASSES)


def keras_model(cfg):
    keras = peer("keras")
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(input_shape=(cfg["size"], cfg["size"], 3),
                                          weights=None, classes=CLASSES,
                                          classifier_activation=None)


def _with_lowering(apply, lowering):
    from jaxlayers.layers import depthwise

    def run(*args, **kwargs):     # the lowering is chosen when jit traces this
        saved, depthwise.LOWERING = depthwise.LOWERING, lowering
        try:
            return apply(*args, **kwargs)
        finally:
            depthwise.LOWERING = saved
    return run


def build_jaxlayers(cfg, lowering=None, folded=False):
    jl = jl_names("from_keras", "fold_for_inference")
    model, params, state = jl.from_keras(keras_model(cfg))
    apply = _with_lowering(
        lambda p, s, x, rng, train: model.apply(p, s, x, rng=rng, train=train), lowering)
    built = stateful(apply, params, state, xent)
    if not folded:
        return built
    import jax
    fmodel, fparams = jl.fold_for_inference(model, params, state)
    infer = jax.jit(_with_lowering(fmodel.apply, lowering))
    return Built(carry=built.carry, train=built.train, infer=lambda _, x: infer(fparams, x),
                 infer_arg=lambda c: None,
                 note="inference of the folded model; train column: the unfolded step")


def builders(cfg, x, y, dtype="float32"):
    if dtype != "float32":
        return {}
    return {
        "jaxlayers": lambda: build_jaxlayers(cfg),
        "jaxlayers_xla": lambda: build_jaxlayers(cfg, "xla"),
        "jaxlayers_folded": lambda: build_jaxlayers(cfg, folded=True),
        "keras_stateless": lambda: peers.keras_stateless(keras_model(cfg)),
    }
