"""`from_keras` converters for the layers of issue 16 and for keras.applications' own pieces.

Registered into `keras_import.CONVERTERS` (Keras layer classes) and
`keras_import.OPERATIONS` (keras.ops calls recorded in a functional graph, such as
MobileNetV3's ``x + 3.0``) when `jaxlayers.io` is imported:

- the catalogue layers: adaptive pooling, `ReversibleEmbedding`, `SpectralNormalization`
  (``vector_u`` goes to the state), `ConvLSTM1D/2D/3D`;
- keras.applications' private classes: ConvNeXt's `LayerScale` (``x * gamma``) and
  `StochasticDepth` (identity in inference, per-example residual drop in training),
  InceptionResNetV2's `CustomScaleLayer` (``inputs[0] + inputs[1] * scale``);
- arithmetic between a tensor and a constant, or two tensors (``add``, ``subtract``,
  ``multiply``, ``divide``, ``true_divide``).
"""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ..core import PASS, Layer, Shape, ShapeError, as_shape, describe
from ..layers import adaptive_pooling as AP
from ..layers import conv_lstm as CL
from ..layers import merging as M
from ..layers import reversible_embedding as RE
from ..layers import spectral_norm as SN
from ..layers.checks import need_rng
from .keras_import import (CONVERTERS, OPERATIONS, KerasImportError, _convert_layer, _where,
                           generic, keras_weights)

__all__ = ["LayerScale", "StochasticDepth", "CustomScaleLayer", "scalar_operation"]


# --------------------------------------------------------------------------- layers


def LayerScale(init_values, projection_dim) -> Layer:
    """ConvNeXt's layer scale: ``x * gamma``, ``gamma`` (projection_dim,) initialised to
    `init_values` (Touvron et al., 2021). Input and output shape: ``(batch, ..., dim)``."""
    name = describe("LayerScale", init_values, projection_dim)

    def init(key, input_shape):
        shape = as_shape(input_shape)
        if shape[-1] != projection_dim:
            raise ShapeError(f"expected a last axis of {projection_dim}, received "
                             f"{shape!r}", name)
        return shape, {"gamma": jnp.full((projection_dim,), init_values, jnp.float32)}

    def apply(params, x, *, rng=None, train=False):
        return x * params["gamma"].astype(x.dtype).reshape((1,) * (x.ndim - 1) + (-1,))

    return Layer(init, apply, name=name, masking=PASS)


def StochasticDepth(drop_path_rate) -> Layer:
    """ConvNeXt's stochastic depth on a residual branch: in training each example's branch
    is dropped with probability `drop_path_rate` (kept ones scaled by 1 / keep); the
    identity in inference. Input and output shape: any ``(batch, ...)``."""
    rate = float(drop_path_rate)
    name = describe("StochasticDepth", rate)

    def init(key, input_shape):
        return as_shape(input_shape), ()

    def apply(params, x, *, rng=None, train=False):
        if not train or rate == 0:
            return x
        need_rng(name, rng)
        keep = 1.0 - rate
        draw = jax.random.uniform(rng, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype)
        return x / keep * jnp.floor(keep + draw)

    return Layer(init, apply, name=name)


def CustomScaleLayer(scale) -> Layer:
    """InceptionResNetV2's residual merge: ``inputs[0] + inputs[1] * scale``.
    Input shape: two equal shapes. Output shape: the same."""
    name = describe("CustomScaleLayer", scale)

    def init(key, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or isinstance(
                input_shape, Shape):
            raise ShapeError(f"expected two inputs, received {input_shape!r}", name)
        return as_shape(input_shape[0]), ()

    def apply(params, xs, *, rng=None, train=False):
        return xs[0] + xs[1] * jnp.asarray(scale, xs[1].dtype)

    return Layer(init, apply, name=name)


# --------------------------------------------------------------------------- operations

_BINARY = {"Add": (jnp.add, M.Add), "Subtract": (jnp.subtract, M.Subtract),
           "Multiply": (jnp.multiply, M.Multiply), "Divide": (jnp.divide, None),
           "TrueDivide": (jnp.true_divide, None)}


def scalar_operation(kind, constant, tensor_first: bool) -> Layer:
    """``x <op> constant`` (or ``constant <op> x``) as a parameter-free layer."""
    fn = _BINARY[kind][0]
    value = float(constant)
    name = f"{kind.lower()}({'x, ' if tensor_first else ''}{value}{'' if tensor_first else ', x'})"

    def init(key, input_shape):
        return as_shape(input_shape), ()

    def apply(params, x, *, rng=None, train=False):
        c = jnp.asarray(value, x.dtype)
        return fn(x, c) if tensor_first else fn(c, x)

    return Layer(init, apply, name=name, masking=PASS)


def _binary_operation(op, args):
    """``(layer, tensor args)`` for a recorded ``a <op> b``: a constant side becomes part
    of the layer; two tensors become the matching merge layer."""
    kind = type(op).__name__
    if len(args) != 2:
        raise KerasImportError(f"Keras operation {kind} ({op.name!r}) with {len(args)} "
                               f"arguments cannot be imported")
    constant = [not hasattr(a, "shape") or np.ndim(a) == 0 and not hasattr(a, "dtype")
                for a in args]
    if constant[0] != constant[1]:
        c = args[0] if constant[0] else args[1]
        if not isinstance(c, numbers.Real):
            raise KerasImportError(f"Keras operation {kind} ({op.name!r}): only a Python "
                                   f"number is accepted as its constant operand, got {c!r}")
        return scalar_operation(kind, c, tensor_first=constant[1]), [args[1] if constant[0]
                                                                      else args[0]]
    merge = _BINARY[kind][1]
    if merge is None or any(constant):
        raise KerasImportError(f"Keras operation {kind} ({op.name!r}) between two tensors "
                               f"cannot be imported")
    return merge(), [list(args)]


# --------------------------------------------------------------------------- converters


def _spectral_normalization(kl):
    inner, params, inner_state = _convert_layer(kl.layer)
    layer = SN.SpectralNormalization(inner, power_iterations=kl.power_iterations)
    state = {"vector_u": np.asarray(kl.vector_u.numpy())}
    if inner.stateful:
        state["layer"] = inner_state
    return layer, params, state


def _layer_scale(kl):
    return (LayerScale(kl.init_values, kl.projection_dim),
            {"gamma": np.asarray(kl.weights[0].numpy())}, None)


def _conv_lstm(ctor):
    def convert(kl):
        return generic(ctor)(kl)
    return convert


_ADAPTIVE = [AP.AdaptiveAveragePooling1D, AP.AdaptiveAveragePooling2D,
             AP.AdaptiveAveragePooling3D, AP.AdaptiveMaxPooling1D, AP.AdaptiveMaxPooling2D,
             AP.AdaptiveMaxPooling3D]

CONVERTERS.update({
    **{ctor.__name__: generic(ctor) for ctor in _ADAPTIVE},
    "ReversibleEmbedding": generic(RE.ReversibleEmbedding),
    "SpectralNormalization": _spectral_normalization,
    **{ctor.__name__: generic(ctor) for ctor in (CL.ConvLSTM1D, CL.ConvLSTM2D, CL.ConvLSTM3D)},
    "LayerScale": _layer_scale,
    "StochasticDepth": lambda kl: (StochasticDepth(kl.drop_path_rate), (), None),
    "CustomScaleLayer": lambda kl: (CustomScaleLayer(kl.scale), (), None),
})
OPERATIONS.update({kind: _binary_operation for kind in _BINARY})

del _where, keras_weights
