"""Image geometry: Resizing and CenterCrop (preprocessing), and the geometric augmentations
RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomShear and RandomCrop.

Rotation, zoom, translation and shear are affine maps sampled with `jax.scipy.ndimage.
map_coordinates` (Keras' JAX backend does the same): the output pixel ``(x, y)`` (column,
row) reads the input at ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``, with Keras' fill modes.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..core import Layer, describe
from .args import boolean, keras_layer, number, one_of, positive_int
from .augmentation import factor_range, image_layer
from .docstrings import doc

__all__ = ["Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
           "RandomTranslation", "RandomShear", "RandomCrop", "resize_images", "affine_transform"]

# Keras' names -> jax.image.resize methods (all of Keras' JAX-backend interpolations).
RESIZE_METHODS = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic",
                  "lanczos3": "lanczos3", "lanczos5": "lanczos5"}
TF_ONLY = ("area", "gaussian", "mitchellcubic")
FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def _interpolation(kind, value, choices):
    if value in TF_ONLY:
        raise ValueError(f"{kind}: interpolation={value!r} exists only in TensorFlow's "
                         f"resize (jax.image has no such method); use one of "
                         f"{', '.join(map(repr, choices))}")
    return one_of(kind, "interpolation", value, tuple(choices))


def _aspect_box(height, width, target_h, target_w, crop):
    """Keras' crop (or pad) box for the target aspect ratio: (size_h, size_w, start_h,
    start_w) — the largest centered window (crop) or smallest enclosing canvas (pad)."""
    box_h = int(float(width * target_h) / target_w)
    box_w = int(float(height * target_w) / target_h)
    if crop:
        box_h, box_w = max(min(height, box_h), 1), max(min(width, box_w), 1)
        return box_h, box_w, int(float(height - box_h) / 2), int(float(width - box_w) / 2)
    box_h, box_w = max(height, box_h), max(width, box_w)
    return box_h, box_w, int(float(box_h - height) / 2), int(float(box_w - width) / 2)


def resize_images(x, size, interpolation="bilinear", antialias=False,
                  crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, fill_value=0.0):
    """Resize channels_last images `x` (b, h, w, c) to `size` as Keras' `ops.image.resize`."""
    b, h, w, c = x.shape
    if crop_to_aspect_ratio:
        bh, bw, sh, sw = _aspect_box(h, w, *size, crop=True)
        x = x[:, sh:sh + bh, sw:sw + bw, :]
    elif pad_to_aspect_ratio:
        bh, bw, sh, sw = _aspect_box(h, w, *size, crop=False)
        # Keras pads one axis only, symmetrically by the start offset.
        if sh > 0:
            x = jnp.pad(x, ((0, 0), (sh, sh), (0, 0), (0, 0)), constant_values=fill_value)
        elif sw > 0:
            x = jnp.pad(x, ((0, 0), (0, 0), (sw, sw), (0, 0)), constant_values=fill_value)
    return jax.image.resize(x, (x.shape[0],) + tuple(size) + (c,),
                            method=RESIZE_METHODS[interpolation], antialias=antialias)


def affine_transform(x, matrices, interpolation="bilinear", fill_mode="constant",
                     fill_value=0.0):
    """Apply one affine map per image: `x` (b, h, w, c) channels_last, `matrices` (b, 6)
    rows ``[a0, a1, a2, b0, b1, b2]`` (Keras' transform, its projective terms zero)."""
    _, h, w, _ = x.shape
    dtype = jnp.promote_types(x.dtype, jnp.float32)     # half precision computes in float32
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=dtype), jnp.arange(w, dtype=dtype),
                              indexing="ij")
    order = 0 if interpolation == "nearest" else 1

    def one(image, m):
        coords = [m[3] * cols + m[4] * rows + m[5], m[0] * cols + m[1] * rows + m[2]]
        channel = lambda ch: jax.scipy.ndimage.map_coordinates(   # noqa: E731
            ch, coords, order=order, mode=fill_mode, cval=fill_value)
        return jax.vmap(channel, in_axes=2, out_axes=2)(image.astype(dtype))

    return jax.vmap(one)(x, matrices.astype(dtype)).astype(x.dtype)


def _resize_args(kind, height, width, interpolation, choices):
    height = positive_int(kind, "height", height)
    width = positive_int(kind, "width", width)
    return height, width, _interpolation(kind, interpolation, choices)


def _fill(kind, fill_mode, fill_value, interpolation):
    one_of(kind, "fill_mode", fill_mode, FILL_MODES)
    number(kind, "fill_value", fill_value)
    return _interpolation(kind, interpolation, ("bilinear", "nearest"))


@keras_layer
@doc()
def Resizing(height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
             pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
             data_format=None) -> Layer:
    """Resize images to ``(height, width)``.

    Args:
      height: the output height, an int > 0.
      width: the output width, an int > 0.
      interpolation: "bilinear", "nearest", "bicubic", "lanczos3" or "lanczos5" (Keras'
        TensorFlow-only "area", "gaussian" and "mitchellcubic" are refused with the reason).
      crop_to_aspect_ratio: first crop the largest centered window of the target aspect ratio.
      pad_to_aspect_ratio: first pad (with `fill_value`) to the target aspect ratio.
      fill_mode: "constant" only (Keras' only mode), the padding's mode.
      fill_value: the padding's value.
      antialias: filter when downsampling (jax.image.resize's antialias).
      {shared_args}

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: ``(batch,
    height, width, channels)``; floating (integer images become float32 and are not rounded).
    """
    kind = "Resizing"
    height, width, interpolation = _resize_args(kind, height, width, interpolation,
                                                RESIZE_METHODS)
    boolean(kind, "crop_to_aspect_ratio", crop_to_aspect_ratio)
    boolean(kind, "pad_to_aspect_ratio", pad_to_aspect_ratio)
    boolean(kind, "antialias", antialias)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(f"{kind}: crop_to_aspect_ratio and pad_to_aspect_ratio cannot both "
                         f"be True")
    one_of(kind, "fill_mode", fill_mode, ("constant",))
    fill_value = number(kind, "fill_value", fill_value)
    name = describe(kind, height, width, **({"interpolation": interpolation}
                                            if interpolation != "bilinear" else {}))

    def resize(x):
        return resize_images(x, (height, width), interpolation, antialias,
                             crop_to_aspect_ratio, pad_to_aspect_ratio, fill_value)

    return image_layer(kind, name, data_format, None, active=False, inference=resize,
                       out_size=(height, width), need_size=True)


def _center_crop(height, width):
    """Keras' CenterCrop: a centered crop, or (an input smaller on some side) the largest
    window of the target aspect ratio resized bilinearly to the target."""
    def crop(x):
        h, w = x.shape[1:3]
        if h >= height and w >= width:
            top, left = (h - height) // 2, (w - width) // 2
            return x[:, top:top + height, left:left + width, :]
        return resize_images(x, (height, width), crop_to_aspect_ratio=True)
    return crop


@keras_layer
@doc()
def CenterCrop(height, width, data_format=None) -> Layer:
    """Crop the center ``(height, width)`` window of images (smaller images are cropped to the
    target aspect ratio and resized up, as Keras does).

    Args:
      height: the output height, an int > 0.
      width: the output width, an int > 0.
      {shared_args}

    Input shape: ``(batch, h, w, channels)`` (or channels first). Output shape: ``(batch,
    height, width, channels)``.
    """
    kind = "CenterCrop"
    height = positive_int(kind, "height", height)
    width = positive_int(kind, "width", width)
    return image_layer(kind, describe(kind, height, width), data_format, None, active=False,
                       inference=_center_crop(height, width), out_size=(height, width),
                       need_size=True)


@keras_layer
@doc()
def RandomCrop(height, width, seed=None, data_format=None) -> Layer:
    """Crop a random ``(height, width)`` window in training (one window for the whole batch,
    as Keras); in inference, and for images not larger than the target, crop the largest
    centered window of the target aspect ratio and resize it to the target.

    Keras 3's documented inference rule is followed (its 3.x code returns the uncropped input
    in inference, whose shape then differs from the declared output shape).

    Args:
      height: the output height, an int > 0.
      width: the output width, an int > 0.
      {shared_args}

    Input shape: ``(batch, h, w, channels)`` (or channels first), h and w known.
    Output shape: ``(batch, height, width, channels)``.
    """
    kind = "RandomCrop"
    height = positive_int(kind, "height", height)
    width = positive_int(kind, "width", width)

    def smart_resize(x):
        return resize_images(x, (height, width), crop_to_aspect_ratio=True)

    def crop(rng, x):
        h, w = x.shape[1:3]
        if not (h > height and w > width):
            return smart_resize(x)
        k1, k2 = jax.random.split(rng)
        top = jax.random.randint(k1, (), 0, h - height + 1)
        left = jax.random.randint(k2, (), 0, w - width + 1)
        return jax.lax.dynamic_slice(x, (0, top, left, 0), (x.shape[0], height, width,
                                                            x.shape[3]))

    return image_layer(kind, describe(kind, height, width), data_format, crop, seed=seed,
                       inference=smart_resize, out_size=(height, width), need_size=True)


@keras_layer
@doc()
def RandomFlip(mode="horizontal_and_vertical", seed=None, data_format=None) -> Layer:
    """Flip each image at random with probability 1/2 in training; the identity in inference.

    With "horizontal_and_vertical" one coin per image decides both flips, as Keras 3 does
    (so an image is flipped both ways or not at all).

    Args:
      mode: "horizontal" (left-right), "vertical" (up-down) or "horizontal_and_vertical".
      {shared_args}

    {same_images}
    """
    kind = "RandomFlip"
    mode = one_of(kind, "mode", mode, ("horizontal", "vertical", "horizontal_and_vertical"))
    axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (2, 1)}[mode]

    def flip(rng, x):
        coin = jax.random.uniform(rng, (x.shape[0], 1, 1, 1)) <= 0.5
        return jnp.where(coin, jnp.flip(x, axes), x)

    return image_layer(kind, describe(kind, mode), data_format, flip, seed=seed)


def _affine_layer(kind, name, data_format, seed, matrices, interpolation, fill_mode,
                  fill_value, active):
    """An augmentation drawing one affine map per image: ``matrices(rng, batch, h, w)``; the
    fill arguments are checked here."""
    interpolation = _fill(kind, fill_mode, fill_value, interpolation)

    def transform(rng, x):
        m = matrices(rng, x.shape[0], x.shape[1], x.shape[2])
        return affine_transform(x, m, interpolation, fill_mode, fill_value)

    return image_layer(kind, name, data_format, transform, seed=seed, active=active)


def rotation_matrices(angles, height, width):
    """Keras' rotation about the image center by `angles` (radians, shape (b,)) as (b, 6)."""
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    a0, a1, b0, b1 = cos, -sin, sin, cos
    return jnp.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1], 1)


@keras_layer
@doc()
def RandomRotation(factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                   fill_value=0.0, data_format=None) -> Layer:
    """Rotate each image by a random angle in training (``factor`` turns: 0.1 means up to
    36 degrees either way); the identity in inference.

    Args:
      factor: a number f (angles in ``[-f, f]`` turns) or a pair (lower, upper), in [-1, 1].
      {shared_args}

    {same_images}
    """
    kind = "RandomRotation"
    low, high = factor_range(kind, "factor", factor)

    def matrices(rng, batch, h, w):
        turns = jax.random.uniform(rng, (batch,), minval=low, maxval=high)
        return rotation_matrices(turns * 2 * math.pi, h, w)

    return _affine_layer(kind, describe(kind, factor), data_format, seed, matrices,
                         interpolation, fill_mode, fill_value, (low, high) != (0, 0))


def _pair(kind, arg, value):
    return factor_range(kind, arg, value, bounds=(-1.0, 1.0))


@keras_layer
@doc()
def RandomZoom(height_factor, width_factor=None, fill_mode="reflect",
               interpolation="bilinear", seed=None, fill_value=0.0,
               data_format=None) -> Layer:
    """Zoom each image by a random amount in training; the identity in inference.

    A factor f in (-1, 0) zooms in, in (0, 1) zooms out (the image shrinks by ``1 + f``):
    the input is read at ``1 + f`` times the output's coordinates about the center.

    Args:
      height_factor: a number f (``[-f, f]``) or a pair (lower, upper), in [-1, 1].
      width_factor: like height_factor, or None to zoom both axes by the same amount.
      {shared_args}

    {same_images}
    """
    kind = "RandomZoom"
    h_range = _pair(kind, "height_factor", height_factor)
    w_range = None if width_factor is None else _pair(kind, "width_factor", width_factor)

    def matrices(rng, batch, h, w):
        k1, k2 = jax.random.split(rng)
        zh = 1.0 + jax.random.uniform(k1, (batch,), minval=h_range[0], maxval=h_range[1])
        zw = zh if w_range is None else 1.0 + jax.random.uniform(
            k2, (batch,), minval=w_range[0], maxval=w_range[1])
        zero = jnp.zeros_like(zh)
        return jnp.stack([zw, zero, (w - 1) / 2 * (1 - zw),
                          zero, zh, (h - 1) / 2 * (1 - zh)], 1)

    active = h_range != (0, 0) or (w_range is not None and w_range != (0, 0))
    return _affine_layer(kind, describe(kind, height_factor, width_factor), data_format, seed,
                         matrices, interpolation, fill_mode, fill_value, active)


@keras_layer
@doc()
def RandomTranslation(height_factor, width_factor, fill_mode="reflect",
                      interpolation="bilinear", seed=None, fill_value=0.0,
                      data_format=None) -> Layer:
    """Shift each image by a random fraction of its size in training; the identity in
    inference.

    Args:
      height_factor: a number f (shifts in ``[-f, f]`` of the height) or a pair, in [-1, 1].
      width_factor: the same for the width.
      {shared_args}

    {same_images}
    """
    kind = "RandomTranslation"
    h_range = _pair(kind, "height_factor", height_factor)
    w_range = _pair(kind, "width_factor", width_factor)

    def matrices(rng, batch, h, w):
        k1, k2 = jax.random.split(rng)
        dy = jax.random.uniform(k1, (batch,), minval=h_range[0], maxval=h_range[1]) * h
        dx = jax.random.uniform(k2, (batch,), minval=w_range[0], maxval=w_range[1]) * w
        one, zero = jnp.ones_like(dx), jnp.zeros_like(dx)
        return jnp.stack([one, zero, -dx, zero, one, -dy], 1)

    return _affine_layer(kind, describe(kind, height_factor, width_factor), data_format, seed,
                         matrices, interpolation, fill_mode, fill_value,
                         h_range != (0, 0) or w_range != (0, 0))


def _shear_range(kind, arg, value):
    """RandomShear's factors: a number f means ``[-f, f]``, a pair is sorted; in [0, 1]."""
    if isinstance(value, (tuple, list)):
        return factor_range(kind, arg, value, bounds=(0.0, 1.0))
    f = number(kind, arg, value, minimum=0.0, maximum=1.0)
    return -f, f


@keras_layer
@doc()
def RandomShear(x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect",
                fill_value=0.0, data_format=None, seed=None) -> Layer:
    """Shear each image by random amounts in training; the identity in inference.

    Each image draws sx and sy uniform in their factors' ranges and one random sign, and the
    output pixel (column c, row r) reads the input at ``(c + sign sx r, r + sign sy c)``,
    Keras' shear about the top-left corner.

    Args:
      x_factor: a number f (``[-f, f]``) or a pair (lower, upper) in [0, 1]: the shear along
        the width.
      y_factor: the same along the height.
      {shared_args}

    {same_images}
    """
    kind = "RandomShear"
    x_range = _shear_range(kind, "x_factor", x_factor)
    y_range = _shear_range(kind, "y_factor", y_factor)

    def matrices(rng, batch, h, w):
        k1, k2, k3 = jax.random.split(rng, 3)
        sign = jnp.where(jax.random.uniform(k1, (batch,)) > 0.5, -1.0, 1.0)
        sx = jax.random.uniform(k2, (batch,), minval=x_range[0], maxval=x_range[1]) * sign
        sy = jax.random.uniform(k3, (batch,), minval=y_range[0], maxval=y_range[1]) * sign
        one, zero = jnp.ones_like(sx), jnp.zeros_like(sx)
        return jnp.stack([one, sx, zero, sy, one, zero], 1)

    return _affine_layer(kind, describe(kind, x_factor, y_factor), data_format, seed, matrices,
                         interpolation, fill_mode, fill_value,
                         x_range != (0, 0) or y_range != (0, 0))
