"""Registry entries: position layers and transformer blocks (tiny shapes)."""
import jaxlayers as jl
from tests.cases import Case

SEQ = (None, 3, 4)

CASES = [
    Case("PositionEmbedding", lambda: jl.PositionEmbedding(5), SEQ),
    Case("PositionEmbedding-added", lambda: jl.residual(jl.PositionEmbedding(3)), SEQ),
    Case("SinePositionEncoding-added", lambda: jl.residual(jl.SinePositionEncoding(max_wavelength=100)),
         SEQ),
    Case("RotaryEmbedding-heads", lambda: jl.RotaryEmbedding(), (None, 3, 2, 4)),
    Case("RotaryEmbedding-yarn-axes", lambda: jl.RotaryEmbedding(
        rope_type="yarn", scaling_factor=2.0, sequence_axis=2, feature_axis=1), (None, 4, 3)),
    Case("TransformerEncoder", lambda: jl.TransformerEncoder(6, 2), SEQ),
    Case("TransformerEncoder-prenorm-dropout", lambda: jl.TransformerEncoder(
        6, 2, dropout=0.2, normalize_first=True), SEQ, train=True),
    Case("TransformerDecoder-causal", lambda: jl.TransformerDecoder(6, 2), SEQ),
    Case("TransformerDecoder-cross", lambda: jl.TransformerDecoder(
        6, 2, normalize_first=True, activation="gelu"), ((None, 3, 4), (None, 5, 2))),
]
