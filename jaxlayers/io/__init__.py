"""Saving and loading: safetensors checkpoints and Keras weight import."""
from .checkpoint import Checkpoint, CheckpointError, load, save
from .keras_import import (CONVERTERS, KerasImportError, from_keras, generic, keras_arguments,
                           keras_weights)
from . import keras_preprocessing  # noqa: F401  (registers the preprocessing converters)
from . import keras_applications  # noqa: F401  (registers the converters of issue 16's layers)
