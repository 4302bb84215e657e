"""Losses and metrics against keras.losses / keras.metrics on the same numbers."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from jaxlayers.training import losses as L
from jaxlayers.training import metrics as M

R = np.random.default_rng(0)
B, C = 6, 4
LOGITS = R.normal(size=(B, C)).astype(np.float32)
PROBS = np.asarray(jax.nn.softmax(LOGITS))
ONEHOT = np.eye(C, dtype=np.float32)[R.integers(0, C, B)]
SPARSE = R.integers(0, C, B)
BIN = R.integers(0, 2, (B, 3)).astype(np.float32)
BLOGITS = R.normal(size=(B, 3)).astype(np.float32)
BPROBS = np.asarray(jax.nn.sigmoid(BLOGITS))
REG_T = R.normal(size=(B, 3)).astype(np.float32)
REG_P = R.normal(size=(B, 3)).astype(np.float32) * 2
POS_T = R.uniform(0.1, 2, size=(B, 3)).astype(np.float32)
POS_P = R.uniform(0.1, 2, size=(B, 3)).astype(np.float32)


def keras_np(fn, *args, **kw):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(fn(*args, **kw))


CASES = [
    ("binary_crossentropy", BIN, BPROBS, {}),
    ("binary_crossentropy", BIN, BLOGITS, {"from_logits": True}),
    ("binary_crossentropy", BIN, BPROBS, {"label_smoothing": 0.2}),
    ("binary_crossentropy", BIN, BLOGITS, {"from_logits": True, "label_smoothing": 0.1}),
    ("categorical_crossentropy", ONEHOT, PROBS, {}),
    ("categorical_crossentropy", ONEHOT, PROBS * 3.0, {}),
    ("categorical_crossentropy", ONEHOT, LOGITS, {"from_logits": True}),
    ("categorical_crossentropy", ONEHOT, LOGITS, {"from_logits": True, "label_smoothing": 0.3}),
    ("sparse_categorical_crossentropy", SPARSE, PROBS, {}),
    ("sparse_categorical_crossentropy", SPARSE[:, None], LOGITS, {"from_logits": True}),
    ("sparse_categorical_crossentropy", SPARSE, LOGITS, {"from_logits": True,
                                                         "ignore_class": int(SPARSE[0])}),
    ("mean_squared_error", REG_T, REG_P, {}),
    ("mean_absolute_error", REG_T, REG_P, {}),
    ("mean_absolute_percentage_error", REG_T, REG_P, {}),
    ("mean_squared_logarithmic_error", POS_T, POS_P, {}),
    ("huber", REG_T, REG_P, {}),
    ("huber", REG_T, REG_P, {"delta": 0.5}),
    ("log_cosh", REG_T, REG_P, {}),
    ("poisson", POS_T, POS_P, {}),
    ("kl_divergence", PROBS, np.asarray(jax.nn.softmax(REG_P @ np.ones((3, C)) + LOGITS)), {}),
    ("cosine_similarity", REG_T, REG_P, {}),
    ("hinge", BIN, BLOGITS, {}),
    ("hinge", REG_T, REG_P, {}),
    ("squared_hinge", BIN, BLOGITS, {}),
    ("categorical_hinge", ONEHOT, LOGITS, {}),
]


@pytest.mark.parametrize("name,y_true,y_pred,kw", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_function_matches_keras(name, y_true, y_pred, kw):
    ours = np.asarray(getattr(L, name)(y_true, y_pred, **kw))
    theirs = keras_np(getattr(keras.losses, name), y_true, y_pred, **kw)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("ours,theirs,y_true,y_pred", [
    (L.BinaryCrossentropy(from_logits=True), keras.losses.BinaryCrossentropy(from_logits=True),
     BIN, BLOGITS),
    (L.SparseCategoricalCrossentropy(from_logits=True),
     keras.losses.SparseCategoricalCrossentropy(from_logits=True), SPARSE, LOGITS),
    (L.CategoricalCrossentropy(label_smoothing=0.1),
     keras.losses.CategoricalCrossentropy(label_smoothing=0.1), ONEHOT, PROBS),
    (L.Huber(delta=0.7), keras.losses.Huber(delta=0.7), REG_T, REG_P),
    (L.MeanSquaredError(), keras.losses.MeanSquaredError(), REG_T, REG_P),
])
def test_loss_objects_reduce_like_keras(ours, theirs, y_true, y_pred):
    w = R.uniform(size=(B,)).astype(np.float32)
    np.testing.assert_allclose(ours(y_true, y_pred), keras_np(theirs, y_true, y_pred),
                               atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ours(y_true, y_pred, sample_weight=w),
                               keras_np(theirs, y_true, y_pred, sample_weight=w),
                               atol=1e-5, rtol=1e-5)


def test_losses_jit_and_grad():
    f = jax.jit(lambda p: L.get("sparse_categorical_crossentropy")(SPARSE, p))
    g = jax.grad(lambda z: L.CategoricalCrossentropy(from_logits=True)(ONEHOT, z))(LOGITS)
    assert np.isfinite(f(PROBS)) and np.all(np.isfinite(g))
    # softmax-crossentropy gradient is (softmax - onehot) / batch
    np.testing.assert_allclose(g, (PROBS - ONEHOT) / B, atol=1e-6)


def test_loss_errors():
    with pytest.raises(ValueError, match="unknown loss 'msee'.*mean_squared_error"):
        L.get("msee")
    with pytest.raises(ValueError, match="same shape.*y_true.shape=\\(6, 3\\)"):
        L.binary_crossentropy(BIN, BPROBS[:, :2])
    with pytest.raises(ValueError, match="without the class axis"):
        L.sparse_categorical_crossentropy(SPARSE[:3], LOGITS)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_crossentropy_labels_outside_the_classes_match_keras(from_logits):
    """Keras 3 gives 0 (an all-zero one-hot row) for a label >= classes and for -1."""
    y = np.array([C, -1, C + 7, 1, -3, 0])
    y_pred = LOGITS if from_logits else PROBS
    ours = np.asarray(L.sparse_categorical_crossentropy(y, y_pred, from_logits=from_logits))
    theirs = keras_np(keras.losses.sparse_categorical_crossentropy, y, y_pred,
                      from_logits=from_logits)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert ours[0] == ours[1] == 0.0 and ours[3] > 0


def _keras_metric(metric, y_true, y_pred, sample_weight=None, batches=1):
    with jax.numpy_rank_promotion("allow"):
        idx = np.array_split(np.arange(len(y_pred)), batches)
        for i in idx:
            metric.update_state(y_true[i], y_pred[i],
                                None if sample_weight is None else sample_weight[i])
        return float(metric.result())


def _ours(metric, y_true, y_pred, sample_weight=None, batches=1):
    s = metric.init()
    upd = jax.jit(metric.update)
    for i in np.array_split(np.arange(len(y_pred)), batches):
        s = upd(s, y_true[i], y_pred[i], None if sample_weight is None else sample_weight[i])
    return float(metric.result(s))


N = 40
MT_LOGITS = R.normal(size=(N, 5)).astype(np.float32)
MT_SPARSE = R.integers(0, 5, N)
MT_ONEHOT = np.eye(5, dtype=np.float32)[MT_SPARSE]
MT_BIN = R.integers(0, 2, (N, 1)).astype(np.float32)
MT_SCORE = np.clip(MT_BIN[:, 0] * 0.3 + R.uniform(size=N) * 0.7, 0, 1).astype(np.float32)[:, None]
MT_W = R.uniform(size=(N,)).astype(np.float32)


@pytest.mark.parametrize("make_ours,make_keras,y_true,y_pred", [
    (M.SparseCategoricalAccuracy, keras.metrics.SparseCategoricalAccuracy, MT_SPARSE, MT_LOGITS),
    (M.CategoricalAccuracy, keras.metrics.CategoricalAccuracy, MT_ONEHOT, MT_LOGITS),
    (M.BinaryAccuracy, keras.metrics.BinaryAccuracy, MT_BIN, MT_SCORE),
    (lambda: M.TopKCategoricalAccuracy(k=2), lambda: keras.metrics.TopKCategoricalAccuracy(k=2),
     MT_ONEHOT, MT_LOGITS),
    (lambda: M.SparseTopKCategoricalAccuracy(k=3),
     lambda: keras.metrics.SparseTopKCategoricalAccuracy(k=3), MT_SPARSE, MT_LOGITS),
    (M.Accuracy, keras.metrics.Accuracy, MT_SPARSE, np.argmax(MT_LOGITS, -1)),
    (M.AUC, keras.metrics.AUC, MT_BIN, MT_SCORE),
    (lambda: M.AUC(num_thresholds=7), lambda: keras.metrics.AUC(num_thresholds=7),
     MT_BIN, MT_SCORE),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_metric_accumulates_like_keras(make_ours, make_keras, y_true, y_pred, weighted):
    w = MT_W if weighted else None
    ours = _ours(make_ours(), y_true, y_pred, w, batches=3)
    theirs = _keras_metric(make_keras(), y_true, y_pred, w, batches=3)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_auc_from_logits_and_perfect_ranking():
    logits = np.array([-2.0, -1.0, 1.0, 3.0], np.float32)
    y = np.array([0, 0, 1, 1], np.float32)
    assert float(M.AUC(from_logits=True)(y, logits)) == pytest.approx(1.0, abs=1e-6)
    assert float(M.AUC()(1 - y, jax.nn.sigmoid(logits))) == pytest.approx(0.0, abs=1e-6)


def test_accuracy_name_picks_the_kind_from_shapes():
    acc = M.get("accuracy")
    assert acc.name == "accuracy"
    assert float(acc(MT_SPARSE, MT_LOGITS)) == pytest.approx(
        float(M.SparseCategoricalAccuracy()(MT_SPARSE, MT_LOGITS)))
    assert float(acc(MT_ONEHOT, MT_LOGITS)) == pytest.approx(
        float(M.CategoricalAccuracy()(MT_ONEHOT, MT_LOGITS)))
    assert float(acc(MT_BIN, MT_SCORE)) == pytest.approx(float(M.BinaryAccuracy()(MT_BIN, MT_SCORE)))


def test_zero_weight_rows_do_not_count():
    w = np.ones(N, np.float32)
    w[-7:] = 0
    full = M.SparseCategoricalAccuracy()(MT_SPARSE[:-7], MT_LOGITS[:-7])
    masked = M.SparseCategoricalAccuracy()(MT_SPARSE, MT_LOGITS, w)
    assert float(full) == pytest.approx(float(masked))


def test_metric_errors_and_loss_names():
    with pytest.raises(ValueError, match="unknown metric 'acuracy'.*accuracy"):
        M.get("acuracy")
    with pytest.raises(ValueError, match="only curve='ROC'"):
        M.AUC(curve="PR")
    mae = M.get("mae")
    np.testing.assert_allclose(mae(REG_T, REG_P), np.mean(np.abs(REG_T - REG_P)), atol=1e-6)
