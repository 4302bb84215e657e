"""Weight initializers: Keras' catalogue as pure functions of an explicit PRNG key.

Each constructor takes Keras' arguments with Keras' defaults and returns an *initializer*, a function

    init(key, shape, dtype=jnp.float32) -> array of `shape` and `dtype`

that is deterministic in `key` (the same signature as `jax.nn.initializers`). Constructors exist in
Keras' two spellings, the class name and the snake_case alias, which are the same function here:
`GlorotUniform(seed=None)` is `glorot_uniform(seed=None)`.

Keras initializers carry their own seed; here randomness comes from `key`. `seed`, when given (an
int), is folded into the key (`jax.random.fold_in(key, seed)`), so initializers that share a key but
not a seed draw different values. With `seed=None` the draw for a key is the one Keras' JAX backend
makes for that key (`jax.random.*(key, shape, dtype) * stddev + mean`), so the values match
`keras.random.*(..., seed=key)` exactly.

Fans follow Keras (`compute_fans`): rank 0: (1, 1); rank 1: (n, n); rank 2: (shape[0], shape[1]);
rank > 2 (convolution kernels `(*spatial, in, out)`): receptive field `prod(shape[:-2])`,
`fan_in = shape[-2] * rf`, `fan_out = shape[-1] * rf`; or the products over `input_axes` /
`output_axes` when both are given.

`get(identifier)` resolves a name, a Keras config dict, an array or an initializer.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np

from .lookup import by_name, from_config, is_keras_object

__all__ = [
    "Constant", "constant", "Zeros", "zeros", "Ones", "ones", "Identity", "identity",
    "RandomNormal", "random_normal", "RandomUniform", "random_uniform",
    "TruncatedNormal", "truncated_normal", "VarianceScaling", "variance_scaling",
    "GlorotUniform", "glorot_uniform", "GlorotNormal", "glorot_normal",
    "HeUniform", "he_uniform", "HeNormal", "he_normal",
    "LecunUniform", "lecun_uniform", "LecunNormal", "lecun_normal",
    "Orthogonal", "orthogonal", "compute_fans", "get", "names", "ALL",
]

# Standard deviation of the standard normal truncated to [-2, 2]; dividing by it makes the
# truncated draw have the requested variance (Keras' constant).
_TRUNCATED_STDDEV = 0.87962566103423978


def _shape(shape, who):
    try:
        return tuple(int(d) for d in shape)
    except TypeError:
        raise ValueError(
            f"{who}: shape must be a sequence of ints (no None / -1 dimensions); got {shape!r}."
        ) from None


def _key(key, seed):
    if seed is not None:
        if not isinstance(seed, (int, np.integer)):
            raise ValueError(f"`seed` must be None or an int; got {seed!r}.")
        key = jax.random.fold_in(key, int(seed))
    return key


def compute_fans(shape, input_axes=None, output_axes=None):
    """Returns Keras' `(fan_in, fan_out)` for a weight of `shape` (ints)."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return int(math.prod(shape[a] for a in input_axes)), int(math.prod(shape[a] for a in output_axes))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    rf = math.prod(shape[:-2])
    return int(shape[-2] * rf), int(shape[-1] * rf)


# --------------------------------------------------------------------------------------------------
# Constant initializers


def Constant(value=0.0):
    """Returns an initializer filling every entry with `value` (a scalar)."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.full(_shape(shape, "Constant"), value, dtype=dtype)

    return init


def Zeros():
    """Returns an initializer of zeros."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.zeros(_shape(shape, "Zeros"), dtype=dtype)

    return init


def Ones():
    """Returns an initializer of ones."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.ones(_shape(shape, "Ones"), dtype=dtype)

    return init


def Identity(gain=1.0):
    """Returns an initializer of `gain * eye(rows, cols)`; only 2-D shapes (`ValueError` otherwise)."""

    def init(key, shape, dtype=jnp.float32):
        shape = _shape(shape, "Identity")
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        return (gain * jnp.eye(*shape, dtype=dtype)).astype(dtype)

    return init


# --------------------------------------------------------------------------------------------------
# Random initializers


def RandomNormal(mean=0.0, stddev=0.05, seed=None):
    """Returns an initializer drawing from `N(mean, stddev**2)`."""

    def init(key, shape, dtype=jnp.float32):
        sample = jax.random.normal(_key(key, seed), _shape(shape, "RandomNormal"), dtype=dtype)
        return sample * stddev + mean

    return init


def RandomUniform(minval=-0.05, maxval=0.05, seed=None):
    """Returns an initializer drawing uniformly from `[minval, maxval)`."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(
            _key(key, seed), _shape(shape, "RandomUniform"), dtype=dtype, minval=minval, maxval=maxval
        )

    return init


def TruncatedNormal(mean=0.0, stddev=0.05, seed=None):
    """Returns an initializer drawing `mean + stddev * z`, `z` standard normal truncated to [-2, 2].

    (As in Keras, `stddev` scales the truncated draw; the result's standard deviation is
    `0.8796... * stddev`.)
    """

    def init(key, shape, dtype=jnp.float32):
        sample = jax.random.truncated_normal(
            _key(key, seed), -2.0, 2.0, _shape(shape, "TruncatedNormal"), dtype=dtype
        )
        return sample * stddev + mean

    return init


def VarianceScaling(scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                    input_axes=None, output_axes=None):
    """Returns an initializer whose variance is `scale / n`, `n` the fan chosen by `mode`.

    Args:
        scale: positive float.
        mode: `"fan_in"`, `"fan_out"` or `"fan_avg"` (`(fan_in + fan_out) / 2`); `n = max(1, fan)`.
        distribution: `"truncated_normal"` (stddev `sqrt(scale / n) / 0.87962566103423978`,
            truncated at 2 of those stddevs), `"untruncated_normal"` (stddev `sqrt(scale / n)`) or
            `"uniform"` (limits `+-sqrt(3 * scale / n)`); `"normal"` means `"truncated_normal"`.
        seed: optional int folded into the key.
        input_axes, output_axes: optional axes whose sizes multiply to fan_in / fan_out (both needed).
    """
    if scale <= 0.0:
        raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(
            f"Invalid `mode` argument: {mode!r}. Please use one of 'fan_in', 'fan_out', 'fan_avg'."
        )
    distribution = distribution.lower()
    if distribution == "normal":
        distribution = "truncated_normal"
    if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
        raise ValueError(
            f"Invalid `distribution` argument: {distribution!r}. "
            "Please use one of 'uniform', 'truncated_normal', 'untruncated_normal'."
        )

    def init(key, shape, dtype=jnp.float32):
        shape = _shape(shape, "VarianceScaling")
        fan_in, fan_out = compute_fans(shape, input_axes, output_axes)
        if mode == "fan_in":
            s = scale / max(1.0, fan_in)
        elif mode == "fan_out":
            s = scale / max(1.0, fan_out)
        else:
            s = scale / max(1.0, (fan_in + fan_out) / 2.0)
        key = _key(key, seed)
        if distribution == "truncated_normal":
            stddev = math.sqrt(s) / _TRUNCATED_STDDEV
            return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype=dtype) * stddev
        if distribution == "untruncated_normal":
            return jax.random.normal(key, shape, dtype=dtype) * math.sqrt(s)
        limit = math.sqrt(3.0 * s)
        return jax.random.uniform(key, shape, dtype=dtype, minval=-limit, maxval=limit)

    return init


def _variance_scaling_preset(name, who, scale, mode, distribution):
    """Keras' named `VarianceScaling` preset `name` (``seed, input_axes, output_axes``)."""
    def preset(seed=None, input_axes=None, output_axes=None):
        return VarianceScaling(scale, mode, distribution, seed, input_axes, output_axes)

    preset.__name__ = preset.__qualname__ = name
    preset.__doc__ = f'{who}: `VarianceScaling({scale}, "{mode}", "{distribution}")`.'
    return preset


GlorotUniform = _variance_scaling_preset("GlorotUniform", "Glorot/Xavier uniform", 1.0, "fan_avg",
                                         "uniform")
GlorotNormal = _variance_scaling_preset("GlorotNormal", "Glorot/Xavier normal", 1.0, "fan_avg",
                                        "truncated_normal")
HeUniform = _variance_scaling_preset("HeUniform", "He uniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling_preset("HeNormal", "He normal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling_preset("LecunUniform", "LeCun uniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling_preset("LecunNormal", "LeCun normal", 1.0, "fan_in",
                                       "truncated_normal")


def Orthogonal(gain=1.0, seed=None):
    """Returns an initializer of a (semi-)orthogonal matrix times `gain`.

    The shape is flattened to `(prod(shape[:-1]), shape[-1])`; the Q factor of a standard normal
    matrix (signs fixed by `diag(R)`) fills it, transposed when there are fewer rows than columns, so
    the columns (or rows, if fewer) are orthonormal. Shapes of rank < 2 raise `ValueError`.
    """

    def init(key, shape, dtype=jnp.float32):
        shape = _shape(shape, "Orthogonal")
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        flat = (max(rows, cols), min(rows, cols))
        # QR needs float32/64: draw there (bit-identical to Keras for float32), cast at the end
        work = jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32
        a = jax.random.normal(_key(key, seed), flat, dtype=work)
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diagonal(r))[None, :]
        if rows < cols:
            q = q.T
        return (gain * q.reshape(shape)).astype(dtype)

    return init


# snake_case spellings (Keras exports both; they are the same constructors)
constant = Constant
zeros = Zeros
ones = Ones
identity = Identity
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
he_uniform = HeUniform
he_normal = HeNormal
lecun_uniform = LecunUniform
lecun_normal = LecunNormal
orthogonal = Orthogonal

# --------------------------------------------------------------------------------------------------
# Lookup

_CONSTRUCTORS = (
    Constant, Zeros, Ones, Identity, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal,
)


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i:
            out.append("_")
        out.append(c.lower())
    return "".join(out)


ALL = MappingProxyType(
    {f.__name__: f for f in _CONSTRUCTORS}
    | {_snake(f.__name__): f for f in _CONSTRUCTORS}
    | {  # Keras' aliases (keras.initializers.get resolves them to these classes)
        "normal": RandomNormal,
        "uniform": RandomUniform,
        "one": Ones,
        "zero": Zeros,
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
    }
)
"""Read-only mapping from every name `get` accepts to its constructor."""


def names():
    """Returns the sorted tuple of every name `get` accepts."""
    return tuple(sorted(ALL))


def _keras_initializer(cls) -> bool:
    """Whether class `cls` derives from `keras.initializers.Initializer`."""
    return isinstance(cls, type) and any(
        c.__name__ == "Initializer" and c.__module__.split(".")[0] == "keras"
        for c in cls.__mro__)


def _called_as_keras(keras_init):
    """Keras initializer `keras_init` as `(key, shape, dtype) -> array`: it draws from its
    own seed, as in Keras."""
    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.asarray(keras_init(tuple(shape), dtype=jnp.dtype(dtype).name), dtype)

    return init


def get(identifier):
    """Returns the initializer `(key, shape, dtype) -> array` for `identifier`.

    - a name (`"glorot_uniform"`, `"GlorotUniform"`, `"uniform"`, ...): the constructor called with
      Keras' defaults;
    - a Keras config dict `{"class_name": name, "config": {...}}` or a Keras initializer object
      (`keras.initializers.HeUniform(seed=1)`): the constructor of the same name called with the
      config's arguments;
    - a constructor of this module (e.g. `GlorotUniform`): called with its defaults;
    - a Keras initializer class (`keras.initializers.HeUniform`): its instance, as above;
    - a Keras initializer of no name above (a subclass of `keras.initializers.Initializer`,
      `keras.initializers.STFT`): called as Keras calls it, `init(shape, dtype)` (the key unused);
    - any other callable: returned unchanged (it must take `(key, shape, dtype)`);
    - an array: an initializer returning it (cast to `dtype`), for that exact shape only.

    `None`, an unknown name or anything else raises `ValueError`.
    """
    if identifier is None:
        raise ValueError(
            "Initializer identifier is None; expected a name, a config dict, an array or a callable "
            f"(key, shape, dtype). Valid names: {', '.join(names())}."
        )
    if isinstance(identifier, str):
        return by_name(identifier, ALL, "initializer")()
    if _keras_initializer(identifier):        # a Keras class: Keras' get instantiates it
        return get(identifier())
    if _keras_initializer(type(identifier)) and not (
            is_keras_object(identifier) and type(identifier).__name__ in ALL):
        return _called_as_keras(identifier)
    rebuilt = from_config(identifier, ALL, "initializer")
    if rebuilt is not None:
        return rebuilt
    if isinstance(identifier, (np.ndarray, np.generic, jax.Array)):
        value = identifier

        def init(key, shape, dtype=jnp.float32):
            if tuple(shape) != tuple(value.shape):
                raise ValueError(
                    f"Expected `shape` to be {tuple(value.shape)} for an array used as initializer. "
                    f"Received shape={tuple(shape)}."
                )
            return jnp.asarray(value, dtype=dtype)

        return init
    if any(identifier is c for c in _CONSTRUCTORS):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}.")
