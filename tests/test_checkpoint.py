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
