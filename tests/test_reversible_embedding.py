"""ReversibleEmbedding against Keras 3 (JAX backend) with the same weights."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from tests.keras_ref import normal

KEY = jax.random.key(0)
IDS = np.array([[1, 0, 4], [3, 2, 0]], np.int32)


def _keras_pair(weights, **kwargs):
    kl = keras.layers.ReversibleEmbedding(5, 3, **kwargs)
    with jax.numpy_rank_promotion("allow"):
        kl.build((None, 3))
        kl.set_weights(weights)
    return kl


@pytest.mark.parametrize("kwargs", [{}, {"tie_weights": False},
                                    {"logit_soft_cap": 2.0, "mask_zero": True}])
def test_forward_and_reverse_match_keras(kwargs):
    layer = jl.ReversibleEmbedding(5, 3, **kwargs)
    out_shape, params = layer.init(KEY, (None, 3))
    assert out_shape == (None, 3, 3)
    params = jax.tree_util.tree_map(lambda p: normal(p.shape, seed=p.size), params)
    names = ["embeddings"] + ([] if kwargs.get("tie_weights", True) else ["reverse_embeddings"])
    kl = _keras_pair([params[n] for n in names], **kwargs)
    h = normal((2, 4, 3), seed=3) * 3
    with jax.numpy_rank_promotion("allow"):
        ref_fwd, ref_rev = np.asarray(kl(IDS)), np.asarray(kl(h, reverse=True))
    np.testing.assert_allclose(np.asarray(layer.apply(params, IDS)), ref_fwd, rtol=1e-6)
    rev = jax.jit(lambda p, h: layer.apply(p, h, reverse=True))(params, h)
    assert rev.shape == (2, 4, 5)
    np.testing.assert_allclose(np.asarray(rev), ref_rev, rtol=1e-5, atol=1e-6)


def test_tied_reverse_is_the_transposed_table_and_gets_both_gradients():
    layer = jl.ReversibleEmbedding(5, 3)
    _, params = layer.init(KEY, (None, 3))
    assert set(params) == {"embeddings"}
    h = normal((2, 3))
    np.testing.assert_allclose(layer.apply(params, h, reverse=True),
                               h @ np.asarray(params["embeddings"]).T, rtol=1e-6)

    def loss(p):
        return layer.apply(p, layer.apply(p, IDS), reverse=True).sum()
    g = jax.grad(loss)(params)["embeddings"]
    # rows never looked up still get the reverse projection's gradient
    assert np.all(np.asarray(g)[[0, 1, 2, 3, 4]].any(axis=1))


def test_reverse_dtype_and_mask():
    layer = jl.ReversibleEmbedding(5, 3, reverse_dtype="bfloat16", mask_zero=True)
    _, params = layer.init(KEY, (None, 3))
    assert layer.apply(params, normal((2, 3)), reverse=True).dtype == jnp.bfloat16
    y, mask = jl.serial(layer).apply((params,), IDS, return_mask=True)
    np.testing.assert_array_equal(mask, IDS != 0)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="ReversibleEmbedding: reverse_dtype must be one of"):
        jl.ReversibleEmbedding(5, 3, reverse_dtype="int8")
    with pytest.raises(ValueError, match="ReversibleEmbedding: logit_soft_cap must be"):
        jl.ReversibleEmbedding(5, 3, logit_soft_cap=0)
    with pytest.raises(ValueError, match="ReversibleEmbedding: input_dim must be"):
        jl.ReversibleEmbedding(0, 3)
    layer = jl.ReversibleEmbedding(5, 3)
    _, params = layer.init(KEY, (None, 3))
    with pytest.raises(jl.ShapeError, match=r"reverse=True expects vectors of shape \(batch, "
                                            r"\.\.\., 3\)"):
        layer.apply(params, normal((2, 4)), reverse=True)
