"""Registry entries: preprocessing (array math) and image augmentation layers."""
import jax
import jax.numpy as jnp

import jaxlayers as jl
from tests.cases import Case


def tokens(high):
    return lambda k, s: jax.random.randint(k, s, 0, high)


def pixels(k, s):
    return jax.random.uniform(k, s, jnp.float32, 10.0, 245.0)


IMAGE = (None, 6, 5, 2)
RGB = (None, 5, 4, 3)

CASES = [
    Case("Rescaling", lambda: jl.Rescaling(1 / 255, offset=-0.5), (None, 4, 3)),
    Case("Rescaling-per-channel", lambda: jl.Rescaling([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]),
         (None, 2, 3)),
    Case("Normalization", lambda: jl.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.25]),
         (None, 3, 2)),
    Case("Normalization-invert", lambda: jl.Normalization(axis=(1, 2), mean=0.5, variance=2.0,
                                                          invert=True), (None, 3, 2)),
    # Integer tokens in, piecewise-constant outputs: no gradient, no bfloat16 path.
    Case("CategoryEncoding-count", lambda: jl.CategoryEncoding(6, output_mode="count"),
         (None, 4), make_input=tokens(6), grad=False, bf16=False),
    Case("CategoryEncoding-one_hot", lambda: jl.CategoryEncoding(6, output_mode="one_hot"),
         (None, 4, 1), make_input=tokens(6), grad=False, bf16=False),
    Case("Discretization", lambda: jl.Discretization([-0.5, 0.0, 0.7]), (None, 5),
         grad=False, bf16=False),
    Case("IntegerLookup", lambda: jl.IntegerLookup(vocabulary=[3, 1, 4], mask_token=0,
                                                   num_oov_indices=2, output_mode="multi_hot"),
         (None, 4), make_input=tokens(7), grad=False, bf16=False),
    Case("Resizing", lambda: jl.Resizing(4, 3), IMAGE),
    Case("Resizing-crop", lambda: jl.Resizing(4, 4, interpolation="bicubic",
                                              crop_to_aspect_ratio=True), IMAGE),
    Case("CenterCrop", lambda: jl.CenterCrop(4, 3, data_format="channels_last"), IMAGE),
    Case("RandomCrop", lambda: jl.RandomCrop(4, 3), IMAGE, train=True),
    Case("RandomFlip", lambda: jl.RandomFlip(), IMAGE, train=True),
    Case("RandomRotation", lambda: jl.RandomRotation(0.2, fill_mode="constant"), IMAGE,
         train=True, make_input=pixels),
    Case("RandomZoom", lambda: jl.RandomZoom(0.3, (-0.2, 0.1)), IMAGE, train=True,
         make_input=pixels),
    Case("RandomTranslation", lambda: jl.RandomTranslation(0.2, 0.3, fill_mode="nearest",
                                                       data_format="channels_first"),
         (None, 2, 6, 5), train=True, make_input=pixels),
    Case("RandomContrast", lambda: jl.RandomContrast(0.4), IMAGE, train=True,
         make_input=pixels),
    Case("RandomBrightness", lambda: jl.RandomBrightness(0.1), IMAGE, train=True,
         make_input=pixels),
    Case("RandomInvert", lambda: jl.RandomInvert(0.8, value_range=(0, 255)), IMAGE, train=True,
         make_input=pixels),
    Case("AutoContrast", lambda: jl.AutoContrast(), IMAGE, make_input=pixels),
    Case("MixUp", lambda: jl.MixUp(0.4), IMAGE, train=True, make_input=pixels),
    Case("CutMix-channels_first", lambda: jl.CutMix(0.8, data_format="channels_first"),
         IMAGE, train=True, make_input=pixels),
    Case("RandomGrayscale", lambda: jl.RandomGrayscale(0.7), RGB, train=True, make_input=pixels),
    Case("RandomSaturation", lambda: jl.RandomSaturation((0.1, 0.5)), RGB, train=True,
         make_input=pixels),
    Case("RandomHue", lambda: jl.RandomHue(0.3, data_format="channels_first"), (None, 3, 4, 5),
         train=True, make_input=pixels),
    Case("Solarization", lambda: jl.Solarization(0.1, (0.4, 0.6)), IMAGE, train=True,
         make_input=pixels),
    # Bits kept: a step function, no gradient.
    Case("RandomPosterization", lambda: jl.RandomPosterization((2, 6), value_range=(0, 255)),
         IMAGE, train=True, make_input=pixels, grad=False),
    Case("RandomSharpness", lambda: jl.RandomSharpness(0.8), IMAGE, train=True,
         make_input=pixels),
    Case("RandomErasing", lambda: jl.RandomErasing(0.9, fill_value=[1.0, 2.0, 3.0]), RGB,
         train=True, make_input=pixels),
    Case("RandomGaussianBlur", lambda: jl.RandomGaussianBlur(kernel_size=(3, 5), sigma=0.8),
         IMAGE, train=True, make_input=pixels),
    Case("RandomShear", lambda: jl.RandomShear(0.3, (0.1, 0.2), fill_mode="constant"), IMAGE,
         train=True, make_input=pixels),
]
