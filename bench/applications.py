"""keras.applications models imported with `jl.from_keras` (weights=None, 10 classes, small
inputs): training step (Adam, BatchNormalization in training mode) and inference against
the same Keras model through `stateless_call` in the same kind of jitted step (the
reference row: ratios are to it), plus inference of `jl.fold_for_inference`'s model.

One module per application (`bench.resnet50`, `bench.efficientnetb0`,
`bench.convnexttiny`) calls `workload` here; `bench.mobilenetv2` is the same recipe with
the depthwise lowering forced in an extra row.
"""
from __future__ import annotations

from . import peers
from .common import classification_data, jl_names, peer, stateful, xent
from .timing import Built

CLASSES = 10


def keras_model(app, cfg, **kwargs):
    keras = peer("keras")
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, app)(input_shape=(cfg["size"], cfg["size"], 3),
                                            weights=None, classes=CLASSES,
                                            classifier_activation=None, **kwargs)


def build_jaxlayers(app, cfg, kwargs, folded=False, wrap=lambda apply: apply):
    """The imported model in the shared stateful step; `wrap` wraps each apply before jit
    traces it (MobileNetV2 forces a depthwise lowering with it)."""
    jl = jl_names("from_keras", "fold_for_inference", "with_state")
    imported, params, state = jl.from_keras(keras_model(app, cfg, **kwargs))
    model = jl.with_state(imported)         # ConvNeXt has no BatchNormalization: no state
    built = stateful(wrap(lambda p, s, x, rng, train: model.apply(p, s, x, rng=rng,
                                                                  train=train)),
                     params, state, xent)
    if not folded:
        return built
    import jax
    fmodel, fparams = jl.fold_for_inference(imported, params, state)
    infer = jax.jit(wrap(fmodel.apply))
    return Built(carry=built.carry, train=built.train, infer=lambda _, x: infer(fparams, x),
                 infer_arg=lambda c: None,
                 note="inference of the folded model; train column: the unfolded step")


def workload(app, **kwargs):
    """``(data, builders)`` of the workload for `keras.applications.<app>(**kwargs)`."""
    def data(cfg):
        return classification_data((cfg["batch"], cfg["size"], cfg["size"], 3), CLASSES)

    def builders(cfg, x, y, dtype="float32"):
        if dtype != "float32":
            return {}
        return {
            "jaxlayers": lambda: build_jaxlayers(app, cfg, kwargs),
            "jaxlayers_folded": lambda: build_jaxlayers(app, cfg, kwargs, folded=True),
            "keras_stateless": lambda: peers.keras_stateless(keras_model(app, cfg, **kwargs)),
        }
    return data, builders
