"""jl.save / jl.load: round trips, structure checks naming every path, atomic writes,
corruption and truncation detection."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlayers as jl
from jaxlayers.io import checkpoint as ck


def setup():
    model = jl.serial(jl.Dense(4, activity_regularizer="l2"), jl.relu, jl.Dense(2))
    _, params, state = model.init(jax.random.key(0), (None, 3))
    opt_state = optax.adamw(1e-3).init(params)
    return model, params, state, opt_state


def same(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for u, v in zip(la, lb):
        assert np.asarray(u).dtype == np.asarray(v).dtype
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_round_trip_with_like_restores_exact_structures(tmp_path):
    model, params, state, opt_state = setup()
    path = jl.save(tmp_path / "m.safetensors", params, state, opt_state,
                   metadata={"epoch": 3, "note": "x"})
    c = jl.load(path, like=jl.Checkpoint(params, state, opt_state, {}))
    same(c.params, params)
    same(c.state, state)
    same(c.opt_state, opt_state)
    assert c.metadata == {"epoch": 3, "note": "x"}


def test_round_trip_without_like_gives_dicts_and_tuples(tmp_path):
    model, params, state, opt_state = setup()
    jl.save(tmp_path / "m.safetensors", params, state)
    c = jl.load(tmp_path / "m.safetensors")
    same(c.params, params)           # serial params: tuple of dicts, () for relu
    same(c.state, state)
    assert c.opt_state is None and c.metadata == {}
    # tree names mirror the params tree
    from safetensors import safe_open
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        assert {"params/0/kernel", "params/2/bias", "state/0/activity_loss"} <= set(f.keys())


def test_dtypes_bfloat16_ints_and_prng_keys(tmp_path):
    tree = {"w": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3),
            "h": jnp.ones((2,), jnp.float16), "i": jnp.arange(3, dtype=jnp.int32),
            "s": jnp.float32(2.5), "key": jax.random.key(3)}
    jl.save(tmp_path / "t.safetensors", tree)
    c = jl.load(tmp_path / "t.safetensors", like=tree)
    assert c.params["w"].dtype == jnp.bfloat16 and c.params["s"].shape == ()
    np.testing.assert_array_equal(c.params["w"].astype(np.float32), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(jax.random.key_data(c.params["key"]),
                                  jax.random.key_data(tree["key"]))


def test_mismatch_names_every_path(tmp_path):
    model, params, state, _ = setup()
    jl.save(tmp_path / "m.safetensors", params)
    other = jl.serial(jl.Dense(5), jl.relu, jl.Dense(2, use_bias=False))
    _, p2 = other.init(jax.random.key(0), (None, 3))
    p2 = ({**p2[0], "bias": p2[0]["bias"].astype(jnp.float16)},) + p2[1:]
    with pytest.raises(jl.CheckpointError) as e:
        jl.load(tmp_path / "m.safetensors", like=p2)
    msg = str(e.value)
    assert "4 mismatching paths" in msg
    assert "params/0/kernel: file has float32[3, 4], model expects float32[3, 5]" in msg
    assert "params/0/bias: file has float32[4], model expects float16[5]" in msg
    assert "params/2/kernel" in msg
    assert "params/2/bias: in the file but not in the model" in msg
    _, p3 = jl.serial(jl.Dense(4), jl.relu, jl.Dense(2), jl.Dense(1)).init(
        jax.random.key(0), (None, 3))
    with pytest.raises(jl.CheckpointError, match="params/3/kernel: missing from the file"):
        jl.load(tmp_path / "m.safetensors", like=p3)


def test_truncated_and_corrupted_files_are_detected(tmp_path):
    _, params, state, _ = setup()
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params, state)
    blob = open(path, "rb").read()
    for n in (0, 5, 100, len(blob) - 3):
        open(path, "wb").write(blob[:n])
        with pytest.raises(jl.CheckpointError, match="truncated or corrupted"):
            jl.load(path)
    flipped = bytearray(blob)
    flipped[-5] ^= 0xFF                          # a bit flip inside the tensor data
    open(path, "wb").write(bytes(flipped))
    with pytest.raises(jl.CheckpointError, match="checksum"):
        jl.load(path)
    with pytest.raises(FileNotFoundError):
        jl.load(tmp_path / "nope.safetensors")


def test_atomic_write_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch):
    _, params, state, _ = setup()
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params, metadata={"v": 1})
    before = open(path, "rb").read()

    def crash(*a, **k):
        raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        jl.save(path, params, state, metadata={"v": 2})
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]       # no temp file left behind
    monkeypatch.undo()
    jl.save(path, params, metadata={"v": 2})
    assert jl.load(path).metadata == {"v": 2}


def test_metadata_must_be_json(tmp_path):
    _, params, _, _ = setup()
    with pytest.raises(TypeError, match="JSON-serialisable"):
        jl.save(tmp_path / "m.safetensors", params, metadata={"f": object()})


# --------------------------------------------------------------------------- files on disk


def tiny():
    return {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3),
            "b": jnp.ones((3,), jnp.bfloat16)}, [jnp.float32(1.5)]


def with_umask(mask, fn):
    old = os.umask(mask)
    try:
        return fn()
    finally:
        os.umask(old)


def mode(path):
    return os.stat(path).st_mode & 0o777


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_mode_open_gives(tmp_path, umask):
    params, state = tiny()
    with_umask(umask, lambda: jl.save(tmp_path / "m.safetensors", params, state))
    with_umask(umask, lambda: open(tmp_path / "by_open", "wb").close())
    assert mode(tmp_path / "m.safetensors") == mode(tmp_path / "by_open") == 0o666 & ~umask


def test_overwriting_keeps_the_existing_mode(tmp_path):
    params, state = tiny()
    path = tmp_path / "m.safetensors"
    jl.save(path, params)
    os.chmod(path, 0o640)                    # e.g. readable by a serving group
    with_umask(0o077, lambda: jl.save(path, params, state))
    assert mode(path) == 0o640               # as open(path, "wb") would leave it
    assert jl.load(path).state is not None


def test_paths_empty_missing_directory_tilde_and_links(tmp_path, monkeypatch):
    params, _ = tiny()
    with pytest.raises(ValueError, match="save: the path is empty"):
        jl.save("", params)
    with pytest.raises(FileNotFoundError, match="directory .*nope.* does not exist"):
        jl.save(tmp_path / "nope" / "m.safetensors", params)
    assert not (tmp_path / "nope").exists()                 # nothing created
    with pytest.raises(IsADirectoryError, match="is a directory"):
        jl.save(tmp_path, params)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        jl.load(tmp_path)
    with pytest.raises(ValueError, match="load: the path is empty"):
        jl.load("")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert jl.save("~/home.safetensors", params) == str(tmp_path / "home.safetensors")
    assert (tmp_path / "home.safetensors").is_file() and not (tmp_path / "~").exists()
    np.testing.assert_array_equal(jl.load("~/home.safetensors").params["w"], params["w"])
    os.symlink(tmp_path / "home.safetensors", tmp_path / "link.safetensors")
    jl.save(tmp_path / "link.safetensors", {"w": params["w"] * 2})      # writes through
    assert os.path.islink(tmp_path / "link.safetensors")
    np.testing.assert_array_equal(jl.load(tmp_path / "home.safetensors").params["w"],
                                  params["w"] * 2)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    params, state = tiny()
    path = tmp_path / "m.safetensors"
    jl.save(path, params)
    before = path.read_bytes()
    seen = []

    def full_disk(fd):
        seen.extend(os.listdir(tmp_path))
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ck.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        jl.save(path, params, state)
    monkeypatch.undo()
    temps = [n for n in seen if n != "m.safetensors"]
    assert len(temps) == 1 and temps[0].startswith(".m.safetensors.")    # beside the target
    assert temps[0].endswith(".tmp")
    assert os.listdir(tmp_path) == ["m.safetensors"] and path.read_bytes() == before


def test_a_killed_save_leaves_a_temp_file_the_next_save_removes(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "m.safetensors"
    killed = ("import os, sys, numpy as np, jaxlayers as jl\n"
              "os.replace = lambda *a: os._exit(9)\n"         # dies before the rename
              "jl.save(sys.argv[1], {'w': np.ones(3, np.float32)})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", killed, str(path)], env=env)
    assert run.returncode == 9
    (stale,) = os.listdir(tmp_path)
    assert stale.startswith(".m.safetensors.") and not path.exists()
    live = tmp_path / f".m.safetensors.{os.getpid()}.{'0' * 16}.tmp"    # a save in progress
    other = tmp_path / f".n.safetensors.999999999.{'0' * 16}.tmp"
    live.write_bytes(b"")
    other.write_bytes(b"")
    params, _ = tiny()
    jl.save(path, params)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.safetensors", live.name, other.name])


# --------------------------------------------------------------------------- malformed files


class New(tuple):
    """What an edit returns to replace the whole header."""


def rewrite(path, edit):
    """Apply `edit(header, tensors)` (which edits them in place, or returns ``New([h])``)
    to a checkpoint and store it with a valid checksum, as a careless (or hostile) editor
    would."""
    import json
    import sys
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    tensors = load_file(path)
    with safe_open(path, framework="numpy") as f:
        header = json.loads(f.metadata()["jaxlayers"])
    new = edit(header, tensors)
    header = new[0] if isinstance(new, New) else header
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 20000)         # to write a very deeply nested header
    try:
        meta = {"jaxlayers": json.dumps(header), "sha256": ck._digest(tensors, header)}
    finally:
        sys.setrecursionlimit(limit)
    save_file(tensors, path, metadata=meta)


def rename(d, old, new):
    d[new] = d.pop(old)


def nested(depth):
    skel = "leaf"
    for _ in range(depth):
        skel = {"tuple": [skel]}
    return skel


HEADER_EDITS = {   # what is edited -> what the CheckpointError says
    "a tensor renamed in the header only":
        (lambda h, t: [rename(h[k], "params/w", "params/x") for k in ("dtypes", "shapes")],
         "header and tensors disagree"),
    "a tensor renamed everywhere": (
        lambda h, t: [rename(d, "params/w", "params/x") for d in (h["dtypes"], h["shapes"], t)],
        "names \\['params/x'\\] do not follow the file's tree layout|"
        "params/x: in the file but not in the model"),
    "a tensor moved to another section": (
        lambda h, t: [rename(d, "params/w", "state/w") for d in (h["dtypes"], h["shapes"], t)],
        "tree layout for 'params' has 2 leaves but the file holds 1"),
    "a tensor outside every section": (
        lambda h, t: [rename(d, "params/w", "weights/w") for d in (h["dtypes"], h["shapes"], t)],
        "'weights/w' is in no section"),
    "a dtype edited to another of the same size":
        (lambda h, t: h["dtypes"].update({"params/w": "int32"}),
         "stored as float32, but the header says int32"),
    "an unknown dtype": (lambda h, t: h["dtypes"].update({"params/w": "object"}),
                         "dtype 'object', not one save writes"),
    "a shape with the same size": (lambda h, t: h["shapes"].update({"params/w": [3, 2]}),
                                   "stored with shape \\[2, 3\\], but the header says \\[3, 2\\]"),
    "a negative shape": (lambda h, t: h["shapes"].update({"params/w": [-2, -3]}),
                         "not a list of sizes"),
    "a shape that is not a list": (lambda h, t: h["shapes"].update({"params/w": "2x3"}),
                                   "not a list of sizes"),
    "a leaf dropped from the layout": (lambda h, t: h["skeletons"]["params"]["dict"].pop("w"),
                                       "has 1 leaves but the file holds 2"),
    "an unknown container": (lambda h, t: h["skeletons"].update({"state": {"list": ["leaf"]}}),
                             "tree layout at 'state' is"),
    "a leaf that is a number": (lambda h, t: h["skeletons"]["params"]["dict"].update({"w": 5}),
                                "tree layout at 'params/w' is 5"),
    "fields that do not fit the tuple":
        (lambda h, t: h["skeletons"]["state"].update({"fields": ["a", "b"]}),
         "tree layout at 'state' is"),
    "a layout nested far too deeply":
        (lambda h, t: h["skeletons"].update({"opt_state": nested(5000)}), "nested too deeply"),
    "a section missing": (lambda h, t: h["skeletons"].pop("opt_state"),
                          "tree layouts for \\['params', 'state'\\]"),
    "an entry of the wrong type": (lambda h, t: h.update({"metadata": [1, 2]}),
                                   "'metadata' is \\[1, 2\\], expected a JSON object"),
    "an unknown entry": (lambda h, t: h.update({"code": "__import__('os')"}),
                         "unknown entries \\['code'\\]"),
    "another format": (lambda h, t: h.update({"format": "jaxlayers-checkpoint/99"}),
                       "format 'jaxlayers-checkpoint/99', expected"),
    "a header that is a list": (lambda h, t: New([[1, 2]]), "has format \\[1, 2\\]"),
}


@pytest.mark.parametrize("edit", sorted(HEADER_EDITS))
def test_an_edited_header_with_a_valid_checksum_is_a_checkpoint_error(tmp_path, edit):
    params, state = tiny()
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params, state)
    change, message = HEADER_EDITS[edit]
    rewrite(path, change)
    for like in (None, params):
        with pytest.raises(jl.CheckpointError, match=message):
            jl.load(path, like=like)


def test_reordered_header_entries_still_load_each_tensor_in_its_place(tmp_path):
    params = {f"l{i}": jnp.full((2,), i, jnp.float32) for i in range(12)}   # l10 < l2
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params)
    rewrite(path, lambda h, t: New([{**h, "dtypes": dict(sorted(h["dtypes"].items(),
                                                                 reverse=True))}]))
    same(jl.load(path).params, params)


def test_other_files_are_named_for_what_they_are(tmp_path):
    from safetensors.numpy import save_file
    path = str(tmp_path / "plain.safetensors")
    save_file({"w": np.ones(2, np.float32)}, path, metadata={"note": "x"})
    with pytest.raises(jl.CheckpointError, match="not a jaxlayers checkpoint"):
        jl.load(path)
    save_file({"w": np.ones(2, np.float32)}, path, metadata={"jaxlayers": "{not json",
                                                               "sha256": "0"})
    with pytest.raises(jl.CheckpointError, match="header is not valid JSON"):
        jl.load(path)
    open(path, "wb").write(b"\x80\x04\x95pickle bytes")
    with pytest.raises(jl.CheckpointError, match="truncated or corrupted"):
        jl.load(path)


def test_fuzz_flipped_bytes_and_truncations_never_escape_as_other_errors(tmp_path):
    params, state = jax.tree_util.tree_map(np.asarray, tiny())
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params, state, metadata={"epoch": 2})
    blob = open(path, "rb").read()
    good = jl.load(path, like=jl.Checkpoint(params, state, None, {}))
    rng = np.random.default_rng(0)
    outcomes = {"error": 0, "same": 0}

    def attempt(data):
        open(path, "wb").write(data)
        for like in (None, jl.Checkpoint(params, state, None, {})):
            try:
                got = jl.load(path, like=like)
            except jl.CheckpointError:
                outcomes["error"] += 1
                continue
            # a change the format ignores (JSON whitespace) must give the very same numbers
            same(got.params, good.params)
            same(got.state, good.state)
            assert got.metadata == good.metadata
            outcomes["same"] += 1

    for i in range(len(blob)):              # every byte replaced: inverted or at random
        value = blob[i] ^ 0xFF if i % 2 else int(rng.integers(256))
        if value != blob[i]:
            attempt(blob[:i] + bytes([value]) + blob[i + 1:])
    for n in range(0, len(blob), 3):        # cut at many lengths
        attempt(blob[:n])
    attempt(blob + b"\x00")
    assert outcomes["error"] > len(blob) and outcomes["same"] < outcomes["error"] / 20


def test_loading_runs_no_code(tmp_path, monkeypatch):
    import builtins
    import pickle
    params, state = tiny()
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params, state, metadata={"note": "__import__('os').system('false')"})
    calls = []
    for owner, name in ((builtins, "eval"), (builtins, "exec"), (builtins, "compile"),
                        (pickle, "loads"), (pickle, "load"), (np, "load")):
        monkeypatch.setattr(owner, name, lambda *a, _n=name, **k: calls.append(_n))
    c = jl.load(path, like=params)
    c2 = jl.load(path)
    rewrite(path, lambda h, t: h["dtypes"].update({"params/w": "object"}))
    with pytest.raises(jl.CheckpointError):
        jl.load(path)
    monkeypatch.undo()
    assert calls == []
    assert c.metadata["note"] == c2.metadata["note"] == "__import__('os').system('false')"


def test_fuzz_every_header_value_replaced_with_junk(tmp_path):
    import copy
    params, state = jax.tree_util.tree_map(np.asarray, tiny())
    path = str(tmp_path / "m.safetensors")
    jl.save(path, params, state)
    blob = open(path, "rb").read()
    good = jl.load(path)

    def places(node, at=()):
        """Every (path) to a value in the header's layout, dtype and shape entries."""
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for k, v in items:
            yield at + (k,)
            yield from places(v, at + (k,))

    from safetensors import safe_open
    import json
    with safe_open(path, framework="numpy") as f:
        header = json.loads(f.metadata()["jaxlayers"])
    spots = [p for p in places(header) if p[0] in ("skeletons", "dtypes", "shapes")]
    junk = [None, 0, -1, 2.5, True, "x", "leaf", "int32", [], [1], {}, {"tuple": []},
            {"dict": {}}]
    errors = 0
    for spot in spots:
        for value in junk:
            def edit(h, t, spot=spot, value=value):
                h = copy.deepcopy(h)
                node = h
                for k in spot[:-1]:
                    node = node[k]
                node[spot[-1]] = value
                return New([h])
            open(path, "wb").write(blob)
            rewrite(path, edit)
            try:
                got = jl.load(path)
            except jl.CheckpointError:
                errors += 1
                continue
            same(got.params, good.params)               # junk that changed nothing
            same(got.state, good.state)
    assert len(spots) > 15 and errors > 0.9 * len(spots) * len(junk)


def test_model_checkpoint_creates_its_directory_as_keras_does(tmp_path):
    model = jl.Dense(1)
    _, params = model.init(jax.random.key(0), (None, 2))
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    ck_cb = jl.ModelCheckpoint(tmp_path / "runs" / "a" / "ck-{epoch}.safetensors")
    jl.fit(model, params, optax.sgd(0.1), "mse", x, y, epochs=1, callbacks=[ck_cb], verbose=0)
    assert jl.load(tmp_path / "runs" / "a" / "ck-1.safetensors").metadata["epoch"] == 1
