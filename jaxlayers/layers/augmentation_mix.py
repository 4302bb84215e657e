"""MixUp and CutMix: augmentations that mix each image (and its label) with another image of
the batch. Keras' input convention: an image batch, or a dict ``{"images": ..., "labels":
...}`` whose labels (one-hot or soft, ``(batch, classes)``) are mixed with the same weights.

Both act only with ``train=True`` and an rng (identity in inference), as every augmentation
layer. Use them on the data, before the model: in a custom training step, or in the batches
given to ``jl.fit(data=...)`` (they mix labels, which a model's layers never see).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, Shape, ShapeError, as_shape, describe
from .args import ArgumentTypeError, keras_layer
from .augmentation import factor_range
from .checks import need_rng
from .core import seed_arg
from .spatial import data_format as _data_format

__all__ = ["CutMix", "MixUp", "cut_mix", "mix_up"]


def mix_up(images, labels, mix_weight, permutation):
    """Keras' MixUp transform with given parameters: ``w * x + (1 - w) * x[perm]`` per image
    (`mix_weight` (batch,)), the labels mixed alike. Returns ``(images, labels)``."""
    w = mix_weight.astype(images.dtype).reshape((-1,) + (1,) * (images.ndim - 1))
    images = w * images + (1 - w) * jnp.take(images, permutation, axis=0)
    if labels is not None:
        lw = mix_weight.astype(labels.dtype).reshape((-1,) + (1,) * (labels.ndim - 1))
        labels = lw * labels + (1 - lw) * jnp.take(labels, permutation, axis=0)
    return images, labels


def cut_mix(images, labels, box, permutation, channels_first=False):
    """Keras' CutMix transform with given parameters: the box ``(x0, x1, y0, y1)`` (each
    (batch,), in pixels, end excluded) of each image replaced by that of ``images[perm]``; the
    labels mixed by the area kept. Returns ``(images, labels)``."""
    h_axis, w_axis = (2, 3) if channels_first else (1, 2)
    height, width = images.shape[h_axis], images.shape[w_axis]
    x0, x1, y0, y1 = (b.astype(jnp.float32)[:, None, None] for b in box)
    gy, gx = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                          jnp.arange(width, dtype=jnp.float32), indexing="ij")
    gy, gx = gy[None], gx[None]                                        # (1, h, w)
    inside = (gx >= x0) & (gx < x1) & (gy >= y0) & (gy < y1)          # (batch, h, w)
    inside = inside[:, None] if channels_first else inside[..., None]
    images = jnp.where(inside, jnp.take(images, permutation, axis=0), images)
    if labels is not None:
        area = ((x1 - x0) * (y1 - y0))[:, 0, 0] / (width * height)
        kept = (1.0 - area).astype(labels.dtype).reshape((-1,) + (1,) * (labels.ndim - 1))
        labels = kept * labels + (1 - kept) * jnp.take(labels, permutation, axis=0)
    return images, labels


def _mixing_layer(name, data_format, draw, transform):
    """A layer on an image batch or ``{"images", "labels"}``: in training, `draw(rng, images)`
    gives the parameters and `transform(images, labels, params)` mixes."""
    def split(tree):
        if isinstance(tree, dict):
            if set(tree) - {"images", "labels"} or "images" not in tree:
                raise ShapeError(f"expected images or a dict with keys 'images' (and "
                                 f"'labels'), received keys {sorted(tree)}", name)
            return tree["images"], tree.get("labels")
        return tree, None

    def init(key, input_shape):
        input_shape = as_shape(input_shape)
        images, labels = split(input_shape)
        images = as_shape(images)
        if not isinstance(images, Shape) or len(images) != 4:
            raise ShapeError(f"expected a batch of images (batch, height, width, channels) "
                             f"({data_format}), received {images!r}", name)
        if labels is not None and len(as_shape(labels)) < 2:
            raise ShapeError(f"labels must be one-hot or soft, (batch, classes), received "
                             f"{labels!r}", name)
        return input_shape, ()

    def apply(params, data, *, rng=None, train=False):
        if not train:
            return data
        need_rng(name, rng)
        images, labels = split(data)
        out_images, out_labels = transform(images, labels, draw(rng, images))
        if isinstance(data, dict):
            return {**data, "images": out_images,
                    **({"labels": out_labels} if labels is not None else {})}
        return out_images

    return Layer(init, apply, name=name)


@keras_layer
def MixUp(alpha=0.2, data_format=None, seed=None) -> Layer:
    """MixUp: each image (and label) blended with another image of the batch.

    Args:
      alpha: the Beta(alpha, alpha) concentration of the mixing weight (> 0; small values
        mix little).
      data_format: "channels_last" (None) or "channels_first".
      seed: accepted for Keras compatibility; the rng given to apply decides.

    Input shape: ``(batch, height, width, channels)`` images, or a dict ``{"images":
    images, "labels": (batch, classes)}``. Output shape: the same.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise ArgumentTypeError(f"MixUp: alpha must be a positive number, received {alpha!r}")
    if not alpha > 0:
        raise ValueError(f"MixUp: alpha must be a positive number, received {alpha!r}")
    data_format = _data_format("MixUp", data_format)
    seed_arg("MixUp", seed)
    name = describe("MixUp", **({"alpha": alpha} if alpha != 0.2 else {}))

    def draw(rng, images):
        k_perm, k_w = jax.random.split(rng)
        batch = images.shape[0]
        return (jax.random.beta(k_w, alpha, alpha, (batch,)),
                jax.random.permutation(k_perm, batch))

    def transform(images, labels, params):
        images = images.astype(jnp.float32) if not jnp.issubdtype(images.dtype,
                                                                   jnp.floating) else images
        return mix_up(images, labels, *params)

    return _mixing_layer(name, data_format, draw, transform)


@keras_layer
def CutMix(factor=1.0, seed=None, data_format=None) -> Layer:
    """CutMix: a box of each image replaced by the same box of another image of the batch,
    its label mixed by the area kept.

    Args:
      factor: the range the Beta concentration is drawn from (a number f: [0, f]; or a pair),
        within [0, 1]; the kept area fraction is Beta(a, a).
      seed: accepted for Keras compatibility; the rng given to apply decides.
      data_format: "channels_last" (None) or "channels_first".

    Input shape: ``(batch, height, width, channels)`` images, or a dict ``{"images":
    images, "labels": (batch, classes)}``. Output shape: the same.
    """
    low, high = factor_range("CutMix", "factor", factor, bounds=(0.0, 1.0))
    data_format = _data_format("CutMix", data_format)
    seed_arg("CutMix", seed)
    first = data_format == "channels_first"
    name = describe("CutMix", **({"factor": factor} if factor != 1.0 else {}))

    def draw(rng, images):
        k_a, k_w, k_x, k_y, k_perm = jax.random.split(rng, 5)
        batch = images.shape[0]
        height, width = images.shape[2:4] if first else images.shape[1:3]
        a = jax.random.uniform(k_a, (), minval=low, maxval=high) + 1e-6
        ratio = jnp.sqrt(1.0 - jax.random.beta(k_w, a, a, (batch,)))

        def bounds(k, length):
            size = ratio * length
            start = jax.random.uniform(k, (batch,)) * (length - size)
            return start, start + size

        x0, x1 = bounds(k_x, width)
        y0, y1 = bounds(k_y, height)
        return (x0, x1, y0, y1), jax.random.permutation(k_perm, batch)

    def transform(images, labels, params):
        return cut_mix(images, labels, *params, channels_first=first)

    return _mixing_layer(name, data_format, draw, transform)
