"""EinsumDense's dense form: an equation that is a dense layer in disguise (contracted
axes closing the input and opening the kernel, output = the input's other axes then the
kernel's) and contracts several axes runs as one 2-D matrix product between reshapes,
with the einsum's numbers and gradients; every other equation stays an einsum. Keras'
numbers: tests/test_attention.py."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers.einsum_dense import dense_form

KEY = jax.random.key(0)


@pytest.mark.parametrize("equation,contracted", [
    ("ab,bc->ac", 1),
    ("abc,cde->abde", 1),                # MultiHeadAttention's query / key / value
    ("abcd,cde->abe", 2),                # and its output projection
    ("...b,bc->...c", 1),
    ("...cd,cde->...e", 2),
    ("bqm,muh->bquh", 1),                # GroupedQueryAttention
    ("abc,bd->acd", None),               # the contracted axis is not the input's last
    ("abc,dc->abd", None),               # nor the kernel's first
    ("abcd,dce->abe", None),             # contracted in another order
    ("abc,cd->adb", None),               # output axes reordered
    ("abc,cd->ad", None),                # an input axis summed away
    ("abc...,cd->abd...", None),         # trailing ellipsis
])
def test_dense_form_is_recognised(equation, contracted):
    assert dense_form(equation) == contracted


def _reference(equation, params, x):
    y = np.einsum(equation, np.asarray(x, np.float64), np.asarray(params["kernel"], np.float64))
    return y + np.asarray(params["bias"], np.float64) if "bias" in params else y


@pytest.mark.parametrize("equation,out,bias,shape", [
    ("abc,cde->abde", (None, 3, 4), "de", (2, 5, 6)),      # bias added flat
    ("abc,cde->abde", (None, 3, 4), "e", (2, 5, 6)),       # bias broadcast after
    ("abc,cde->abde", (None, 3, 4), "d", (2, 5, 6)),       # bias (3, 1)
    ("abcd,cde->abe", (None, 7), "e", (2, 5, 3, 4)),
    ("...cd,cde->...e", 7, None, (2, 3, 5, 3, 4)),
    ("abc,bd->acd", (6, 4), "d", (2, 5, 6)),               # an einsum still
])
def test_dense_form_numbers_and_gradients_equal_the_einsum(equation, out, bias, shape):
    layer = jl.EinsumDense(equation, out, bias_axes=bias)
    _, params = layer.init(KEY, (None,) + shape[1:])
    keys = jax.random.split(jax.random.key(1), 3)
    params = {n: jax.random.normal(k, p.shape) for (n, p), k in zip(params.items(), keys)}
    x = jax.random.normal(keys[-1], shape)
    np.testing.assert_allclose(jax.jit(layer.apply)(params, x), _reference(equation, params, x),
                               rtol=1e-5, atol=1e-5)

    def einsum_apply(p, x):
        y = jnp.einsum(equation, x, p["kernel"])
        return y + jnp.broadcast_to(p["bias"], y.shape) if "bias" in p else y

    def loss(apply):
        return lambda p, x: jnp.sum(jnp.sin(apply(p, x)))
    got = jax.grad(loss(layer.apply), argnums=(0, 1))(params, x)
    want = jax.grad(loss(einsum_apply), argnums=(0, 1))(params, x)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def _moves(apply, params, x) -> int:
    """Transposes and copies in XLA's optimized program of ``grad(sum(sin(apply)))``."""
    grad = jax.grad(lambda p, x: jnp.sum(jnp.sin(apply(p, x))), argnums=(0, 1))
    text = jax.jit(grad).lower(params, x).compile().as_text()
    return len(re.findall(r" (?:transpose|copy)\(", text))


@pytest.mark.parametrize("equation,out,bias,shape", [
    ("abcd,cde->abe", (None, 16), "e", (None, 5, 4, 8)),    # MultiHeadAttention's output
    ("...cd,cde->...e", 16, "e", (None, 5, 4, 8)),
])
def test_dense_form_compiles_with_fewer_transposes_than_the_einsum(equation, out, bias, shape):
    """What the dense form is for, with several contracted axes: forward and gradient, XLA
    moves less data around than for the einsum of the same numbers (1 transpose and 1 copy
    against 3 and 3 here). One contracted axis stays an einsum (measured faster to run)."""
    layer = jl.EinsumDense(equation, out, bias_axes=bias)
    _, params = layer.init(KEY, shape)
    x = jnp.ones((2,) + shape[1:])

    def einsum_apply(p, x):
        y = jnp.einsum(equation, x, p["kernel"])
        return y + jnp.broadcast_to(p["bias"], y.shape)
    assert _moves(layer.apply, params, x) < _moves(einsum_apply, params, x)


def test_dense_form_keeps_the_input_errors():
    layer = jl.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de")
    _, params = layer.init(KEY, (None, 5, 16))
    with pytest.raises(jl.ShapeError, match="EinsumDense"):
        layer.apply(params, jnp.ones((2, 5, 3, 16)))          # rank 4 for "abc"
    with pytest.raises(jl.ShapeError, match="EinsumDense"):
        layer.apply(params, jnp.ones((2, 5, 12)))             # 12 features for 16


def test_one_contracted_axis_stays_an_einsum():
    """MultiHeadAttention's query / key / value projections keep the 3-D kernel in one
    dot_general (their 2-D form trains the transformer step slower on CPU)."""
    layer = jl.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de")
    _, params = layer.init(KEY, (None, 5, 16))
    jaxpr = jax.make_jaxpr(layer.apply)(params, jnp.ones((2, 5, 16)))
    dots = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]
    assert [e.invars[1].aval.shape for e in dots] == [(16, 4, 8)]
