"""EfficientNetB0 from keras.applications (MBConv blocks: depthwise convs,
squeeze-and-excitation, swish; its Rescaling and Normalization layers included) imported with
`jl.from_keras`: training step and inference against the same Keras model through
`stateless_call`, and the folded model's inference.

See `bench.applications`.
"""
from __future__ import annotations

from . import applications

NAME = "efficientnetb0"
BASE = {"batch": 8, "size": 32}
SCALING = []
REFERENCE = "keras_stateless"
data, builders = applications.workload("EfficientNetB0")
