"""MixUp and CutMix: the transforms against Keras 3's own with the same parameters, the
random draws against their distributions, the layer rules (train only, rng, dict input)."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxlayers as jl
from jaxlayers.layers.augmentation_mix import cut_mix, mix_up

B, H, W, C = 6, 5, 7, 3


def images(seed=0, shape=(B, H, W, C)):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def one_hot():
    return np.eye(B, dtype=np.float32)


def test_mix_up_transform_matches_keras():
    x, y = images(), one_hot()
    weight = np.random.default_rng(1).uniform(size=B).astype(np.float32)
    perm = np.random.default_rng(2).permutation(B).astype(np.int32)
    ours = mix_up(jnp.asarray(x), jnp.asarray(y), jnp.asarray(weight), jnp.asarray(perm))
    layer = keras.layers.MixUp()
    t = {"mix_weight": weight, "permutation_order": perm}
    with jax.numpy_rank_promotion("allow"):
        ref_x = layer.transform_images(x, t, training=True)
        ref_y = layer.transform_labels(y, t, training=True)
    np.testing.assert_allclose(ours[0], ref_x, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ours[1], ref_y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_cut_mix_transform_matches_keras(data_format):
    first = data_format == "channels_first"
    x = images(shape=(B, C, H, W) if first else (B, H, W, C))
    y = one_hot()
    r = np.random.default_rng(3)
    x0 = r.uniform(0, 3, B).astype(np.float32)
    y0 = r.uniform(0, 2, B).astype(np.float32)
    x1, y1 = x0 + r.uniform(1, 4, B).astype(np.float32), y0 + r.uniform(1, 3, B).astype(np.float32)
    perm = r.permutation(B).astype(np.int32)
    ours = cut_mix(jnp.asarray(x), jnp.asarray(y), tuple(map(jnp.asarray, (x0, x1, y0, y1))),
                   jnp.asarray(perm), channels_first=first)
    layer = keras.layers.CutMix(data_format=data_format)
    with jax.numpy_rank_promotion("allow"):
        masks, weight = layer._generate_batch_mask(x.shape, (x0, x1, y0, y1))
        t = {"permutation_order": perm, "batch_masks": masks, "mix_weight": weight}
        ref_x = layer.transform_images(x, t, training=True)
        ref_y = layer.transform_labels(y, t, training=True)
    np.testing.assert_array_equal(ours[0], ref_x)
    np.testing.assert_allclose(ours[1], ref_y, rtol=1e-6, atol=1e-6)


def _label_weights(out_labels):
    """The weight each image kept, from mixed one-hot labels (rows mixed with another)."""
    out = np.asarray(out_labels)
    kept = np.diagonal(out, axis1=-2, axis2=-1)
    return kept[kept < 1 - 1e-6]


def test_mix_up_weights_follow_beta_and_only_in_training():
    layer = jl.MixUp(alpha=0.4)
    data = {"images": jnp.asarray(images()), "labels": jnp.asarray(one_hot())}
    assert layer.apply((), data) is data                               # inference: identity
    with pytest.raises(ValueError, match=r"MixUp.*rng"):
        layer.apply((), data, train=True)
    keys = jax.random.split(jax.random.key(0), 400)
    run = jax.jit(jax.vmap(lambda k: layer.apply((), data, rng=k, train=True)))
    out = run(keys)
    w = _label_weights(out["labels"])
    ref = np.random.default_rng(0).beta(0.4, 0.4, 20000)
    qs = np.linspace(0.05, 0.95, 10)
    np.testing.assert_allclose(np.quantile(w, qs), np.quantile(ref, qs), atol=0.06)
    # images mixed with the labels' weights: row i = w x_i + (1 - w) x_j
    np.testing.assert_allclose(np.asarray(out["labels"]).sum(-1), 1.0, rtol=1e-6)
    y = np.asarray(jl.MixUp().apply((), jnp.asarray(images()), rng=keys[0], train=True))
    assert y.shape == (B, H, W, C) and not np.allclose(y, images())


def test_cut_mix_boxes_replace_pixels_and_weight_the_labels():
    layer = jl.CutMix(factor=(0.5, 1.0))
    x = np.broadcast_to(np.arange(B, dtype=np.float32)[:, None, None, None], (B, 16, 16, 1))
    data = {"images": jnp.asarray(x), "labels": jnp.asarray(one_hot())}
    out = jax.jit(lambda k: layer.apply((), data, rng=k, train=True))(jax.random.key(3))
    imgs, labels = np.asarray(out["images"]), np.asarray(out["labels"])
    for i in range(B):
        partner = int(np.argmax(labels[i] - np.eye(B)[i] * labels[i, i]))
        replaced = (imgs[i] != i).mean()
        if labels[i, i] < 1:       # the label keeps the fraction of pixels kept
            assert set(np.unique(imgs[i])) <= {i, partner}
            assert abs((1 - labels[i, i]) - replaced) < 0.13, (i, labels[i, i], replaced)
    keys = jax.random.split(jax.random.key(0), 300)
    kept = _label_weights(jax.vmap(lambda k: layer.apply((), data, rng=k,
                                                         train=True)["labels"])(keys))
    assert 0.35 < kept.mean() < 0.65 and kept.min() >= 0 and kept.max() <= 1


def test_mixing_layers_check_their_input_and_arguments():
    with pytest.raises(jl.ShapeError, match=r"MixUp.*batch of images"):
        jl.MixUp().init(jax.random.key(0), (None, 5, 3))
    with pytest.raises(jl.ShapeError, match=r"CutMix.*labels must be one-hot"):
        jl.CutMix().init(jax.random.key(0), {"images": (None, 4, 4, 3), "labels": (None,)})
    with pytest.raises(ValueError, match=r"MixUp: alpha must be a positive number"):
        jl.MixUp(alpha=0)
    with pytest.raises(ValueError, match=r"CutMix: factor"):
        jl.CutMix(factor=2.0)
    shape = {"images": (None, 4, 4, 3), "labels": (None, 10)}
    assert jl.MixUp(name="mix").init(jax.random.key(0), shape)[0] == shape


def test_from_keras_converts_mix_up_and_cut_mix():
    with jax.numpy_rank_promotion("allow"):
        km = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.MixUp(alpha=0.3),
                               keras.layers.CutMix(factor=0.7)])
    model, params = jl.from_keras(km)[:2]
    kinds = [c.name for c in model.children]
    assert "MixUp(alpha=0.3)" in kinds and "CutMix(factor=(0, 0.7))" in kinds   # Keras saves the range
    x = images(shape=(2, 6, 6, 3))
    np.testing.assert_array_equal(model.apply(params, x), x)          # inference: identity
