"""Regularization layers: SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout,
ActivityRegularization (`Dropout` itself lives in `layers.core`).

Every random layer acts only with ``train=True`` and then needs an ``rng`` key (a
ValueError naming the layer otherwise); with ``train=False``, or a rate of 0, it returns
its input and needs no key. Combinators give each child its own key (``fold_in``), so two
layers under the same parent key draw different noise. `seed` arguments are accepted for
Keras compatibility and ignored: randomness comes from the key.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..core import PASS
from ..core import Layer, Shape, ShapeError, as_shape, describe
from .checks import check_rank, need_rng, noise_shape_for
from ..regularizers import L1L2, with_activity_regularizer
from .args import fraction, keras_layer, number
from .core import noise_shape_arg, noise_shape_init, seed_arg
from .docstrings import doc
from .spatial import data_format as _data_format

__all__ = ["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
           "GaussianDropout", "AlphaDropout", "ActivityRegularization"]


def _spatial_dropout(kind, rate, rank, data_format, seed):
    """Dropout of whole feature maps: one mask value per (example, channel)."""
    fraction(kind, "rate", rate)
    seed_arg(kind, seed)
    data_format = _data_format(kind, data_format)
    name = describe(kind, rate, **({"data_format": data_format}
                                   if data_format != "channels_last" else {}))
    channel = 1 if data_format == "channels_first" else rank - 1

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, rank=rank)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        if x.ndim != rank:
            raise ShapeError(f"expected a rank-{rank} input (batch first), received "
                             f"{Shape(x.shape)!r}", name)
        if not train or rate == 0:
            return x
        need_rng(name, rng)
        if rate == 1:
            return jnp.zeros_like(x)
        noise_shape = tuple(d if i in (0, channel) else 1 for i, d in enumerate(x.shape))
        keep = jax.random.bernoulli(rng, 1.0 - rate, noise_shape)
        return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))

    return Layer(init, apply, name=name, masking=PASS)


@keras_layer
@doc()
def SpatialDropout1D(rate: float, seed=None) -> Layer:
    """Drop whole channels of a sequence (same mask along time), scaling the rest by 1/(1-rate).

    Args:
      rate: the fraction of channels dropped, in [0, 1].
      {seed}

    Input shape: ``(batch, steps, channels)``. Output shape: the same.
    """
    return _spatial_dropout("SpatialDropout1D", rate, 3, "channels_last", seed)


_SPATIAL_DROPOUT_DOC = """Drop whole {n}-D feature maps, scaling the rest by 1/(1-rate).

    One mask value per example and channel, the same over the {spatial} of a map.

    Args:
      rate: the fraction of feature maps dropped, in [0, 1].
      {data_format}
      {seed}

    Input shape: ``(batch, {spatial}, channels)`` (channels_last) or ``(batch, channels,
    {spatial})`` (channels_first). Output shape: the same.
    """


@keras_layer
@doc(_SPATIAL_DROPOUT_DOC, rank=2)
def SpatialDropout2D(rate: float, data_format: str = "channels_last", seed=None) -> Layer:
    return _spatial_dropout("SpatialDropout2D", rate, 4, data_format, seed)


@keras_layer
@doc(_SPATIAL_DROPOUT_DOC, rank=3)
def SpatialDropout3D(rate: float, data_format: str = "channels_last", seed=None) -> Layer:
    return _spatial_dropout("SpatialDropout3D", rate, 5, data_format, seed)


def _elementwise(name, transform, active):
    """A parameter-free random layer ``x -> transform(rng, x)`` in training when `active`."""
    def init(key, input_shape):
        return as_shape(input_shape), ()

    def apply(params, x, *, rng=None, train=False):
        if not train or not active:
            return x
        need_rng(name, rng)
        return transform(rng, x)

    return Layer(init, apply, name=name, masking=PASS)


@keras_layer
def GaussianNoise(stddev: float, seed=None) -> Layer:
    """Add zero-mean Gaussian noise in training.

    Args:
      stddev: the noise's standard deviation, in [0, 1] (as Keras).
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: any. Output shape: the same.
    """
    fraction("GaussianNoise", "stddev", stddev)
    seed_arg("GaussianNoise", seed)
    name = describe("GaussianNoise", stddev)

    def noise(rng, x):
        return x + jax.random.normal(rng, x.shape, x.dtype) * jnp.asarray(stddev, x.dtype)

    return _elementwise(name, noise, stddev > 0)


@keras_layer
def GaussianDropout(rate: float, seed=None) -> Layer:
    """Multiply by Gaussian noise of mean 1 and standard deviation ``sqrt(rate / (1 - rate))``
    in training.

    Args:
      rate: the drop probability, in [0, 1) (the noise is infinite at 1).
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: any. Output shape: the same.
    """
    fraction("GaussianDropout", "rate", rate, include_one=False)
    seed_arg("GaussianDropout", seed)
    name = describe("GaussianDropout", rate)
    stddev = math.sqrt(rate / (1.0 - rate))

    def noise(rng, x):
        return x * (1.0 + jax.random.normal(rng, x.shape, x.dtype) * jnp.asarray(stddev, x.dtype))

    return _elementwise(name, noise, rate > 0)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@keras_layer
def AlphaDropout(rate: float, noise_shape=None, seed=None) -> Layer:
    """Dropout for self-normalizing (SELU) networks: keeps the mean and variance of its inputs.

    In training, dropped units are set to SELU's negative saturation ``-alpha * scale``, then
    everything is mapped by ``a * x + b`` with Keras' ``a = ((1 - rate) * (1 + rate *
    alpha_p**2)) ** -0.5`` and ``b = -a * alpha_p * rate``.

    Args:
      rate: the drop probability, in [0, 1) (``a`` is infinite at 1).
      noise_shape: the shape of the random mask, batch axis included (None entries take
        the input's size); a 1 shares one mask value along that axis.
      seed: accepted for Keras compatibility (an int) and unused: keys come from `rng`.

    Input shape: any. Output shape: the same.
    """
    fraction("AlphaDropout", "rate", rate, include_one=False)
    noise_shape = noise_shape_arg("AlphaDropout", noise_shape)
    seed_arg("AlphaDropout", seed)
    name = describe("AlphaDropout", rate)
    alpha_p = -_SELU_ALPHA * _SELU_SCALE

    def apply(params, x, *, rng=None, train=False):
        if not train or rate == 0:
            return x
        need_rng(name, rng)
        kept = (jax.random.uniform(rng, noise_shape_for(name, noise_shape, x)) >= rate).astype(x.dtype)
        a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * rate
        y = x * kept + alpha_p * (1 - kept)
        return (a * y + b).astype(x.dtype)

    return Layer(noise_shape_init(name, noise_shape), apply, name=name, masking=PASS)


@keras_layer
def ActivityRegularization(l1: float = 0.0, l2: float = 0.0) -> Layer:
    """Return the input unchanged and report ``L1L2(l1, l2)(x) / batch_size`` as an activity
    loss.

    Args:
      l1: the L1 factor, a non-negative number.
      l2: the L2 factor, a non-negative number.

    Stateful: its state is ``{"layer": (), "activity_loss": scalar}``, updated by
    ``train=True`` calls; `jl.activity_loss(state)` collects it for the training loss.

    Input shape: any (batch first). Output shape: the same.
    """
    reg = L1L2(l1=number("ActivityRegularization", "l1", l1, minimum=0),
               l2=number("ActivityRegularization", "l2", l2, minimum=0))
    name = describe("ActivityRegularization", **({"l1": l1} if l1 else {}),
                    **({"l2": l2} if l2 else {}))

    def init(key, input_shape):
        shape = as_shape(input_shape)
        check_rank(name, shape, min_rank=1)
        return shape, ()

    def apply(params, x, *, rng=None, train=False):
        return x

    return with_activity_regularizer(Layer(init, apply, name=name, masking=PASS), reg)
