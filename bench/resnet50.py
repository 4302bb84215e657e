"""ResNet50 from keras.applications (bottleneck residual blocks, BatchNormalization, a 3x3
stride-2 max-pool stem) imported with
`jl.from_keras`: training step and inference against the same Keras model through
`stateless_call`, and the folded model's inference.

See `bench.applications`.
"""
from __future__ import annotations

from . import applications

NAME = "resnet50"
BASE = {"batch": 8, "size": 32}
SCALING = []
REFERENCE = "keras_stateless"
data, builders = applications.workload("ResNet50")
