"""Registry entries: adaptive pooling, ConvLSTM, SpectralNormalization, ReversibleEmbedding."""
import jaxlayers as jl
from tests.cases import Case
from tests.cases.conv import _distinct
from tests.cases.recurrent import ids

CF = "channels_first"

CASES = [
    Case("AdaptiveAveragePooling1D", lambda: jl.AdaptiveAveragePooling1D(3), (None, 7, 2)),
    Case("AdaptiveAveragePooling2D-cf", lambda: jl.AdaptiveAveragePooling2D((2, 3), data_format=CF),
         (None, 2, 5, 4)),
    Case("AdaptiveAveragePooling3D", lambda: jl.AdaptiveAveragePooling3D(2), (None, 3, 4, 3, 2)),
    Case("AdaptiveMaxPooling1D-cf", lambda: jl.AdaptiveMaxPooling1D(4, data_format=CF),
         (None, 2, 6), make_input=_distinct),
    Case("AdaptiveMaxPooling2D", lambda: jl.AdaptiveMaxPooling2D(2), (None, 5, 3, 2),
         make_input=_distinct),
    Case("AdaptiveMaxPooling3D", lambda: jl.AdaptiveMaxPooling3D((1, 2, 2)), (None, 2, 3, 4, 2),
         make_input=_distinct),
]

CASES += [
    Case("ReversibleEmbedding", lambda: jl.ReversibleEmbedding(7, 3), (None, 4),
         make_input=ids, grad_wrt_input=False),
    Case("ReversibleEmbedding-untied-mask", lambda: jl.ReversibleEmbedding(
        7, 2, tie_weights=False, mask_zero=True), (None, 3),
         make_input=ids, grad_wrt_input=False),
]

CASES += [
    Case("SpectralNormalization-Dense", lambda: jl.SpectralNormalization(jl.Dense(3)), (None, 4)),
    # (train=True marks random layers; the training call is tested in test_spectral_norm.py)
    Case("SpectralNormalization-Conv2D-2iter", lambda: jl.SpectralNormalization(
        jl.Conv2D(2, 2), power_iterations=2), (None, 4, 4, 2)),
]

GLOROT = "glorot_uniform"   # orthogonal init under vmap compiles a QR: slow
CASES += [
    Case("ConvLSTM1D-seq-same", lambda: jl.ConvLSTM1D(2, 2, padding="same", return_sequences=True,
                                                      recurrent_initializer=GLOROT), (None, 3, 4, 2)),
    Case("ConvLSTM2D-state-cf", lambda: jl.ConvLSTM2D(2, 2, data_format=CF, return_state=True,
                                                      recurrent_initializer=GLOROT),
         (None, 2, 1, 3, 3)),
    Case("ConvLSTM2D-dropout", lambda: jl.ConvLSTM2D(2, 2, dropout=0.3, recurrent_dropout=0.3,
                                                     recurrent_initializer=GLOROT),
         (None, 2, 3, 3, 1), train=True),
    Case("ConvLSTM3D-backwards", lambda: jl.ConvLSTM3D(1, 2, go_backwards=True,
                                                       recurrent_initializer=GLOROT),
         (None, 2, 2, 3, 2, 1)),
    Case("ConvLSTM1D-stateful", lambda: jl.ConvLSTM1D(2, 2, stateful=True,
                                                      recurrent_initializer=GLOROT),
         (3, 2, 4, 1), carries_state=True),
]
