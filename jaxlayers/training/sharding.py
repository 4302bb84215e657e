"""Sharding by weight path: layouts that place params (and the optimizer state after them)
on a `jax.sharding.Mesh`, for `fit(mesh=, layout=)`, `shard`, and `sharded_init`.

**Weight paths.** The path of a leaf is its place in the params tree, one segment per
level joined by ``/``: a dict key as it is (a functional Model's layer names, a layer's
weight names) and the i-th entry of a tuple (a `serial` / `parallel` child) as ``[i]``:

    jl.Model:   "dense_1/kernel", "multi_head_attention/query/kernel"
    jl.serial:  "[2]/kernel", "[1]/[0]/bias"     (a serial nested in a serial)

`param_paths(params)` gives the tree of these strings. Rules match a path with
``re.search`` (so ``r"kernel$"`` matches every kernel; brackets are escaped: ``r"\\[2\\]/"``).

**Layouts.** A `Layout` turns params (arrays or ShapeDtypeStructs) and a mesh into one
`PartitionSpec` per leaf. `LayoutMap(rules)` is an ordered list of ``(regex, spec)``: the
first matching rule gives the spec, a path no rule matches is replicated, and a spec that
does not fit the weight (an unknown mesh axis, too many dims, a dim its axes do not
divide) is a ValueError naming the rule and the weight. Ready-made: `DataParallel`
(everything replicated), `FSDP` (each large weight split over the data axis along its
largest divisible dim), `TensorParallel` (Megatron-style column then row splits). Layouts
add up left to right (``TensorParallel() + FSDP()``): a later one fills only dims the
earlier ones left unsplit, with mesh axes they did not use.
"""
from __future__ import annotations

import math
import re

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

__all__ = ["Layout", "LayoutMap", "DataParallel", "FSDP", "TensorParallel", "param_paths",
           "as_layout", "layout_specs", "shardings", "follow", "shard", "sharded_init",
           "layout_table"]


# --------------------------------------------------------------------------- paths


def _segment(entry) -> str:
    if isinstance(entry, jax.tree_util.SequenceKey):
        return f"[{entry.idx}]"
    if isinstance(entry, jax.tree_util.DictKey):
        return str(entry.key)
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return f"[{entry.key}]"
    return str(entry)


def path_string(keypath) -> str:
    """The weight path of a `jax.tree_util` key path (see the module docstring)."""
    return "/".join(_segment(e) for e in keypath)


def param_paths(params):
    """A tree shaped like `params` holding each leaf's weight path, e.g. ``"[2]/kernel"``
    for the third child of a serial model, ``"dense_1/kernel"`` in a functional Model."""
    return jax.tree_util.tree_map_with_path(lambda p, _: path_string(p), params)


def _natural(path: str):
    """Sort key reading digit runs as numbers ("dense_2" before "dense_10")."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


# --------------------------------------------------------------------------- specs


def _as_spec(spec, where) -> P:
    if spec is None:
        return P()
    if isinstance(spec, P):
        return spec
    if isinstance(spec, str):
        return P(spec)
    if isinstance(spec, (tuple, list)):
        return P(*spec)
    raise TypeError(f"{where}: a spec is a PartitionSpec, a tuple of mesh axis names / None, "
                    f"or None (replicated); received {spec!r}")


def _axes(entry) -> tuple:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def check_spec(spec: P, path: str, shape, mesh, source: str) -> None:
    """Raise a ValueError naming `source` (the rule) and the weight unless `spec` fits."""
    what = f"{source} gives {spec} to weight {path!r} of shape {tuple(shape)}"
    if len(spec) > len(shape):
        raise ValueError(f"{what}: the spec has {len(spec)} entries, the weight {len(shape)} "
                         f"dims")
    used = []
    for dim, entry in enumerate(spec):
        axes = _axes(entry)
        for axis in axes:
            if axis not in mesh.shape:
                raise ValueError(f"{what}: mesh axis {axis!r} is not in the mesh (axes "
                                 f"{tuple(mesh.axis_names)})")
            if axis in used:
                raise ValueError(f"{what}: mesh axis {axis!r} is used twice")
            used.append(axis)
    for dim, entry in enumerate(spec):
        axes = _axes(entry)
        n = math.prod(mesh.shape[a] for a in axes)
        if shape[dim] % n:
            by = " x ".join(f"mesh axis {a!r} ({mesh.shape[a]})" for a in axes)
            raise ValueError(f"{what}: dim {dim} (size {shape[dim]}) is not divisible by {by}"
                             + (f" = {n} devices" if len(axes) > 1 else ""))


def _used(spec: P) -> set:
    return {a for entry in spec for a in _axes(entry)}


def _padded(spec: P, ndim: int) -> list:
    return list(spec) + [None] * (ndim - len(spec))


class Layout:
    """A layout: ``resolve(paths, shapes, mesh, specs) -> specs`` over flat lists (one
    entry per weight), refining the specs given. Layouts add with ``+`` (left first)."""

    def __init__(self, resolve, name: str):
        self.resolve, self.name = resolve, name

    def __add__(self, other):
        other = as_layout(other)
        return Layout(lambda paths, shapes, mesh, specs: other.resolve(
            paths, shapes, mesh, self.resolve(paths, shapes, mesh, specs)),
            f"{self.name} + {other.name}")

    def __repr__(self):
        return self.name


def LayoutMap(rules) -> Layout:
    """Weight-path rules, as Keras' `LayoutMap`: an ordered list (or dict) of
    ``(regex, spec)``; the first rule whose regex `re.search`-matches a weight's path gives
    its spec (a `PartitionSpec`, a tuple of axis names / None, or None = replicated); a
    weight no rule matches keeps the spec it had (replicated on its own). A spec that does
    not fit the weight raises a ValueError naming both."""
    items = list(rules.items()) if isinstance(rules, dict) else list(rules)
    compiled = []
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"LayoutMap: each rule is a (regex, spec) pair, received {item!r}")
        try:
            pattern = re.compile(item[0])
        except re.error as e:
            raise ValueError(f"LayoutMap: rule {item[0]!r} is not a valid regex ({e})") from None
        compiled.append((pattern, _as_spec(item[1], f"LayoutMap rule {item[0]!r}")))

    def resolve(paths, shapes, mesh, specs):
        out = list(specs)
        for i, (path, shape) in enumerate(zip(paths, shapes)):
            for pattern, spec in compiled:
                if pattern.search(path):
                    check_spec(spec, path, shape, mesh, f"LayoutMap rule {pattern.pattern!r}")
                    out[i] = spec
                    break
        return out
    return Layout(resolve, f"LayoutMap({[(p.pattern, s) for p, s in compiled]})")


def DataParallel() -> Layout:
    """Data parallelism: every weight replicated (the batch is split by `fit`)."""
    return Layout(lambda paths, shapes, mesh, specs: list(specs), "DataParallel()")


def FSDP(axis: str = "data", min_size: int = 1024) -> Layout:
    """Fully sharded data parallelism: each weight of at least `min_size` elements is split
    over mesh axis `axis` along its largest dim that the axis divides (and that no earlier
    layout split); a weight with no such dim stays as it was (replicated)."""
    if not isinstance(axis, str):
        raise TypeError(f"FSDP: axis must be a mesh axis name, received {axis!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ValueError(f"FSDP: min_size must be a non-negative int, received {min_size!r}")

    def resolve(paths, shapes, mesh, specs):
        _need_axis(mesh, axis, "FSDP")
        n, out = mesh.shape[axis], list(specs)
        for i, (shape, spec) in enumerate(zip(shapes, specs)):
            if math.prod(shape) < min_size or axis in _used(spec) or not shape:
                continue
            entries = _padded(spec, len(shape))
            free = [d for d in range(len(shape)) if entries[d] is None and shape[d] % n == 0]
            if free:
                entries[max(free, key=lambda d: (shape[d], -d))] = axis
                out[i] = P(*entries)
        return out
    return Layout(resolve, f"FSDP({axis!r}, min_size={min_size})")


def _need_axis(mesh, axis, who):
    if axis not in mesh.shape:
        raise ValueError(f"{who}: mesh axis {axis!r} is not in the mesh (axes "
                         f"{tuple(mesh.axis_names)})")


_ATTENTION = re.compile(r"(^|/)(query|key|value|attention_output)/(kernel|bias)$")


def TensorParallel(axis: str = "model", column=(), row=()) -> Layout:
    """Megatron-style tensor parallelism over mesh axis `axis`.

    - MultiHeadAttention (and GroupedQueryAttention): query / key / value kernels and
      biases split over the heads, the output projection's kernel over its heads (its
      bias replicated): one all-reduce per attention block.
    - Embedding: the table split over the vocabulary.
    - Dense / EinsumDense: a *column* split (the kernel's last dim and the bias) followed
      by a *row* split (the kernel's first dim, bias replicated). Weights whose path
      matches a regex of `column` / `row` get that split; without either, the 2-D
      ``kernel`` weights outside attention alternate column, row, column, ... in model
      order (serial order; a functional Model's layer names in natural order).
    A dim the axis does not divide (a 10-class head on 4 devices) stays unsplit.
    """
    for name, pats in (("column", column), ("row", row)):
        if isinstance(pats, str):
            raise TypeError(f"TensorParallel: {name} is a list of regexes, received {pats!r}")
    col_re = [re.compile(c) for c in column]
    row_re = [re.compile(r) for r in row]
    auto = not col_re and not row_re

    def resolve(paths, shapes, mesh, specs):
        _need_axis(mesh, axis, "TensorParallel")
        n = mesh.shape[axis]
        want = {}                                     # index -> (dim of the split)
        kind = {}                                     # parent path -> "column" / "row"
        kernels = [i for i, p in enumerate(paths) if p.rsplit("/", 1)[-1] == "kernel"
                   and not _ATTENTION.search(p)]
        if auto:
            kernels = sorted((i for i in kernels if len(shapes[i]) == 2),
                             key=lambda i: _natural(paths[i]))
            for k, i in enumerate(kernels):
                kind[_parent(paths[i])] = "column" if k % 2 == 0 else "row"
        else:
            for i in kernels:
                if any(r.search(paths[i]) for r in col_re):
                    kind[_parent(paths[i])] = "column"
                elif any(r.search(paths[i]) for r in row_re):
                    kind[_parent(paths[i])] = "row"
        for i, (path, shape) in enumerate(zip(paths, shapes)):
            leaf, parent = path.rsplit("/", 1)[-1], _parent(path)
            m = _ATTENTION.search(path)
            if m and m.group(2) != "attention_output":
                want[i] = 1 if m.group(3) == "kernel" else 0        # the heads dim
            elif m and m.group(3) == "kernel":
                want[i] = 0
            elif leaf == "embeddings" and len(shape) == 2:
                want[i] = 0
            elif kind.get(parent) == "column" and leaf in ("kernel", "bias"):
                want[i] = len(shape) - 1
            elif kind.get(parent) == "row" and leaf == "kernel":
                want[i] = 0
        out = list(specs)
        for i, dim in want.items():
            shape, spec = shapes[i], specs[i]
            if dim >= len(shape) or shape[dim] % n or axis in _used(spec):
                continue
            entries = _padded(spec, len(shape))
            if entries[dim] is None:
                entries[dim] = axis
                out[i] = P(*entries)
        return out
    return Layout(resolve, f"TensorParallel({axis!r})")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def as_layout(rules) -> Layout:
    """A `Layout` as is; a list / dict of ``(regex, spec)`` rules as `LayoutMap(rules)`."""
    if isinstance(rules, Layout):
        return rules
    if rules is None:
        return DataParallel()
    if isinstance(rules, (list, tuple, dict)):
        return LayoutMap(rules)
    raise TypeError(f"a layout is a jl.Layout (LayoutMap, DataParallel, FSDP, "
                    f"TensorParallel, or a sum of them) or a list of (regex, spec) rules; "
                    f"received {rules!r}")


# --------------------------------------------------------------------------- placing


def layout_specs(params, mesh, rules, leading: int = 0):
    """The tree of `PartitionSpec`s `rules` give `params` (arrays or ShapeDtypeStructs) on
    `mesh`; `leading` dims (an ensemble's member axis) are skipped and left unsplit."""
    layout = as_layout(rules)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = [path_string(p) for p, _ in flat]
    shapes = [tuple(np.shape(a))[leading:] for _, a in flat]
    specs = layout.resolve(paths, shapes, mesh, [P()] * len(flat))
    for path, shape, spec in zip(paths, shapes, specs):      # a custom layout's output too
        check_spec(spec, path, shape, mesh, repr(layout))
    specs = [P(*([None] * leading + list(s))) if leading and len(s) else s for s in specs]
    return jax.tree_util.tree_unflatten(treedef, specs)


def shardings(params, mesh, rules, leading: int = 0):
    """The tree of `NamedSharding`s `rules` give `params` on `mesh` (for ``out_shardings``)."""
    return jax.tree_util.tree_map(lambda s: NamedSharding(mesh, s),
                                  layout_specs(params, mesh, rules, leading),
                                  is_leaf=lambda s: isinstance(s, P))


def follow(tree, params, param_shardings, mesh):
    """Shardings for `tree` (e.g. an optimizer state, arrays or ShapeDtypeStructs) that
    follow the params: every subtree with the structure and shapes of `params` (Adam's
    ``mu`` and ``nu``) gets `param_shardings`, every other leaf (step counts) is
    replicated on `mesh`."""
    params_def = jax.tree_util.tree_structure(params)
    shapes = [np.shape(a) for a in jax.tree_util.tree_leaves(params)]
    replicated = NamedSharding(mesh, P())

    def like_params(node):
        return (jax.tree_util.tree_structure(node) == params_def
                and [np.shape(a) for a in jax.tree_util.tree_leaves(node)] == shapes)

    def place(node):
        if like_params(node):
            return param_shardings
        return jax.tree_util.tree_map(lambda _: replicated, node)
    return jax.tree_util.tree_map(place, tree, is_leaf=like_params)


def put(tree, sharding_tree):
    """`tree` placed with `sharding_tree` (same structure), also when the mesh spans
    several processes (each process then gives the same host values)."""
    def one(a, s):
        if isinstance(a, jax.Array) and (not a.is_fully_addressable or not s.is_fully_addressable):
            return jax.jit(lambda v: v, out_shardings=s)(a)
        if s.is_fully_addressable:
            return jax.device_put(a, s)
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, s, lambda idx: host[idx])
    return jax.tree_util.tree_map(one, tree, sharding_tree)


def _is_train_state(tree) -> bool:
    return all(hasattr(tree, a) for a in ("params", "state", "opt_state", "step", "rng"))


def shard(tree, mesh, rules, leading: int = 0):
    """Place params on `mesh` by `rules` (a `Layout` or a list of ``(regex, spec)``).

    `tree` is a params tree, or a `TrainState`: then its optimizer state follows the params
    (`follow`) and its state, step and rng are replicated. A weight no rule matches is
    replicated. Returns the same structure with `jax.Array`s sharded by `NamedSharding`."""
    if _is_train_state(tree):
        import dataclasses
        p_sh = shardings(tree.params, mesh, rules, leading)
        replicated = NamedSharding(mesh, P())
        rep = lambda t: jax.tree_util.tree_map(lambda _: replicated, t)   # noqa: E731
        return dataclasses.replace(
            tree, params=put(tree.params, p_sh),
            opt_state=put(tree.opt_state, follow(tree.opt_state, tree.params, p_sh, mesh)),
            state=put(tree.state, rep(tree.state)), step=put(tree.step, rep(tree.step)),
            rng=put(tree.rng, rep(tree.rng)))
    return put(tree, shardings(tree, mesh, rules, leading))


def sharded_init(layer, key, input_shape, mesh, rules):
    """``layer.init(key, input_shape)`` with the params created already sharded by `rules`
    (``jax.jit(init, out_shardings=...)``): no device ever holds a whole weight that the
    layout splits. Returns ``(output_shape, params)``, or ``(output_shape, params, state)``
    for a stateful layer (its state replicated)."""
    from ..core import as_layer
    layer = as_layer(layer)
    out = jax.eval_shape(lambda k: layer.init(k, input_shape), key)
    p_sh = shardings(out[1], mesh, rules)
    outs = (p_sh,) + ((jax.tree_util.tree_map(lambda _: NamedSharding(mesh, P()), out[2]),)
                      if len(out) == 3 else ())
    arrays = jax.jit(lambda k: tuple(layer.init(k, input_shape)[1:]), out_shardings=outs)(key)
    return (out[0],) + tuple(arrays)


def layout_table(params, mesh, rules) -> str:
    """A table of every weight's path, shape, spec and per-device shard shape under
    `rules` on `mesh` (to see what a layout does before training)."""
    specs = jax.tree_util.tree_leaves(layout_specs(params, mesh, rules),
                                      is_leaf=lambda s: isinstance(s, P))
    rows = [("path", "shape", "spec", "per device")]
    for (path, a), spec in zip(jax.tree_util.tree_flatten_with_path(params)[0], specs):
        shape = tuple(np.shape(a))
        local = NamedSharding(mesh, spec).shard_shape(shape) if shape else ()
        rows.append((path_string(path), str(shape), str(tuple(spec)), str(tuple(local))))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
