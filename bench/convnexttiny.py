"""ConvNeXtTiny from keras.applications (7x7 depthwise convs, LayerNormalization, GELU,
LayerScale; include_preprocessing=False) imported with
`jl.from_keras`: training step and inference against the same Keras model through
`stateless_call`, and the folded model's inference.

See `bench.applications`.
"""
from __future__ import annotations

from . import applications

NAME = "convnexttiny"
BASE = {"batch": 8, "size": 32}
SCALING = []
REFERENCE = "keras_stateless"
data, builders = applications.workload("ConvNeXtTiny", include_preprocessing=False)
