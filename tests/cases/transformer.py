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
]
