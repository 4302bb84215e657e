"""Registry entries: recurrent layers, embeddings and masking (short sequences)."""
import jax
import jax.numpy as jnp

import jaxlayers as jl
from tests.cases import Case


def ids(key, shape):
    """Integer indices in [0, 7) (0 = padding for mask_zero)."""
    return jax.random.randint(key, shape, 0, 7)


def padded(key, shape):
    """Normal floats with the last time step all zeros (masked by Masking())."""
    x = jax.random.normal(key, shape, jnp.float32)
    return x.at[:, -1].set(0.0)


def MinimalRNNCell(units):
    def init(key, input_dim):
        k1, k2 = jax.random.split(key)
        return {"kernel": jax.random.normal(k1, (input_dim, units)) * 0.5,
                "recurrent_kernel": jax.random.normal(k2, (units, units)) * 0.3}

    def step(params, x_t, states, extras):
        h = jnp.tanh(x_t @ params["kernel"] + states[0] @ params["recurrent_kernel"])
        return h, (h,)

    return jl.Cell(init, step, state_size=units, output_size=units, name="MinimalRNNCell")


SEQ = (None, 3, 2)
FREE = (None, None, 2)
# glorot rather than orthogonal recurrent init: a QR under vmap costs seconds to compile
GLOROT = "glorot_uniform"

CASES = [
    Case("SimpleRNN", lambda: jl.SimpleRNN(3), FREE),
    Case("SimpleRNN-seq-backwards", lambda: jl.SimpleRNN(3, return_sequences=True,
                                                         go_backwards=True), SEQ),
    Case("LSTM", lambda: jl.LSTM(3), FREE),
    Case("LSTM-seq-state", lambda: jl.LSTM(3, return_sequences=True, return_state=True), SEQ),
    Case("LSTM-dropout", lambda: jl.LSTM(3, dropout=0.3, recurrent_dropout=0.3,
                                         return_sequences=True), SEQ, train=True),
    Case("GRU", lambda: jl.GRU(3), FREE),
    Case("GRU-reset_before-state", lambda: jl.GRU(3, reset_after=False, return_state=True),
         SEQ),
    Case("RNN-user-cell", lambda: jl.RNN(MinimalRNNCell(3)), SEQ),
    # The built-in cells run by RNN directly, one stacked after the other.
    Case("RNN-built-in-cells", lambda: jl.serial(
        jl.RNN(jl.SimpleRNNCell(2, recurrent_initializer=GLOROT), return_sequences=True),
        jl.RNN(jl.LSTMCell(2, recurrent_initializer=GLOROT), return_sequences=True),
        jl.RNN(jl.GRUCell(2, recurrent_initializer=GLOROT), go_backwards=True)), SEQ),
    Case("LSTM-activity", lambda: jl.LSTM(2, activity_regularizer="l2"), SEQ),
    Case("Bidirectional-concat", lambda: jl.Bidirectional(jl.LSTM(2, return_sequences=True)),
         SEQ),
    Case("Bidirectional-sum", lambda: jl.Bidirectional(jl.GRU(2), merge_mode="sum"), SEQ),
    Case("Bidirectional-ave", lambda: jl.Bidirectional(jl.GRU(2, return_sequences=True),
                                                       merge_mode="ave"), SEQ),
    Case("Bidirectional-None-state",
         lambda: jl.Bidirectional(jl.LSTM(2, return_state=True), merge_mode=None), SEQ),
    # Keras options: zeros for masked steps, the implementation hint, stacked cells.
    Case("LSTM-zero_output_for_mask",
         lambda: jl.serial(jl.Masking(), jl.LSTM(3, return_sequences=True,
                                                 zero_output_for_mask=True)),
         SEQ, make_input=padded, grad_wrt_input=False),
    Case("GRU-implementation1-dropout", lambda: jl.GRU(3, dropout=0.3, implementation=1,
                                                       return_sequences=True), SEQ, train=True),
    Case("RNN-stacked-state", lambda: jl.RNN([jl.LSTMCell(3), jl.GRUCell(2)],
                                             return_state=True), FREE),
    Case("StackedRNNCells-dropout-user-cell",
         lambda: jl.RNN(jl.StackedRNNCells([jl.SimpleRNNCell(3, recurrent_dropout=0.3),
                                             MinimalRNNCell(2)]), return_sequences=True),
         SEQ, train=True),
    # Stateful RNNs: fixed batch, the kept states advance on every call.
    Case("LSTM-stateful", lambda: jl.LSTM(3, stateful=True, return_sequences=True), (3, 3, 2),
         carries_state=True),
    Case("RNN-stacked-stateful-state", lambda: jl.RNN([jl.GRUCell(2), jl.LSTMCell(3)],
                                                      stateful=True, return_state=True),
         (3, 3, 2), carries_state=True),
    Case("TimeDistributed-Dense", lambda: jl.TimeDistributed(jl.Dense(3)), SEQ),
    Case("Embedding", lambda: jl.Embedding(7, 3), (None, 4), make_input=ids,
         grad_wrt_input=False),
    Case("Embedding-mask_zero-LSTM",
         lambda: jl.serial(jl.Embedding(7, 2, mask_zero=True), jl.LSTM(3, return_sequences=True),
                           jl.GRU(2)), (None, 4), make_input=ids, grad_wrt_input=False),
    Case("Masking-Bidirectional",
         lambda: jl.serial(jl.Masking(), jl.Bidirectional(jl.SimpleRNN(2, return_sequences=True))),
         SEQ, make_input=padded, grad_wrt_input=False),  # the mask jumps where x == 0
]
