"""Activation functions: Keras' catalogue as plain `jax.numpy` functions.

Every function has the signature of its namesake in `keras.activations` (Keras 3): the input first,
then Keras' keyword arguments with Keras' defaults, and it returns an array of the input's shape (``glu``
halves the split axis) and dtype. Integer inputs are promoted to the default float dtype.

The functions are written to stay finite, in value and in gradient, for large positive and negative
inputs wherever the mathematical function is finite (``softplus``, ``log_sigmoid``, ``mish``, ``elu``,
``selu``, ``softmax``, ...).

``get(identifier)`` resolves a name, a callable, a parameter-free layer or ``None`` (``linear``) to a
function; ``ALL`` maps
every name (including the aliases ``swish`` and ``hard_swish``) to its function; ``names()`` lists them.

One deliberate difference from Keras 3.15: ``sparsemax`` computes the true Euclidean projection onto the
simplex (Martins & Astudillo, 2016). Keras 3.15 sums the cumulative sums over the support when it
computes the threshold and returns wrong values whenever more than one element is in the support
(keras-team/keras#23425, fixed upstream by #23469).
"""

from __future__ import annotations

import math
from types import MappingProxyType

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import erfc as _erfc

from .core import Layer
from .lookup import by_name

__all__ = [
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu",
    "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign",
    "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh", "tanh_shrink",
    "threshold", "get", "names", "ALL",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _inexact(x):
    """`x` as an array with a floating (or complex) dtype; integers/bools go to the default float."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


# --------------------------------------------------------------------------------------------------
# ReLU family


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, Keras' generalised form.

    Returns ``x`` where ``x > threshold`` (strictly) and ``0`` elsewhere, clipped to
    ``[0, max_value]`` when ``max_value`` is given, plus ``negative_slope * (x - threshold)`` where
    ``x < threshold``. With the defaults this is ``max(x, 0)``.

    Note (as in Keras): with ``max_value`` set, the clip to ``[0, max_value]`` also zeroes the
    values kept between a negative ``threshold`` and 0.
    """
    x = _inexact(x)
    if negative_slope == 0.0 and max_value is None and threshold == 0:
        # jax.nn.relu, as Keras' JAX backend: ``max(x, 0)`` with the gradient 0 at 0. A
        # `maximum` (not a compare + select) lets XLA:CPU fuse it into the preceding
        # convolution / matmul (its YNNPACK fusions take `maximum`, not `select`).
        return jax.nn.relu(x)
    if negative_slope != 0.0 and max_value is None and threshold == 0:
        return leaky_relu(x, negative_slope=negative_slope)
    if threshold != 0:
        y = jnp.where(x > threshold, x, jnp.zeros_like(x))
    else:
        y = jnp.where(x > 0, x, jnp.zeros_like(x))
    if max_value is not None:
        y = jnp.clip(y, jnp.asarray(0, x.dtype), jnp.asarray(max_value, x.dtype))
    if negative_slope != 0.0:
        below = jnp.where(threshold - x > 0, threshold - x, jnp.zeros_like(x))
        y = y - negative_slope * below
    return y


def leaky_relu(x, negative_slope=0.2):
    """Leaky ReLU: ``x`` where ``x >= 0``, ``negative_slope * x`` elsewhere."""
    x = _inexact(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def relu6(x):
    """ReLU capped at 6: ``min(max(x, 0), 6)``."""
    x = _inexact(x)
    return jnp.minimum(jnp.maximum(x, 0.0), 6.0)


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere."""
    x = _inexact(x)
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)  # keeps exp (and its gradient) finite for x >> 0
    return jnp.where(x > 0, x, alpha * jnp.expm1(neg))


def selu(x):
    """Scaled ELU: ``scale * elu(x, alpha)`` with ``alpha = 1.6732632...``, ``scale = 1.0507009...``."""
    return _SELU_SCALE * elu(x, alpha=_SELU_ALPHA)


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: ``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``."""
    x = _inexact(x)
    return jnp.maximum(x, 0.0) + alpha * jnp.expm1(jnp.minimum(x, 0.0) / alpha)


def gelu(x, approximate=False):
    """Gaussian error linear unit: ``x * Phi(x)``.

    ``approximate=False`` (Keras' default for the activation) uses the exact normal CDF,
    ``0.5 * x * erfc(-x / sqrt(2))``; ``approximate=True`` uses
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.
    """
    x = _inexact(x)
    if approximate:
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + jnp.tanh(inner))
    return (0.5 * x * _erfc(-x * _SQRT_HALF)).astype(x.dtype)


# --------------------------------------------------------------------------------------------------
# Sigmoid family


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed stably."""
    return lax.logistic(_inexact(x))


def hard_sigmoid(x):
    """Piecewise-linear sigmoid (Keras 3): ``relu6(x + 3) / 6``."""
    return relu6(_inexact(x) + 3.0) / 6.0


def sparse_sigmoid(x):
    """``0`` for ``x <= -1``, ``(x + 1) / 2`` for ``-1 < x < 1``, ``1`` for ``x >= 1``."""
    x = _inexact(x)
    return 0.5 * jnp.clip(x + 1.0, 0.0, 2.0)


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, finite for every finite input."""
    return -softplus(-_inexact(x))


def silu(x):
    """SiLU / swish: ``x * sigmoid(x)``."""
    x = _inexact(x)
    return x * lax.logistic(x)


swish = silu


def hard_silu(x):
    """Hard SiLU / hard swish: ``x * relu6(x + 3) / 6``.

    Written piecewise (0 below -3, ``x`` above 3) so the value and the gradient stay finite at
    +-inf, where the product form gives ``inf * 0``.
    """
    x = _inexact(x)
    middle = jnp.clip(x, -3.0, 3.0)
    curve = middle * (middle + 3.0) / 6.0
    return jnp.where(x >= 3.0, x, jnp.where(x <= -3.0, jnp.zeros_like(x), curve))


hard_swish = hard_silu


def glu(x, axis=-1):
    """Gated linear unit: split ``x`` in two halves ``a, b`` along ``axis``; returns ``a * sigmoid(b)``."""
    x = _inexact(x)
    size = x.shape[axis]
    if size % 2 != 0:
        raise ValueError(
            f"glu: the size of axis {axis} must be even to split it in two halves; got shape {x.shape}."
        )
    a, b = jnp.split(x, 2, axis=axis)
    return a * lax.logistic(b)


# --------------------------------------------------------------------------------------------------
# Softplus family


def softplus(x):
    """``log(1 + exp(x))``, computed as ``logaddexp(x, 0)`` (stable for large ``|x|``)."""
    x = _inexact(x)
    return jnp.logaddexp(x, jnp.zeros_like(x))


def softsign(x):
    """``x / (|x| + 1)``."""
    x = _inexact(x)
    return x / (jnp.abs(x) + 1.0)


def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``."""
    x = _inexact(x)
    return (x + jnp.sqrt(jnp.square(x) + b)) / 2.0


def sparse_plus(x):
    """``0`` for ``x <= -1``, ``(x + 1)**2 / 4`` for ``-1 < x < 1``, ``x`` for ``x >= 1``."""
    x = _inexact(x)
    return jnp.where(x <= -1.0, jnp.zeros_like(x), jnp.where(x >= 1.0, x, jnp.square(x + 1.0) / 4.0))


def mish(x):
    """``x * tanh(softplus(x))``."""
    x = _inexact(x)
    return x * jnp.tanh(softplus(x))


# --------------------------------------------------------------------------------------------------
# Tanh family and shrinkage


def tanh(x):
    """Hyperbolic tangent."""
    return jnp.tanh(_inexact(x))


def tanh_shrink(x):
    """``x - tanh(x)``."""
    x = _inexact(x)
    return x - jnp.tanh(x)


def hard_tanh(x):
    """``x`` clipped to ``[-1, 1]``."""
    x = _inexact(x)
    return jnp.where(x > 1.0, jnp.ones_like(x), jnp.where(x < -1.0, -jnp.ones_like(x), x))


def hard_shrink(x, threshold=0.5):
    """``x`` where ``|x| > threshold``, ``0`` elsewhere."""
    x = _inexact(x)
    return jnp.where(jnp.abs(x) > threshold, x, jnp.zeros_like(x))


def soft_shrink(x, threshold=0.5):
    """``x - threshold`` above ``threshold``, ``x + threshold`` below ``-threshold``, ``0`` between."""
    x = _inexact(x)
    return jnp.where(
        x > threshold, x - threshold, jnp.where(x < -threshold, x + threshold, jnp.zeros_like(x))
    )


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, ``default_value`` elsewhere (both arguments required, as in Keras)."""
    x = _inexact(x)
    return jnp.where(x > threshold, x, jnp.asarray(default_value, x.dtype))


# --------------------------------------------------------------------------------------------------
# Identity and exponential


def linear(x):
    """Identity: returns ``x`` unchanged."""
    return x


def exponential(x):
    """``exp(x)``."""
    return jnp.exp(_inexact(x))


# --------------------------------------------------------------------------------------------------
# Normalising activations


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (an int or a tuple of ints), shifted by the max."""
    x = _inexact(x)
    m = lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(x - m)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis`` (an int or a tuple of ints)."""
    x = _inexact(x)
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def sparsemax(x, axis=-1):
    """Sparsemax: the Euclidean projection of ``x`` onto the probability simplex along ``axis``.

    Returns ``max(x - tau, 0)`` where ``tau`` is chosen so that the result sums to 1 along ``axis``
    (Martins & Astudillo, 2016): with ``z`` sorted in descending order, ``k`` the number of indices
    ``j`` (1-based) with ``z_j - (cumsum(z)_j - 1) / j > 0``, ``tau = (cumsum(z)_k - 1) / k``.
    """
    x = _inexact(x)
    axis = axis % x.ndim if x.ndim else axis
    z = jnp.moveaxis(x, axis, -1)
    n = z.shape[-1]
    z_sorted = -jnp.sort(-z, axis=-1)
    cumsum = jnp.cumsum(z_sorted, axis=-1)
    r = jnp.arange(1, n + 1, dtype=z.dtype).reshape((1,) * (z.ndim - 1) + (n,))
    support = z_sorted - (cumsum - 1.0) / r > 0
    k = jnp.sum(support, axis=-1, keepdims=True)
    # support is a prefix of the sorted axis, so the sum over it is cumsum at index k - 1
    support_sum = jnp.sum(jnp.where(support, z_sorted, jnp.zeros_like(z_sorted)), axis=-1, keepdims=True)
    tau = (support_sum - 1.0) / k.astype(z.dtype)
    out = jnp.maximum(z - tau, 0.0)
    return jnp.moveaxis(out, -1, axis)


# --------------------------------------------------------------------------------------------------
# Lookup

ALL = MappingProxyType({
    f.__name__: f
    for f in (
        celu, elu, exponential, gelu, glu, hard_shrink, hard_sigmoid, hard_silu, hard_tanh,
        leaky_relu, linear, log_sigmoid, log_softmax, mish, relu, relu6, selu, sigmoid, silu,
        soft_shrink, softmax, softplus, softsign, sparse_plus, sparse_sigmoid, sparsemax,
        squareplus, tanh, tanh_shrink, threshold,
    )
} | {"swish": swish, "hard_swish": hard_swish})
"""Read-only mapping from every activation name (aliases ``swish``, ``hard_swish`` included) to its function."""


def _layer_function(layer):
    """``x -> layer.apply(params, x)`` for a parameter-free layer (a ValueError names one that
    is stateful or, when first traced, one whose init makes weights)."""
    if layer.stateful:
        raise ValueError(f"activation: {layer.name} is stateful; an activation must be a "
                         f"parameter-free, stateless layer (put it after this layer instead)")

    def activation(x):
        x = _inexact(x)
        _, params = layer.init(jax.random.key(0), x.shape)
        if jax.tree_util.tree_leaves(params):
            raise ValueError(f"activation: {layer.name} has weights; an activation must be a "
                             f"parameter-free layer (put it after this layer instead)")
        return layer.apply(params, x)

    activation.__name__ = layer.name
    return activation


def names():
    """Returns the sorted tuple of every name ``get`` accepts."""
    return tuple(sorted(ALL))


def get(identifier):
    """Returns the activation function for ``identifier``.

    ``None`` gives ``linear``; a callable is returned unchanged; a string is looked up by name
    (Keras' names, e.g. ``"relu"``, ``"swish"``); a parameter-free layer (``jaxlayers.LeakyReLU(
    0.1)``, as Keras 3 accepts) becomes the function ``x -> layer.apply((), x)``. An unknown name,
    or anything else, raises ``ValueError`` naming the valid choices.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, Layer):
        return _layer_function(identifier)
    if isinstance(identifier, str):
        return by_name(identifier, ALL, "activation")
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret activation identifier {identifier!r}: expected None, a callable or one "
        f"of the names {', '.join(names())}."
    )
