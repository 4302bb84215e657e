"""`check_header`: a checkpoint's JSON header and tensors checked to be exactly what
`save` writes, so that an edited or damaged file is a `CheckpointError` that says what is
wrong rather than a KeyError, a reshape error or silently misread numbers.

Reading a checkpoint runs no code: the header is JSON, the tensors raw bytes, and dtype
names are taken only from the fixed list below.
"""
from __future__ import annotations

import jax.numpy as jnp

FORMAT = "jaxlayers-checkpoint/1"
SECTIONS = ("params", "state", "opt_state")
_PLAIN_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64", "complex64", "complex128"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model it is loaded into."""


def storage_dtype(name: str) -> str:
    """The dtype a leaf of dtype `name` is stored as: safetensors has no bfloat16 / float8
    for numpy, so their bit patterns are stored as unsigned ints of the same size."""
    if name == "bfloat16":
        return "uint16"
    if name.startswith("float8_"):
        return "uint8"
    return name


def _known_dtype(name) -> bool:
    if not isinstance(name, str):
        return False
    if name in _PLAIN_DTYPES:
        return True
    if name == "bfloat16" or name.startswith("float8_"):
        try:
            return jnp.dtype(name).itemsize == (2 if name == "bfloat16" else 1)
        except TypeError:
            return False
    return False


def short(value, limit=80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _count_leaves(skel, where: str) -> int:
    """The number of leaves in a tree layout written by `_skeleton`; raises
    CheckpointError for anything else."""
    if skel == "leaf":
        return 1
    if skel is None:
        return 0
    if isinstance(skel, dict) and set(skel) == {"dict"} and isinstance(skel["dict"], dict):
        return sum(_count_leaves(v, f"{where}/{k}") for k, v in skel["dict"].items())
    if isinstance(skel, dict) and set(skel) in ({"tuple"}, {"tuple", "fields"}) \
            and isinstance(skel["tuple"], list):
        fields = skel.get("fields", [str(i) for i in range(len(skel["tuple"]))])
        if isinstance(fields, list) and len(fields) == len(skel["tuple"]) \
                and all(isinstance(f, str) for f in fields):
            return sum(_count_leaves(v, f"{where}/{i}") for i, v in enumerate(skel["tuple"]))
    raise CheckpointError(f"the tree layout at {where!r} is {short(skel)}, not one that "
                          f"save writes")


def _check_tensor(name, dtype, shape, stored) -> str | None:
    """What is wrong with tensor `name` (None when nothing)."""
    if name.split("/", 1)[0] not in SECTIONS:
        return f"tensor {name!r} is in no section (expected a name starting with " \
               f"{', '.join(s + '/' for s in SECTIONS)})"
    if not _known_dtype(dtype):
        return f"tensor {name!r} has dtype {short(dtype)}, not one save writes"
    # safetensors stores a scalar as shape [1]
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return f"tensor {name!r} has shape {short(shape)}, not a list of sizes"
    if stored.dtype.name != storage_dtype(dtype):
        return f"tensor {name!r} is stored as {stored.dtype.name}, but the header says " \
               f"{dtype} (stored as {storage_dtype(dtype)})"
    if list(stored.shape) != shape and not (shape == [] and stored.shape == (1,)):
        return f"tensor {name!r} is stored with shape {list(stored.shape)}, but the header " \
               f"says {shape}"
    return None


def _check(header: dict, tensors: dict):
    for key, kind in (("skeletons", dict), ("dtypes", dict), ("shapes", dict),
                      ("metadata", dict)):
        if not isinstance(header.get(key), kind):
            raise CheckpointError(f"its header entry {key!r} is {short(header.get(key))}, "
                                  f"expected a JSON object")
    extra = set(header) - {"format", "skeletons", "dtypes", "shapes", "metadata"}
    if extra:
        raise CheckpointError(f"its header has unknown entries {sorted(extra)}")
    if set(header["skeletons"]) != set(SECTIONS):
        raise CheckpointError(f"its header has tree layouts for {sorted(header['skeletons'])}"
                              f", expected {list(SECTIONS)}")
    dtypes, shapes = header["dtypes"], header["shapes"]
    for what, names in (("dtype", dtypes), ("shape", shapes)):
        missing, unknown = sorted(set(tensors) - set(names)), sorted(set(names) - set(tensors))
        if missing or unknown:
            raise CheckpointError(
                f"its header and tensors disagree: tensors without a {what} in the header "
                f"{short(missing, 200)}, header {what}s without a tensor {short(unknown, 200)}")
    problems = [p for p in (_check_tensor(n, dtypes[n], shapes[n], t)
                            for n, t in tensors.items()) if p]
    if problems:
        raise CheckpointError("; ".join(problems[:5]) + (
            f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    for section in SECTIONS:
        leaves = _count_leaves(header["skeletons"][section], section)
        count = sum(n.split("/", 1)[0] == section for n in tensors)
        if leaves != count:
            raise CheckpointError(f"its tree layout for {section!r} has {leaves} leaves but "
                                  f"the file holds {count} {section} tensors")


def check_header(header: dict, tensors: dict, shown: str):
    """Raise CheckpointError (naming the file `shown`) unless `header` and `tensors` are
    consistent: the entries `save` writes and no others, every tensor described once
    with a known dtype, its stored dtype and element count agreeing with the header,
    and each section's tree layout holding as many leaves as the section has tensors."""
    try:
        _check(header, tensors)
    except CheckpointError as e:
        raise CheckpointError(f"load: {shown!r} is malformed: {e}") from None
    except RecursionError:
        raise CheckpointError(f"load: {shown!r} is malformed: its tree layout is nested "
                              f"too deeply") from None
