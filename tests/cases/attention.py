"""Registry entries: EinsumDense and the attention layers (tiny shapes)."""
import jaxlayers as jl
from tests.cases import Case

SEQ = (None, 3, 4)
PAIR = ((None, 3, 4), (None, 5, 4))

CASES = [
    Case("EinsumDense-heads", lambda: jl.EinsumDense("abc,cde->abde", (None, 2, 3),
                                                     bias_axes="de"), SEQ),
    Case("EinsumDense-ellipsis", lambda: jl.EinsumDense("...b,bc->...c", 3, bias_axes="c",
                                                        activation="tanh"), SEQ),
    Case("MHA-self", lambda: jl.MultiHeadAttention(2, 3), SEQ),
    Case("MHA-causal-gate", lambda: jl.MultiHeadAttention(2, 3, use_causal_mask=True,
                                                          use_gate=True), SEQ),
    Case("MHA-cross-scores", lambda: jl.MultiHeadAttention(
        2, 3, value_dim=2, output_shape=5, return_attention_scores=True), PAIR),
    Case("MHA-dropout", lambda: jl.MultiHeadAttention(2, 3, dropout=0.3), PAIR, train=True),
    Case("MHA-2d-axes", lambda: jl.MultiHeadAttention(2, 2, attention_axes=(1, 2)),
         (None, 2, 3, 4)),
    Case("GQA-causal", lambda: jl.GroupedQueryAttention(2, 4, 2, use_causal_mask=True), SEQ),
    Case("GQA-cross-scores", lambda: jl.GroupedQueryAttention(
        2, 2, 1, return_attention_scores=True), PAIR),
    # Attention's own weights start at ones (Keras): a Dense in front makes members differ.
    Case("Attention-dot", lambda: jl.serial(jl.parallel(jl.Dense(4), jl.Identity()),
                                            jl.Attention(use_scale=True)), PAIR),
    Case("Attention-concat-causal", lambda: jl.serial(
        jl.parallel(jl.Dense(4), jl.Identity()),
        jl.Attention(score_mode="concat", use_causal_mask=True)), PAIR),
    Case("AdditiveAttention-dropout-scores", lambda: jl.AdditiveAttention(
        dropout=0.2, return_attention_scores=True), PAIR, train=True),
]
