"""jaxlayers: Keras' layer catalogue as pure stax-style ``(init, apply)`` pairs on JAX."""
from . import activations, initializers
from .activations import (celu, elu, exponential, gelu, glu, hard_shrink, hard_sigmoid,
                          hard_silu, hard_swish, hard_tanh, leaky_relu, linear, log_sigmoid,
                          log_softmax, mish, relu, relu6, selu, sigmoid, silu, soft_shrink,
                          softmax, softplus, softsign, sparse_plus, sparse_sigmoid, sparsemax,
                          squareplus, swish, tanh, tanh_shrink)
from .combinators import FanInConcat, FanInSum, FanOut, branch, parallel, residual, serial
from .core import Layer, Shape, ShapeError, as_layer, with_state
from .layers.core import (Activation, Dense, Dropout, Flatten, Identity, InputLayer, Lambda,
                          Permute, RepeatVector, Reshape)
from .summary import summary

# stax compatibility: `from jaxlayers import stax` (also `jl.stax`)
from . import stax

__version__ = "0.1.0"
