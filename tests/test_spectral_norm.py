"""SpectralNormalization against Keras 3 (JAX backend) and numpy's singular values."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from tests.keras_ref import normal

KEY = jax.random.key(0)


def _keras_train_call(klayer, params, u, x):
    """Keras' SpectralNormalization(klayer) built, `params` and `u` copied in, called once
    with training=True: (output, new u, the kernel Keras stores afterwards)."""
    kl = keras.layers.SpectralNormalization(klayer)
    with jax.numpy_rank_promotion("allow"):
        kl.build(x.shape)
        for v in kl.layer.weights:
            v.assign(params[v.path.split("/")[-1]])
        kl.vector_u.assign(u)
        y = np.asarray(kl(x, training=True))
    name = "kernel" if "kernel" in params else "embeddings"
    return y, np.asarray(kl.vector_u), np.asarray(getattr(kl.layer, name))


@pytest.mark.parametrize("make,kmake,shape", [
    (lambda: jl.Dense(3), lambda: keras.layers.Dense(3), (2, 4)),
    (lambda: jl.Conv2D(3, 2), lambda: keras.layers.Conv2D(3, 2), (2, 4, 4, 2)),
], ids=["Dense", "Conv2D"])
def test_training_call_matches_keras(make, kmake, shape):
    layer = jl.SpectralNormalization(make())
    assert layer.stateful
    _, params, state = layer.init(KEY, (None,) + shape[1:])
    params = jax.tree_util.tree_map(lambda p: normal(p.shape, seed=p.size), params)
    state = {"vector_u": normal(state["vector_u"].shape, seed=5)}
    x = normal(shape, seed=2)
    y, new = jax.jit(lambda p, s, x: layer.apply(p, s, x, train=True))(params, state, x)
    ref_y, ref_u, ref_kernel = _keras_train_call(kmake(), params, state["vector_u"], x)
    np.testing.assert_allclose(np.asarray(y), ref_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new["vector_u"]), ref_u, rtol=1e-5, atol=1e-6)
    # inference after that step: the kernel divided by the kept u's estimate
    y_eval, same = layer.apply(params, new, x)
    assert same["vector_u"] is new["vector_u"]
    w = params["kernel"].reshape(-1, params["kernel"].shape[-1])
    sigma = np.linalg.norm(w @ np.asarray(new["vector_u"]).T)
    plain = make()
    want = plain.apply(dict(params, kernel=params["kernel"] / sigma), x)
    np.testing.assert_allclose(np.asarray(y_eval), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_power_iteration_converges_to_the_largest_singular_value():
    layer = jl.SpectralNormalization(jl.Dense(5), power_iterations=3)
    _, params, state = layer.init(KEY, (None, 6))
    step = jax.jit(lambda s: layer.apply(params, s, jnp.ones((1, 6)), train=True)[1])
    for _ in range(20):
        state = step(state)
    w = np.asarray(params["kernel"])
    top = np.linalg.svd(w, compute_uv=False)[0]
    np.testing.assert_allclose(np.linalg.norm(w @ np.asarray(state["vector_u"]).T), top,
                               rtol=1e-4)
    normalized = np.asarray(params["kernel"]) / np.linalg.norm(w @ np.asarray(state["vector_u"]).T)
    np.testing.assert_allclose(np.linalg.svd(normalized, compute_uv=False)[0], 1.0, rtol=1e-4)


def test_embedding_and_gradient_through_sigma():
    layer = jl.SpectralNormalization(jl.Embedding(6, 3))
    _, params, state = layer.init(KEY, (None, 2))
    ids = np.array([[1, 2]], np.int32)
    y, new = layer.apply(params, state, ids, train=True)
    assert y.shape == (1, 2, 3) and not np.allclose(new["vector_u"], state["vector_u"])
    g = jax.grad(lambda p: layer.apply(p, state, ids, train=True)[0].sum())(params)
    # sigma depends on every row, so rows that were not looked up get a gradient too
    assert np.abs(np.asarray(g["embeddings"])[[0, 3, 4, 5]]).sum() > 0


def test_zero_kernel_is_kept_and_errors_name_the_layer():
    layer = jl.SpectralNormalization(jl.Dense(2, kernel_initializer="zeros"))
    _, params, state = layer.init(KEY, (None, 3))
    y, new = layer.apply(params, state, np.ones((1, 3), np.float32), train=True)
    assert np.all(np.isfinite(y)) and np.array_equal(new["vector_u"], state["vector_u"])
    with pytest.raises(ValueError, match="SpectralNormalization: power_iterations must be a "
                                         "positive int"):
        jl.SpectralNormalization(jl.Dense(2), power_iterations=0)
    with pytest.raises(jl.ShapeError, match=r"SpectralNormalization\(Flatten.*no 'kernel' nor "
                                            r"'embeddings'"):
        jl.SpectralNormalization(jl.Flatten()).init(KEY, (None, 2, 2))
    with pytest.raises(TypeError, match="stateful"):
        layer.apply(params, np.ones((1, 3), np.float32))
