"""Registry entries: normalization, regularization and advanced activation layers (issue 5)."""
import jax
import jax.numpy as jnp

import jaxlayers as jl
from tests.cases import Case


def _rand(mean):
    # Random (not constant) initial weights, so stacked members with different keys differ.
    return jl.initializers.RandomNormal(mean, 0.2)


G = dict(gamma_initializer=_rand(1.0), beta_initializer=_rand(0.0))


def _positive(key, shape):
    return jax.random.uniform(key, shape, jnp.float32, 0.5, 2.0)


CASES = [
    # Normalization. BatchNormalization in eval mode alone; in train mode inside a model
    # with a Dropout (train=True cases must need an rng).
    Case("BatchNormalization-2d", lambda: jl.BatchNormalization(**G), (None, 4)),
    Case("BatchNormalization-seq", lambda: jl.BatchNormalization(**G), (None, 3, 4)),
    Case("BatchNormalization-image-channels_first", lambda: jl.BatchNormalization(axis=1, **G),
         (None, 3, 4, 2)),
    Case("BatchNormalization-axes-list", lambda: jl.BatchNormalization(axis=[1, 3], **G),
         (None, 2, 3, 4)),
    Case("BatchNormalization-nocenter-noscale",
         lambda: jl.BatchNormalization(center=False, scale=False), (None, 4)),
    Case("BatchNormalization-train-in-model",
         lambda: jl.serial(jl.Dense(4), jl.BatchNormalization(), jl.Dropout(0.25)), (None, 3),
         batch=6, train=True),
    Case("BatchNormalization-train-image",
         lambda: jl.serial(jl.BatchNormalization(axis=1, **G), jl.SpatialDropout2D(
             0.2, data_format="channels_first")), (None, 2, 3, 3), train=True),
    Case("inference-bn-dropout",
         lambda: jl.serial(jl.inference(jl.serial(jl.BatchNormalization(**G), jl.Dropout(0.5))),
                           jl.Dropout(0.2)), (None, 4), train=True),
    Case("inference-stateless", lambda: jl.inference(jl.serial(jl.Dense(3), jl.Dropout(0.5))),
         (None, 4)),
    Case("LayerNormalization", lambda: jl.LayerNormalization(**G), (None, 3, 5)),
    Case("LayerNormalization-axes", lambda: jl.LayerNormalization(axis=[-2, -1], **G),
         (None, 3, 4)),
    Case("LayerNormalization-rms_scaling", lambda: jl.LayerNormalization(rms_scaling=True, **G),
         (None, 6)),
    # RMSNormalization's scale always starts at ones (no initializer argument in Keras): a
    # Dense in front makes stacked members differ.
    Case("RMSNormalization", lambda: jl.serial(jl.Dense(6), jl.RMSNormalization()),
         (None, 2, 6)),
    Case("GroupNormalization", lambda: jl.GroupNormalization(2, **G), (None, 3, 3, 4)),
    Case("GroupNormalization-channels_first-instance",
         lambda: jl.GroupNormalization(-1, axis=1, **G), (None, 3, 4)),
    Case("UnitNormalization", lambda: jl.UnitNormalization(), (None, 5)),
    Case("UnitNormalization-axes", lambda: jl.UnitNormalization(axis=[1, 2]), (None, 2, 3)),
    # Regularization layers.
    Case("SpatialDropout1D", lambda: jl.SpatialDropout1D(0.5), (None, 4, 3), train=True),
    Case("SpatialDropout2D", lambda: jl.SpatialDropout2D(0.3), (None, 3, 3, 2), train=True),
    Case("SpatialDropout3D-channels_first",
         lambda: jl.SpatialDropout3D(0.3, data_format="channels_first"), (None, 2, 2, 2, 3),
         train=True),
    Case("GaussianNoise", lambda: jl.GaussianNoise(0.1), (None, 5), train=True),
    Case("GaussianDropout", lambda: jl.GaussianDropout(0.3), (None, 5), train=True),
    Case("AlphaDropout", lambda: jl.AlphaDropout(0.2), (None, 6), train=True),
    Case("AlphaDropout-noise_shape", lambda: jl.AlphaDropout(0.2, noise_shape=(None, 1, 3)),
         (None, 2, 3), train=True),
    Case("ActivityRegularization", lambda: jl.ActivityRegularization(l1=0.01, l2=0.02),
         (None, 4)),
    Case("Dense-activity_regularizer-dropout",
         lambda: jl.serial(jl.Dense(3, activity_regularizer="l2"), jl.Dropout(0.2)), (None, 4),
         train=True),
    # Advanced activations (inputs kept off the kinks for check_grads where it matters).
    Case("ReLU", lambda: jl.ReLU(), (None, 5), make_input=_positive),
    Case("ReLU-options", lambda: jl.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.2),
         (None, 5), make_input=lambda k, s: jax.random.uniform(k, s, jnp.float32, 0.3, 5.0)),
    Case("LeakyReLU", lambda: jl.LeakyReLU(), (None, 2, 5)),
    Case("ELU", lambda: jl.ELU(alpha=0.5), (None, 5)),
    Case("PReLU", lambda: jl.PReLU(alpha_initializer=_rand(0.3)), (None, 3, 4)),
    Case("PReLU-shared_axes", lambda: jl.PReLU(alpha_initializer=jl.initializers.RandomNormal(
        0.25, 0.1), shared_axes=[1, 2]), (None, 2, 3, 4)),
    Case("Softmax", lambda: jl.Softmax(), (None, 5)),
    Case("Softmax-axes", lambda: jl.Softmax(axis=(1, 2)), (None, 2, 3)),
]
