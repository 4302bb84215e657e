"""`save` / `load`: params, state and optimizer state in one safetensors file.

Why safetensors: a small, widely used, well-kept format (Hugging Face) that stores raw
little-endian tensors after a JSON header, with no code execution on load (unlike
pickle), readable from numpy, PyTorch, JAX and Rust. Each leaf is stored under a name
that mirrors its place in the tree, e.g. ``params/0/kernel`` or ``opt_state/0/mu/2/bias``.

On top of the format this module adds what training needs:
- atomic writes with ``open()``'s permissions (`jaxlayers.io.atomic`): a crash mid-write
  leaves the old file intact and no temporary file behind;
- a SHA-256 checksum of the tensor bytes and the tree layout in the header, and a check
  that the header is exactly what `save` writes (`jaxlayers.io.header`), so a truncated,
  corrupted or edited file raises `CheckpointError` instead of loading garbage;
- ``load(path, like=tree)`` checks the stored tree against `like` and names every path
  whose presence, shape or dtype differs.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .atomic import resolve_target, write_atomically
from .header import FORMAT, CheckpointError, short, check_header, storage_dtype
from .header import SECTIONS as _SECTIONS


class Checkpoint(NamedTuple):
    """What `load` returns: ``params, state, opt_state, metadata = jl.load(path)``."""

    params: Any
    state: Any
    opt_state: Any
    metadata: dict


# --------------------------------------------------------------------------- tree <-> flat


def _escape(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _key_raw(entry) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _key_str(entry) -> str:
    return _escape(_key_raw(entry))


def _skeleton(tree):
    """A JSON description of the containers of `tree` (dicts, tuples/lists, None, leaves)."""
    if isinstance(tree, dict):
        return {"dict": {str(k): _skeleton(tree[k]) for k in sorted(tree)}}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return {"tuple": [_skeleton(v) for v in tree], "fields": list(tree._fields)}
    if isinstance(tree, (tuple, list)):
        return {"tuple": [_skeleton(v) for v in tree]}
    if tree is None:
        return None
    if jax.tree_util.all_leaves([tree]):
        return "leaf"
    children = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda n: n is not tree)[0]
    return {"tuple": [_skeleton(c) for _, c in children],          # a custom pytree node
            "fields": [_key_raw(p[0]) for p, _ in children]}


def _rebuild(skel, leaves):
    if skel == "leaf":
        return next(leaves)
    if skel is None:
        return None
    if "dict" in skel:
        return {k: _rebuild(v, leaves) for k, v in skel["dict"].items()}
    return tuple(_rebuild(v, leaves) for v in skel["tuple"])


def _flatten(section, tree):
    """``{name: np.ndarray}`` in tree order, with typed PRNG keys stored as key data."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = "/".join([section] + [_key_str(p) for p in path])
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            from jax.experimental import multihost_utils   # shards on other processes
            leaf = multihost_utils.process_allgather(leaf, tiled=True)
        out[name] = np.asarray(jax.device_get(leaf))
    return out


def _expected(section, tree):
    """``{name: (shape, dtype)}`` of `tree`'s leaves as `_flatten` would store them, read
    without fetching any array (a sharded `like` stays where it is)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = "/".join([section] + [_key_str(p) for p in path])
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.eval_shape(jax.random.key_data, leaf)
        elif not isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
            leaf = np.asarray(leaf)
        out[name] = (tuple(leaf.shape), np.dtype(leaf.dtype))
    return out


def _placed(arr, like_leaf):
    """`arr` with the sharding of `like_leaf` when that is a `NamedSharding` (a sharded
    model, possibly on another mesh shape than the one that saved); else as it is."""
    from jax.sharding import NamedSharding
    sharding = getattr(like_leaf, "sharding", None)
    if (not isinstance(like_leaf, jax.Array) or not isinstance(sharding, NamedSharding)
            or jnp.issubdtype(like_leaf.dtype, jax.dtypes.prng_key)):
        return arr
    return jax.make_array_from_callback(arr.shape, sharding, lambda idx: arr[idx])


def _encode(a: np.ndarray):
    """safetensors has no numpy bfloat16 / float8: store those bit patterns as uint."""
    name = a.dtype.name
    return np.ascontiguousarray(a).view(storage_dtype(name)), name


def _decode(a: np.ndarray, dtype: str, shape):
    if a.dtype.name != dtype:
        a = a.view(jnp.dtype(dtype))
    return a.reshape(shape)


def _digest(tensors, header):
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- save / load


def _safetensors():
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        raise ImportError("jl.save / jl.load need the safetensors package: "
                          "pip install 'jaxlayers[checkpoint]'") from None


def save(path, params, state=None, opt_state=None, metadata=None) -> str:
    """Write `params` (and `state`, `opt_state`, JSON-able `metadata`) to `path` atomically.

    Returns the path (``~`` expanded). The file gets the permissions ``open(path, "wb")``
    would give it (see `jaxlayers.io.atomic`). Raises TypeError when `metadata` is not
    JSON-serialisable, ValueError for an empty path, IsADirectoryError when `path` is a
    directory and FileNotFoundError when its directory does not exist.
    """
    _safetensors()
    from safetensors.numpy import save as st_save
    target = resolve_target(path, "save")
    tensors, dtypes, shapes, skeletons = {}, {}, {}, {}
    for section, tree in zip(_SECTIONS, (params, state, opt_state)):
        skeletons[section] = _skeleton(tree)
        for name, arr in _flatten(section, tree).items():
            tensors[name], dtypes[name] = _encode(arr)
            shapes[name] = list(arr.shape)
    header = {"format": FORMAT, "skeletons": skeletons, "dtypes": dtypes, "shapes": shapes,
              "metadata": metadata or {}}
    try:
        header_json = json.dumps(header)
    except (TypeError, ValueError) as e:
        raise TypeError(f"save: metadata must be JSON-serialisable ({e})") from None
    meta = {"jaxlayers": header_json, "sha256": _digest(tensors, header)}
    if jax.process_index() == 0:         # several processes: one writes, all wait for it
        write_atomically(target, st_save(tensors, metadata=meta))
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"jl.save {target}")
    return os.path.expanduser(os.fspath(path))


def _read(path):
    """``(tensors, header)`` of a checkpoint file, checked to be exactly what `save` writes."""
    _safetensors()
    from safetensors.numpy import load as st_load
    shown = os.fspath(path)
    full = os.path.expanduser(shown)
    if not full:
        raise ValueError("load: the path is empty; give the checkpoint's file name")
    if os.path.isdir(full):
        raise IsADirectoryError(f"load: {shown!r} is a directory, not a checkpoint file")
    if not os.path.exists(full):
        raise FileNotFoundError(f"load: no checkpoint at {shown!r}")
    with open(full, "rb") as f:
        blob = f.read()
    try:
        tensors = st_load(blob)
        size = int.from_bytes(blob[:8], "little")
        meta = json.loads(blob[8:8 + size]).get("__metadata__") or {}
    except Exception as e:  # the library's errors for a bad header / short file vary
        raise CheckpointError(f"load: {shown!r} is truncated or corrupted, or not a "
                              f"safetensors file ({type(e).__name__}: {e})") from None
    if "jaxlayers" not in meta or "sha256" not in meta:
        raise CheckpointError(f"load: {shown!r} is a safetensors file but not a jaxlayers "
                              f"checkpoint (its metadata has no 'jaxlayers' / 'sha256' entry)")
    try:
        header = json.loads(meta["jaxlayers"])
        digest = _digest(tensors, header)
    except RecursionError:
        raise CheckpointError(f"load: {shown!r} is malformed: its jaxlayers header is nested "
                              f"too deeply") from None
    except ValueError as e:
        raise CheckpointError(f"load: {shown!r} is corrupted: its jaxlayers header is not "
                              f"valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise CheckpointError(f"load: {shown!r} has format {short(found)}, expected "
                              f"{FORMAT!r}")
    if digest != meta["sha256"]:
        raise CheckpointError(f"load: {shown!r} is corrupted: its SHA-256 checksum does not "
                              f"match the stored one")
    check_header(header, tensors, shown)
    return tensors, header


def _leaf_names(skel, prefix):
    """The names `_flatten` gives the leaves of tree layout `skel`, in tree order."""
    if skel == "leaf":
        yield prefix
    elif skel is not None and "dict" in skel:
        for key, child in skel["dict"].items():
            yield from _leaf_names(child, f"{prefix}/{_escape(key)}")
    elif skel is not None:
        keys = skel.get("fields") or range(len(skel["tuple"]))
        for key, child in zip(keys, skel["tuple"]):
            yield from _leaf_names(child, f"{prefix}/{_escape(key)}")


def _restore(section, tensors, header, shown):
    """The `section` tree rebuilt from its layout, and its tensor names in tree order.

    The names follow from the layout (dict keys, tuple indices, named-tuple fields), so
    the order of the header's entries does not matter; tensors named otherwise raise."""
    skel = header["skeletons"][section]
    names = list(_leaf_names(skel, section))
    stored = sorted(n for n in tensors if n.split("/", 1)[0] == section)
    if sorted(names) != stored:
        odd = sorted(set(stored) - set(names))[:3]
        raise CheckpointError(
            f"load: {shown!r} is malformed: its {section} tensor names {odd} do not follow the file's tree layout "
            f"(edited names?); load(path, like=...) matches tensors by name against your tree")
    leaves = iter(_decode(tensors[n], header["dtypes"][n], header["shapes"][n]) for n in names)
    return _rebuild(skel, leaves), names


def _check_like(section, like, tensors, header):
    """The stored leaves placed into `like`'s structure, or a CheckpointError listing
    every path that is missing, unexpected, or of another shape or dtype."""
    expected = _expected(section, like) if like is not None else {}
    stored = {n: _decode(t, header["dtypes"][n], header["shapes"][n]) for n, t in tensors.items()
              if n.split("/", 1)[0] == section}
    problems = []
    for name, (shape, dtype) in expected.items():
        if name not in stored:
            problems.append(f"{name}: missing from the file (expected {dtype.name}"
                            f"{list(shape)})")
        elif stored[name].shape != shape or stored[name].dtype != dtype:
            problems.append(f"{name}: file has {stored[name].dtype.name}"
                            f"{list(stored[name].shape)}, model expects {dtype.name}"
                            f"{list(shape)}")
    for name in stored:
        if name not in expected:
            problems.append(f"{name}: in the file but not in the model "
                            f"({stored[name].dtype.name}{list(stored[name].shape)})")
    return problems, stored, expected


def load(path, like=None) -> Checkpoint:
    """Read a checkpoint written by `save`; returns ``Checkpoint(params, state, opt_state,
    metadata)`` with numpy leaves.

    Without `like`, containers are rebuilt as dicts and tuples (optax's named-tuple states
    come back as plain tuples). With `like` -- a params tree, or a `TrainState` /
    `Checkpoint` giving params, state and opt_state (e.g. from ``init`` and
    ``optimizer.init``; a section that is None there is rebuilt as without `like`) -- the
    leaves are put into exactly those structures (typed PRNG keys re-wrapped), and every
    path whose presence, shape or dtype differs is listed in one `CheckpointError`.

    A file that is truncated, corrupted, edited, or not a jaxlayers checkpoint raises
    `CheckpointError` saying what is wrong; a missing file FileNotFoundError, a directory
    IsADirectoryError, an empty path ValueError. Loading runs no code from the file.

    Sharded training: `save` gathers sharded arrays (across processes too: every process
    calls it, process 0 writes). A leaf of `like` sharded with a `NamedSharding` -- e.g.
    from ``jl.shard(train_state, mesh, layout)`` or ``jl.sharded_init`` on a new mesh of
    any shape -- is loaded straight into that sharding (each device gets its shard).
    """
    tensors, header = _read(path)
    metadata = header.get("metadata", {})
    if like is None:
        trees = [_restore(s, tensors, header, os.fspath(path))[0] for s in _SECTIONS]
        return Checkpoint(*trees, metadata)
    if isinstance(like, Checkpoint) or all(hasattr(like, a) for a in _SECTIONS):
        likes = (like.params, like.state, like.opt_state)
    else:
        likes = (like, None, None)
    problems, out = [], []
    for section, ref in zip(_SECTIONS, likes):
        if ref is None:
            out.append(_restore(section, tensors, header, os.fspath(path))[0])
            continue
        probs, stored, _ = _check_like(section, ref, tensors, header)
        problems += probs
        if not probs:
            paths, treedef = jax.tree_util.tree_flatten_with_path(ref)
            leaves = []
            for p, leaf in paths:
                arr = stored["/".join([section] + [_key_str(k) for k in p])]
                if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype,
                                                                  jax.dtypes.prng_key):
                    arr = jax.random.wrap_key_data(arr, impl=jax.random.key_impl(leaf))
                leaves.append(_placed(arr, leaf))
            out.append(jax.tree_util.tree_unflatten(treedef, leaves))
    if problems:
        raise CheckpointError(f"load: {os.fspath(path)!r} does not fit the given structure "
                              f"({len(problems)} mismatching paths):\n  " + "\n  ".join(problems))
    return Checkpoint(*out, metadata)
