"""Keras import of the preprocessing and augmentation layers, registered into
`keras_import.CONVERTERS` when `jaxlayers.io` is imported.

Their constructors take Keras' config unchanged, except two: an adapted Normalization keeps
its statistics in weights (``mean``, ``variance``), which become the constructor's `mean` and
`variance`; an adapted Discretization has both `num_bins` and `bin_boundaries` in its config,
and the boundaries win. IntegerLookup has no converter: Keras builds it on TensorFlow's
lookup tables, and jaxlayers gives its vocabulary as ``jl.IntegerLookup(vocabulary=...)``.
"""
from __future__ import annotations

from ..layers import augmentation_color as AC
from ..layers import augmentation_filter as AF
from ..layers import augmentation_geometry as AG
from ..layers import augmentation_mix as AM
from ..layers import augmentation_tone as AT
from ..layers import encoding as EN
from ..layers import preprocessing as PP
from .keras_import import CONVERTERS, _build, generic, keras_arguments, keras_weights

_GENERIC = [PP.Rescaling, EN.CategoryEncoding, AG.Resizing, AG.CenterCrop, AG.RandomCrop,
            AG.RandomFlip, AG.RandomRotation, AG.RandomZoom, AG.RandomTranslation,
            AG.RandomShear, AC.RandomContrast, AC.RandomBrightness, AC.RandomInvert,
            AC.AutoContrast, AT.RandomGrayscale, AT.RandomSaturation, AT.RandomHue,
            AT.Solarization, AT.RandomPosterization, AF.RandomSharpness, AF.RandomErasing,
            AF.RandomGaussianBlur, AM.MixUp, AM.CutMix]


def _normalization(kl):
    """Normalization: given statistics from the config, adapted ones from the weights."""
    args = keras_arguments(kl, PP.Normalization)
    weights = keras_weights(kl)
    if args.get("mean") is None and "mean" in weights:
        args.update(mean=weights["mean"], variance=weights["variance"])
    return _build(kl, PP.Normalization, **args), (), None


def _discretization(kl):
    """Discretization: an adapted layer's boundaries replace its num_bins."""
    args = keras_arguments(kl, EN.Discretization)
    if args.get("bin_boundaries") is not None:
        args.pop("num_bins", None)
    return _build(kl, EN.Discretization, **args), (), None


PREPROCESSING_CONVERTERS = {
    **{ctor.__name__: generic(ctor) for ctor in _GENERIC},
    "Normalization": _normalization,
    "Discretization": _discretization,
}

CONVERTERS.update(PREPROCESSING_CONVERTERS)
