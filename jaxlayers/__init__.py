"""jaxlayers: Keras' layer catalogue as pure stax-style ``(init, apply)`` pairs on JAX."""
from . import activations, initializers
from .activations import (celu, elu, exponential, gelu, glu, hard_shrink, hard_sigmoid,
                          hard_silu, hard_swish, hard_tanh, leaky_relu, linear, log_sigmoid,
                          log_softmax, mish, relu, relu6, selu, sigmoid, silu, soft_shrink,
                          softmax, softplus, softsign, sparse_plus, sparse_sigmoid, sparsemax,
                          squareplus, swish, tanh, tanh_shrink)
from .combinators import FanInConcat, FanInSum, FanOut, branch, parallel, residual, serial
from .core import Layer, Shape, ShapeError, as_layer, inference, with_state
from .layers.core import (Activation, Dense, Dropout, Flatten, Identity, InputLayer, Lambda,
                          Permute, RepeatVector, Reshape)
from .summary import summary

# functional API, merge layers, model plots (issue 6)
from .functional import Input, Model, SymbolicTensor, named
from .layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                             Subtract)
from .plot import plot_model
# Convolution, pooling and spatial reshaping (issue 3).
from .layers.conv import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                          Conv3DTranspose, Convolution1D, Convolution1DTranspose, Convolution2D,
                          Convolution2DTranspose, Convolution3D, Convolution3DTranspose,
                          DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D,
                          SeparableConvolution1D, SeparableConvolution2D)
from .layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D,
                             AvgPool2D, AvgPool3D, GlobalAveragePooling1D, GlobalAveragePooling2D,
                             GlobalAveragePooling3D, GlobalAvgPool1D, GlobalAvgPool2D,
                             GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D,
                             GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D,
                             MaxPool2D, MaxPool3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from .layers.reshaping import (Cropping1D, Cropping2D, Cropping3D, UpSampling1D, UpSampling2D,
                               UpSampling3D, ZeroPadding1D, ZeroPadding2D, ZeroPadding3D)
# recurrent layers, embeddings and masking (issue 4)
from .layers.embedding import Embedding, Masking
from .layers.recurrent import (GRU, LSTM, RNN, Bidirectional, Cell, GRUCell, LSTMCell, SimpleRNN,
                               SimpleRNNCell, TimeDistributed)
# stax compatibility: `from jaxlayers import stax` (also `jl.stax`)
from . import stax

__version__ = "0.1.0"

# training loop, checkpoints, transfer learning, Keras import (issue 7)
from . import io, training
from .training import callbacks, losses, metrics
from .training import (EarlyStopping, Ensemble, History, LambdaCallback, ModelCheckpoint,
                       TrainState, ensemble, evaluate, fit, freeze, predict, take,
                       trainable_mask)
from .io import Checkpoint, CheckpointError, from_keras, load, save
from .fold import fold_for_inference
# Stateful layers, regularization, advanced activations, regularizers and constraints (issue 5).
from . import constraints, regularizers
from .constraints import constrain_updates
from .layers.activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .layers.normalization import (BatchNormalization, GroupNormalization, LayerNormalization,
                                   RMSNormalization, UnitNormalization)
from .layers.regularization import (ActivityRegularization, AlphaDropout, GaussianDropout,
                                    GaussianNoise, SpatialDropout1D, SpatialDropout2D,
                                    SpatialDropout3D)
from .regularizers import activity_loss
