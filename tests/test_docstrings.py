"""layers/docstrings.py: shared docstring parts filled at import, and per-rank constructors."""
import inspect
import re

import pytest

import jaxlayers as jl
from jaxlayers.layers.docstrings import doc, fill, per_rank


def test_parts_are_filled_and_indented_like_their_line():
    text = fill("Summary.\n\n    Args:\n      {entries}\n      {seed}\n", entries="a: one.\nb: two.")
    assert text.splitlines()[3:6] == ["      a: one.", "      b: two.",
                                      "      seed: accepted for Keras compatibility (an int) "
                                      "and unused: keys come from `rng`."]


def test_an_unfilled_part_fails_naming_the_constructor():
    with pytest.raises(KeyError, match=r"Bad: the docstring names \{nothing\}"):
        @doc()
        def Bad(x):
            """Bad.

            Args:
              {nothing}
            """


def test_shared_args_lists_the_undocumented_ones_in_signature_order():
    @doc()
    def Layer(factor, seed=None, fill_value=0.0, data_format=None):
        """Layer.

        Args:
          factor: a factor.
          fill_value: its own text.
          {shared_args}
        """
    args = [line.split(":")[0].strip() for line in Layer.__doc__.splitlines() if ": " in line]
    assert args == ["factor", "fill_value", "seed", "data_format"]
    assert "its own text" in Layer.__doc__


@pytest.mark.parametrize("name", ["Conv1D", "Conv3DTranspose", "DepthwiseConv2D",
                                  "SeparableConv1D", "AdaptiveMaxPooling3D", "ZeroPadding2D",
                                  "SpatialDropout3D", "RandomShear", "RandomErasing"])
def test_filled_docstrings_name_no_part(name):
    assert not re.search(r"\{\w+\}", getattr(jl, name).__doc__)


def test_per_rank_constructors_keep_keras_signatures_and_name_themselves():
    params = inspect.signature(jl.Conv3D).parameters
    assert params["strides"].default == (1, 1, 1) and params["dilation_rate"].default == (1, 1, 1)
    assert inspect.signature(jl.Conv1D).parameters["strides"].default == 1
    assert jl.Conv2D.__name__ == "Conv2D" and jl.Conv2DTranspose.__module__.endswith("transpose")
    assert jl.Conv2D(4, 3, (2, 2), "same").name == jl.Conv2D(4, 3, strides=2, padding="same").name
    with pytest.raises(TypeError, match="Conv2D: missing a required argument: 'filters'"):
        jl.Conv2D()
    with pytest.raises(TypeError, match="SeparableConv1D: got an unexpected keyword argument"):
        jl.SeparableConv1D(2, 3, groups=2)


def test_per_rank_passes_kind_and_rank_first():
    def _family(kind, rank, size, scale=1):
        return kind, rank, size, scale
    Thing2D = per_rank(_family, "Thing2D", 2, "{n}-D thing (`{kind}`).\n\n    Args:\n      "
                       "size: s.\n      scale: k.\n\n    Input shape: x. Output shape: y.\n",
                       ranked=("scale",))
    assert str(inspect.signature(Thing2D)).startswith("(size, scale=(1, 1), *, name=None")
    assert Thing2D.__doc__.startswith("2-D thing (`Thing2D`).")
