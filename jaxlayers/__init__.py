"""jaxlayers: Keras' layer catalogue as pure stax-style ``(init, apply)`` pairs on JAX.

The public names, grouped as Keras groups its layers; `__all__` lists every one of them.
"""
__version__ = "0.1.0"

# The layer contract and the ways to compose layers.
from .core import Layer, Shape, ShapeError, as_layer, inference, named, with_state
from .combinators import (FanInConcat, FanInSum, FanOut, Sequential, branch, parallel, residual,
                          serial)
from .functional import Input, Model, SymbolicTensor

# Core layers.
from .layers.core import Activation, Dense, Identity, InputLayer, Lambda
from .layers.embedding import Embedding, Masking
from .layers.reversible_embedding import ReversibleEmbedding

# Convolution layers.
from .layers.convolutions import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                          Conv3DTranspose, Convolution1D, Convolution1DTranspose, Convolution2D,
                          Convolution2DTranspose, Convolution3D, Convolution3DTranspose,
                          DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D,
                          SeparableConvolution1D, SeparableConvolution2D)

# Pooling layers.
from .layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D,
                             AvgPool2D, AvgPool3D, GlobalAveragePooling1D, GlobalAveragePooling2D,
                             GlobalAveragePooling3D, GlobalAvgPool1D, GlobalAvgPool2D,
                             GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D,
                             GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D,
                             MaxPool2D, MaxPool3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from .layers.adaptive_pooling import (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D,
                                      AdaptiveAveragePooling3D, AdaptiveMaxPooling1D,
                                      AdaptiveMaxPooling2D, AdaptiveMaxPooling3D)

# Attention layers.
from .layers.einsum_dense import EinsumDense
from .layers.multi_head_attention import (GroupedQueryAttention, GroupQueryAttention,
                                          MultiHeadAttention)
from .layers.score_attention import AdditiveAttention, Attention
from .layers.position import PositionEmbedding, RotaryEmbedding, SinePositionEncoding
from .layers.transformer import TransformerDecoder, TransformerEncoder
from .layers.kv_cache import decoder_cache, generate

# Recurrent layers and their wrappers.
from .layers.recurrent import (GRU, LSTM, RNN, Cell, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell,
                               StackedRNNCells, reset_states)
from .layers.wrappers import Bidirectional, TimeDistributed
from .layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D

# Normalization layers.
from .layers.batchnorm import BatchNormalization
from .layers.normalization import (GroupNormalization, LayerNormalization, RMSNormalization,
                                   UnitNormalization)
from .layers.spectral_norm import SpectralNormalization

# Regularization layers.
from .layers.core import Dropout
from .layers.regularization import (ActivityRegularization, AlphaDropout, GaussianDropout,
                                    GaussianNoise, SpatialDropout1D, SpatialDropout2D,
                                    SpatialDropout3D)

# Activation layers and activation functions.
from .layers.activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .activations import (celu, elu, exponential, gelu, glu, hard_shrink, hard_sigmoid,
                          hard_silu, hard_swish, hard_tanh, leaky_relu, linear, log_sigmoid,
                          log_softmax, mish, relu, relu6, selu, sigmoid, silu, soft_shrink,
                          softmax, softplus, softsign, sparse_plus, sparse_sigmoid, sparsemax,
                          squareplus, swish, tanh, tanh_shrink)

# Merging layers.
from .layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                             Subtract)

# Reshaping layers.
from .layers.reshaping import (Cropping1D, Cropping2D, Cropping3D, Flatten, Permute,
                               RepeatVector, Reshape, UpSampling1D, UpSampling2D, UpSampling3D,
                               ZeroPadding1D, ZeroPadding2D, ZeroPadding3D)

# Preprocessing layers (array math) and image augmentation layers.
from .layers.preprocessing import Normalization, Rescaling, adapt
from .layers.encoding import CategoryEncoding, Discretization, IntegerLookup
from .layers.augmentation_geometry import (CenterCrop, RandomCrop, RandomFlip, RandomRotation,
                                           RandomShear, RandomTranslation, RandomZoom, Resizing)
from .layers.augmentation_color import (AutoContrast, RandomBrightness, RandomContrast,
                                        RandomInvert)
from .layers.augmentation_tone import (RandomGrayscale, RandomHue, RandomPosterization,
                                       RandomSaturation, Solarization)
from .layers.augmentation_filter import RandomErasing, RandomGaussianBlur, RandomSharpness
from .layers.augmentation_mix import CutMix, MixUp

# Weight regularizers, constraints and initializers (modules), and their model-level helpers.
from . import activations, constraints, initializers, regularizers
from .constraints import constrain_updates
from .regularizers import activity_loss

# Training, checkpoints, Keras import, and looking at a model.
from . import io, training
from .training import callbacks, losses, metrics
from .training import (EarlyStopping, Ensemble, History, LambdaCallback, ModelCheckpoint,
                       TrainState, ensemble, evaluate, fit, freeze, predict, take,
                       trainable_mask)
from .training import (FSDP, DataParallel, Layout, LayoutMap, TensorParallel,
                       layout_table, param_paths, shard, sharded_init)
from .io import Checkpoint, CheckpointError, from_keras, load, save
from .summary import summary
from .plot import plot_model
from .fold import fold_for_inference

# stax compatibility: `from jaxlayers import stax`.
from . import stax

__all__ = [
    # the contract and composition
    "Layer", "Shape", "ShapeError", "as_layer", "inference", "with_state",
    "serial", "Sequential", "parallel", "branch", "residual", "FanOut", "FanInSum", "FanInConcat",
    "Input", "Model", "SymbolicTensor", "named",
    # core layers
    "InputLayer", "Dense", "Activation", "Identity", "Lambda", "Embedding", "Masking",
    "ReversibleEmbedding",
    # convolution
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "Convolution1D", "Convolution2D", "Convolution3D", "Convolution1DTranspose",
    "Convolution2DTranspose", "Convolution3DTranspose", "SeparableConvolution1D",
    "SeparableConvolution2D",
    # pooling
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalAvgPool1D",
    "GlobalAvgPool2D", "GlobalAvgPool3D", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    # attention
    "EinsumDense", "MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention",
    "Attention", "AdditiveAttention", "PositionEmbedding", "SinePositionEncoding",
    "RotaryEmbedding", "TransformerEncoder", "TransformerDecoder", "decoder_cache", "generate",
    # recurrent
    "RNN", "SimpleRNN", "LSTM", "GRU", "Cell", "SimpleRNNCell", "LSTMCell", "GRUCell",
    "StackedRNNCells", "reset_states", "Bidirectional", "TimeDistributed", "ConvLSTM1D",
    "ConvLSTM2D", "ConvLSTM3D",
    # normalization
    "BatchNormalization", "LayerNormalization", "RMSNormalization", "GroupNormalization",
    "UnitNormalization", "SpectralNormalization",
    # regularization
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    # activation layers and functions
    "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
    "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink",
    # merging
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    # reshaping
    "Flatten", "Reshape", "Permute", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D",
    # preprocessing and augmentation
    "Rescaling", "Normalization", "CategoryEncoding", "Discretization", "IntegerLookup",
    "adapt", "Resizing", "CenterCrop", "RandomCrop", "RandomFlip", "RandomRotation",
    "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomInvert",
    "AutoContrast", "RandomGrayscale", "RandomSaturation", "RandomHue", "Solarization",
    "RandomPosterization", "RandomSharpness", "RandomErasing", "RandomGaussianBlur",
    "RandomShear", "MixUp", "CutMix",
    # weights
    "activations", "initializers", "regularizers", "constraints", "constrain_updates",
    "activity_loss",
    # training, checkpoints, Keras import, inspection
    "training", "losses", "metrics", "callbacks", "fit", "evaluate", "predict", "History",
    "TrainState", "EarlyStopping", "LambdaCallback", "ModelCheckpoint", "Ensemble", "ensemble",
    "freeze", "take", "trainable_mask",
    "shard", "sharded_init", "param_paths", "layout_table", "Layout", "LayoutMap",
    "DataParallel", "FSDP", "TensorParallel",
    "io", "save", "load", "Checkpoint", "CheckpointError", "from_keras",
    "summary", "plot_model", "fold_for_inference",
    # stax compatibility
    "stax",
]
