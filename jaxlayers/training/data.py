"""Host-side data for `fit` / `evaluate` / `predict`: checks, splits, weights and batches.

Every check runs on the host before anything is compiled, so careless input (no samples,
a list of Python lists, x and y of different lengths, a bad batch size, labels outside
the model's classes) is a ValueError that says what is wrong, never a loss of 0.0.

Batching: every batch has the same shape. The last partial batch of an epoch is filled up
with rows taken from the start of the epoch (or, for an iterable of batches, repeated
from the batch itself) whose weight is 0, so it counts exactly its real rows.
"""
from __future__ import annotations

import math
import numbers

import jax
import numpy as np

from .losses import sparse_label_spec

DEFAULT_BATCH_SIZE = 32   # Keras' default when batch_size is None


def batch_size_or_default(fn, batch_size):
    """`batch_size` checked (a positive int); None gives Keras' default, 32."""
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or (
            batch_size < 1):
        raise ValueError(f"{fn}: batch_size must be a positive int (or None for "
                         f"{DEFAULT_BATCH_SIZE}), received {batch_size!r}")
    return int(batch_size)


def _leaf_size(what, leaf):
    if isinstance(leaf, (numbers.Number, str)) or leaf is None:
        raise ValueError(
            f"{what} holds a Python {type(leaf).__name__} ({leaf!r}) where an array of "
            f"samples was expected: convert nested lists with np.asarray(...) (a list or "
            f"tuple of arrays means several inputs)")
    shape = np.shape(leaf)
    if not shape:
        raise ValueError(f"{what} holds a 0-d array; it needs the samples on its first axis")
    return shape[0]


def num_samples(what, tree):
    """The common leading size of the arrays in `tree` (a ValueError if they differ)."""
    leaves = jax.tree_util.tree_leaves(tree, is_leaf=lambda a: a is None)
    if not leaves:
        raise ValueError(f"{what} is empty: it holds no arrays")
    sizes = sorted({_leaf_size(what, a) for a in leaves})
    if len(sizes) != 1:
        raise ValueError(f"{what}: all arrays must have the same number of samples, "
                         f"received leading sizes {sizes}")
    return sizes[0]


def check_arrays(fn, x, y=None, sample_weight=None, role=""):
    """The number of samples of ``x`` (and ``y`` / ``sample_weight``), checked non-zero and
    equal across them; `role` prefixes the names (``"validation_data "``)."""
    n = num_samples(f"{fn}: {role}x", x)
    for name, tree in (("y", y), ("sample_weight", sample_weight)):
        if tree is not None:
            m = num_samples(f"{fn}: {role}{name}", tree)
            if m != n:
                raise ValueError(f"{fn}: {role}x has {n} samples but {role}{name} has {m}; "
                                 f"they must have one entry per sample")
    if n == 0:
        raise ValueError(f"{fn}: {role}x has 0 samples; pass at least one sample")
    return n


def take(tree, idx):
    """Rows `idx` of every array of `tree` (numpy)."""
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[idx], tree)


def validation_split_arrays(x, y, sample_weight, validation_split):
    """Keras' split: the last `validation_split` fraction of the samples (before any
    shuffling) is held out. Returns ``(x, y, w), (x_val, y_val, w_val)``."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) or (
            not 0.0 < validation_split < 1.0):
        raise ValueError(f"fit: validation_split must be a float in (0, 1), received "
                         f"{validation_split!r}")
    n = num_samples("fit: x", x)
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at in (0, n):
        raise ValueError(f"fit: x has {n} samples, too few to hold out validation_split="
                         f"{validation_split} of them and keep some for training")
    head, tail = np.arange(split_at), np.arange(split_at, n)
    arrays = (x, y, sample_weight)
    return take(arrays, head), take(arrays, tail)


def class_weights(y, class_weight):
    """Per-sample weights from ``{class: weight}`` as Keras: the class of a sample is its
    integer label (``(n,)`` or ``(n, 1)``) or the argmax of its one-hot row; classes
    missing from the dict weigh 1."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"fit: class_weight must be a dict {{class index: weight}}, "
                         f"received {type(class_weight).__name__}")
    if not all(isinstance(k, numbers.Integral) for k in class_weight):
        raise ValueError(f"fit: class_weight keys must be int class indices, received "
                         f"{sorted(map(repr, class_weight))}")
    if not isinstance(y, (np.ndarray, jax.Array)) and not hasattr(y, "shape"):
        raise ValueError("fit: class_weight needs y to be one array (a single output)")
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = np.argmax(labels, -1) if labels.shape[-1] != 1 else labels[..., 0]
    labels = np.round(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    lookup = np.vectorize(lambda c: float(class_weight.get(int(c), 1.0)), otypes=[np.float32])
    return lookup(labels) if len(labels) else np.zeros(0, np.float32)


def check_labels(fn, y, classes, ignore_class=None):
    """Integer labels must lie in ``[0, classes)`` (or equal `ignore_class`)."""
    labels = np.asarray(y)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(
                labels == np.round(labels)):
            return
    bad = (labels < 0) | (labels >= classes)
    if ignore_class is not None:
        bad &= labels != ignore_class
    if np.any(bad):
        first = labels[bad].ravel()[0].item()
        raise ValueError(f"{fn}: label {first!r} is outside the model's {classes} classes "
                         f"(labels must be integers in [0, {classes - 1}]); "
                         f"{int(np.sum(bad))} of {labels.size} labels are out of range")


# --------------------------------------------------------------------------- batches


def array_batches(arrays, batch_size, order):
    """``(batch_arrays, valid)`` per batch; the last one padded with rows of weight 0."""
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        real = len(idx)
        if real < batch_size:
            idx = np.concatenate([idx, np.resize(order, batch_size - real)])
        valid = np.zeros(batch_size, np.float32)
        valid[:real] = 1.0
        yield take(arrays, idx), valid


def _pad_batch(batch, size):
    real = num_samples("a batch", batch)
    valid = np.zeros(size, np.float32)
    valid[:real] = 1.0
    if real == size:
        return jax.tree_util.tree_map(np.asarray, batch), valid
    idx = np.resize(np.arange(real), size)
    return take(batch, idx), valid


def iterable_batches(fn, data, expect, prepare=None):
    """Pad each batch of an iterable to the size of the largest one seen so far;
    `prepare` (if given) maps each ``(x, y, w)`` batch first (class weights, label checks)."""
    it = data() if callable(data) else data
    size = 0
    count = 0
    for item in it:
        if expect == "xy":
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise ValueError(f"{fn}: each batch of `data` must be a tuple (x, y) or "
                                 f"(x, y, sample_weight), received {type(item).__name__}")
            x, y, w = tuple(item) if len(item) == 3 else (item[0], item[1], None)
            n = check_arrays(fn, x, y, w, role=f"batch {count} of data: ")
            item = (x, y, np.ones(n, np.float32) if w is None else w)
            if prepare is not None:
                item = prepare(item)
        elif num_samples(f"{fn}: batch {count} of data", item) == 0:
            raise ValueError(f"{fn}: batch {count} of data has 0 samples")
        size = max(size, num_samples("a batch", item))
        count += 1
        yield _pad_batch(item, size)
    if count == 0:
        raise ValueError(f"{fn}: `data` yielded no batches (a one-shot iterator is exhausted "
                         f"after the first epoch: pass a list, a re-iterable, or a function "
                         f"returning a fresh iterator)")


def num_batches(x, data, batch_size):
    """Batches per epoch, or None for an iterable without a length."""
    if data is not None:
        try:
            return len(data)
        except TypeError:
            return None
    return math.ceil(num_samples("x", x) / batch_size)


# --------------------------------------------------------------------------- sources


class Source:
    """One data source (arrays or an iterable of batches), checked, with its batches."""

    def __init__(self, fn, x, y, w, data, batch_size, role="", class_weight=None):
        self.fn, self.data, self.batch_size, self.role = fn, data, batch_size, role
        self.class_weight, self.label_check = class_weight, None
        if data is not None:
            if x is not None:
                raise ValueError(f"{fn}: pass either x (and y) or data, not both")
            return
        if x is None:
            raise ValueError(f"{fn}: no {role or 'data'}: pass x (and y) arrays or "
                             f"data=<iterable of batches>")
        if y is None:
            raise ValueError(f"{fn}: {role}y is missing: pass labels y with x")
        n = check_arrays(fn, x, y, w, role)
        w = np.ones(n, np.float32) if w is None else np.asarray(w, np.float32)
        if class_weight is not None:
            w = w * class_weights(y, class_weight)
        self.arrays, self.n = (x, y, w), n

    def check_labels(self, classes_of, ignore_class):
        """Refuse labels outside the model's classes (``classes_of(x_one_sample)``): now
        for arrays, per batch (before its step) for an iterable."""
        def check(x, y):
            classes = classes_of(take(x, slice(0, 1)))
            if classes:
                check_labels(f"{self.fn}: {self.role}y", y, classes, ignore_class)
        self.label_check = check
        if self.data is None:
            check(self.arrays[0], self.arrays[1])

    def _prepare(self, batch):
        x, y, w = batch
        if self.class_weight is not None:
            w = np.asarray(w, np.float32) * class_weights(y, self.class_weight)
        if self.label_check is not None:
            self.label_check(x, y)
        return x, y, w

    def batches(self, order_rng=None):
        """``((x, y, w), valid)`` host batches, shuffled with `order_rng` if given."""
        if self.data is not None:
            return iterable_batches(self.fn, self.data, "xy", self._prepare)
        order = order_rng.permutation(self.n) if order_rng is not None else np.arange(self.n)
        return array_batches(self.arrays, self.batch_size, order)


def validation_source(validation_data, batch_size):
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
        vx, vy, vw = (tuple(validation_data) + (None,))[:3]
        return Source("fit", vx, vy, vw, None, batch_size, role="validation_data ")
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 0:
        raise ValueError("fit: validation_data is empty; pass (x_val, y_val) with samples, "
                         "a non-empty iterable of batches, or None")
    return Source("fit", None, None, None, validation_data, batch_size, role="validation_data ")


def _spec(a, drop_leading=False):
    a = a if hasattr(a, "dtype") else np.asarray(a)
    return jax.ShapeDtypeStruct(a.shape[1:] if drop_leading else a.shape, a.dtype)


def check_sparse_labels(sources, loss, member, n_members, params, state):
    """With a sparse categorical loss, have every source refuse labels outside the
    model's classes (the size of the output's class axis, from shapes alone)."""
    spec = sparse_label_spec(loss)
    if spec is None:
        return
    axis, ignore_class = spec
    p, s = jax.tree_util.tree_map(lambda a: _spec(a, bool(n_members)), (params, state))
    found = {}

    def classes_of(x_one):
        if "classes" not in found:
            out = jax.eval_shape(lambda p, s, x: member.apply(p, s, x, train=False)[0], p, s,
                                 jax.tree_util.tree_map(_spec, x_one))
            ok = isinstance(out, jax.ShapeDtypeStruct) and out.ndim
            found["classes"] = out.shape[axis] if ok else None
        return found["classes"]
    for source in sources:
        source.check_labels(classes_of, ignore_class)
