"""MobileNetV2 from keras.applications (alpha 1.0, weights=None, 10 classes) at a small
input size, imported with `jl.from_keras`: training step (Adam, BatchNormalization in
training mode) and inference, against the same Keras model run through
`stateless_call` in the same kind of jitted step (the reference row: ratios are to it).

``jaxlayers_xla`` forces XLA's grouped convolution for the depthwise layers (what every
JAX library runs); ``jaxlayers_folded`` times inference of `jl.fold_for_inference`'s
model (BatchNormalization folded into the convs; its train column is the unfolded step).
"""
from __future__ import annotations

from . import applications, peers
from .depthwise import with_lowering

NAME = "mobilenetv2"
BASE = {"batch": 16, "size": 64}
SCALING = []
REFERENCE = "keras_stateless"
data, _ = applications.workload("MobileNetV2")


def build_jaxlayers(cfg, lowering=None, folded=False):
    return applications.build_jaxlayers("MobileNetV2", cfg, {}, folded,
                                        wrap=lambda apply: with_lowering(apply, lowering))


def builders(cfg, x, y, dtype="float32"):
    if dtype != "float32":
        return {}
    return {
        "jaxlayers": lambda: build_jaxlayers(cfg),
        "jaxlayers_xla": lambda: build_jaxlayers(cfg, "xla"),
        "jaxlayers_folded": lambda: build_jaxlayers(cfg, folded=True),
        "keras_stateless": lambda: peers.keras_stateless(
            applications.keras_model("MobileNetV2", cfg)),
    }
