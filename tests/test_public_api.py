"""The public surface: `__all__`, Keras-style docstrings, `name=` and Keras' constructor
arguments on every public layer constructor."""
import inspect
import re
import types

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl

KEY = jax.random.key(0)

# Modules the package imports for itself (not re-exported; a user needs none of them).
INTERNAL_MODULES = {"core", "combinators", "fold", "functional", "graph", "layers", "lookup",
                    "plot"}
PUBLIC_MODULES = [jl, jl.activations, jl.initializers, jl.regularizers, jl.constraints,
                  jl.stax] + [__import__(f"jaxlayers.layers.{m}", fromlist=["_"]) for m in (
    "core", "merging", "pooling", "reshaping", "normalization", "batchnorm", "regularization",
    "activation", "embedding", "args")]


def layer_constructors():
    """Capitalised functions exported by `jaxlayers` from the layer families."""
    return sorted(n for n in jl.__all__ if n[0].isupper() and inspect.isfunction(getattr(jl, n))
                  and getattr(jl, n).__module__.startswith("jaxlayers.layers."))


CONSTRUCTORS = layer_constructors()


def test_all_lists_the_public_names_and_nothing_private():
    for module in PUBLIC_MODULES:
        names = module.__all__
        assert len(names) == len(set(names)), module.__name__
        assert not [n for n in names if n.startswith("_")], module.__name__
        assert not [n for n in names if not hasattr(module, n)], module.__name__
    public = {n for n in dir(jl) if not n.startswith("_")}
    assert public - set(jl.__all__) == INTERNAL_MODULES
    assert all(isinstance(getattr(jl, n), types.ModuleType) for n in INTERNAL_MODULES)
    for name in ("activations", "initializers", "losses", "metrics", "callbacks",
                 "regularizers", "constraints", "stax"):
        assert name in jl.__all__ and isinstance(getattr(jl, name), types.ModuleType)


def test_the_layer_families_are_all_found():
    found = set(layer_constructors())
    assert {"Dense", "Dropout", "MaxPooling2D", "BatchNormalization", "Add", "ReLU",
            "Embedding", "Cropping2D", "Conv2D", "LSTM"} <= found
    assert len(found) > 90


def _args_section(doc):
    match = re.search(r"\n\s*Args:\n(.*?)(\n\s*\n|$)", doc, re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_constructor_has_a_keras_style_docstring(name):
    fn = getattr(jl, name)
    doc = fn.__doc__ or ""
    assert doc.strip() and doc.strip().splitlines()[0].strip(), f"{name}: no summary line"
    args = _args_section(doc)
    assert args, f"{name}: no Args: section"
    for p in inspect.signature(fn).parameters.values():
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            assert re.search(rf"\b{p.name}\b", args), f"{name}: argument {p.name} undocumented"
    assert "Input shape" in doc and "Output shape" in doc, f"{name}: shapes undocumented"


def test_a_constructor_without_a_docstring_is_caught():
    def Bad(units):
        """Something.

        Input shape: any. Output shape: the same.
        """
    assert not _args_section(Bad.__doc__)


# Required arguments to build each constructor once.
REQUIRED = {"units": 2, "rate": 0.5, "activation": "relu", "function": jnp.tanh,
            "target_shape": (2,), "dims": (1,), "n": 2, "axes": 1, "input_dim": 3,
            "output_dim": 2, "stddev": 0.1, "pool_size": 2, "shape": (3,), "scale": 0.5,
            "height": 2, "width": 2, "factor": 0.1, "height_factor": 0.1, "width_factor": 0.1,
            "sequence_length": 4, "intermediate_dim": 4, "num_heads": 2, "output_size": 2,
            "filters": 2, "kernel_size": 3, "equation": "ab,bc->ac", "output_shape": 2,
            "key_dim": 2, "head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1,
            "cell": jl.GRUCell(2), "cells": [jl.GRUCell(2)], "layer": jl.LSTM(2)}
# Keyword arguments a constructor needs (Keras defaults them to None, or the REQUIRED value
# does not fit: RandomPosterization keeps 1 to 8 bits).
NEEDED = {"CategoryEncoding": {"num_tokens": 3}, "Discretization": {"bin_boundaries": [0.0]},
          "IntegerLookup": {"vocabulary": [1, 2]}, "RandomPosterization": {"factor": 4},
          "SpectralNormalization": {"layer": jl.Dense(2)}}


def build(kind, **kwargs):
    fn = getattr(jl, kind)
    required = {p.name: REQUIRED[p.name] for p in inspect.signature(fn).parameters.values()
                if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD}
    if kind == "InputLayer":
        required["shape"] = REQUIRED["shape"]
    required.update(NEEDED.get(kind, {}))
    return fn(**required, **kwargs)


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_name_is_a_keyword_that_sets_the_label(name):
    param = inspect.signature(getattr(jl, name)).parameters["name"]
    assert param.kind is param.KEYWORD_ONLY and param.default is None
    assert build(name, name="block_1").label == "block_1"
    assert build(name).label == ""
    kind = getattr(jl, name).__name__              # an alias names its canonical layer
    with pytest.raises(ValueError, match=rf"{kind}: name must be a non-empty string without "
                                         rf"'/', received 'a/b'"):
        build(name, name="a/b")


def test_named_layers_key_a_functional_model():
    x = jl.Input((3,))
    y = jl.Dense(2, name="head")(jl.Dense(4, name="body")(x))
    _, params = jl.Model(x, y).init(KEY, None)
    assert set(params) == {"body", "head"}


def _keras_arguments(cls):
    """The keywords a user can pass to a Keras layer class: its own and, when it forwards
    **kwargs, the base Layer's."""
    own = inspect.signature(cls.__init__).parameters
    names = [n for n, p in own.items() if n != "self" and p.kind not in (
        p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if any(p.kind is p.VAR_KEYWORD for p in own.values()):
        names += [n for n, p in inspect.signature(keras.layers.Layer.__init__).parameters.items()
                  if n != "self" and p.kind is not p.VAR_KEYWORD]
    return names


SHARED = sorted(n for n in layer_constructors() if isinstance(getattr(keras.layers, n, None), type))


@pytest.mark.parametrize("name", SHARED)
def test_every_keras_argument_is_accepted(name):
    ours = inspect.signature(getattr(jl, name)).parameters
    missing = [a for a in _keras_arguments(getattr(keras.layers, name)) if a not in ours]
    assert not missing, f"{name} lacks Keras' arguments {missing}"


def test_the_walk_finds_a_missing_argument():
    def Dense(units):
        """Dense without Keras' other arguments."""
    assert "use_bias" in _keras_arguments(keras.layers.Dense)
    assert "use_bias" not in inspect.signature(Dense).parameters


@pytest.mark.parametrize("name", [
    "Dense", "Flatten", "BatchNormalization", "Dropout", "Conv2D", "Convolution1DTranspose",
    "SeparableConv1D", "DepthwiseConv2D", "LSTM", "GRUCell", "StackedRNNCells", "RNN",
    "Bidirectional", "TimeDistributed", "EinsumDense", "MultiHeadAttention",
    "GroupQueryAttention", "AdditiveAttention"])
def test_base_arguments_at_keras_defaults_are_accepted_and_others_refused(name):
    kind = getattr(jl, name).__name__              # an alias names its canonical layer
    build(name, trainable=True, dtype="float32", autocast=False)
    build(name, dtype=keras.DTypePolicy("float32"))
    with pytest.raises(ValueError, match=rf"{kind}: trainable=False .*jl.freeze"):
        build(name, trainable=False)
    with pytest.raises(ValueError, match=rf"{kind}: dtype must be None or 'float32'.*bfloat16"):
        build(name, dtype="mixed_bfloat16")
    with pytest.raises(TypeError, match=rf"{kind}: trainable must be True or False"):
        build(name, trainable="no")
    with pytest.raises(TypeError, match=rf"{kind}: autocast must be True or False"):
        build(name, autocast=None)


def test_activity_regularizer_on_any_layer_reports_keras_penalty():
    layer = jl.Flatten(activity_regularizer=jl.regularizers.L2(0.1))
    assert layer.stateful
    _, params, state = layer.init(KEY, (None, 2, 3))
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    y, state = layer.apply(params, state, x, train=True)
    keras_layer = keras.layers.Flatten(activity_regularizer=keras.regularizers.L2(0.1))
    keras_layer(x)
    np.testing.assert_allclose(jl.activity_loss(state), float(keras_layer.losses[0]), rtol=1e-6)
    np.testing.assert_allclose(jl.activity_loss(state), 0.1 * np.sum(x ** 2) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="Flatten: activity_regularizer: Unknown regularizer"):
        jl.Flatten(activity_regularizer="l3")
