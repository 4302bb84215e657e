"""Sharding by weight path (jl.shard, LayoutMap, DataParallel / FSDP / TensorParallel):
the specs on abstract meshes here, and training on 4 and 8 forced host devices in a
subprocess (the device count is fixed when jax starts): every layout gives the losses and
params of one device, keeps its shardings across steps, and checkpoints move between mesh
shapes."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from jax.sharding import AbstractMesh, Mesh, NamedSharding, PartitionSpec as P

import jaxlayers as jl

MESH = AbstractMesh((2, 4), ("data", "model"))
KEY = jax.random.key(0)


def specs(params, mesh, rules):
    return jax.tree_util.tree_leaves(jl.training.sharding.layout_specs(params, mesh, rules),
                                     is_leaf=lambda s: isinstance(s, P))


def by_path(params, mesh, rules):
    paths = jax.tree_util.tree_leaves(jl.param_paths(params))
    return dict(zip(paths, specs(params, mesh, rules)))


def mlp():
    return jl.serial(jl.Dense(16), jl.relu, jl.serial(jl.Dense(8), jl.Dense(4)), jl.Dense(3))


def transformer_params():
    inp = jl.Input((6,), dtype="int32")
    h = jl.Embedding(32, 16)(inp)
    h = jl.Add()([h, jl.MultiHeadAttention(4, 4)([h, h])])
    f = jl.Dense(16)(jl.Dense(32, activation="relu")(h))
    out = jl.Dense(3)(jl.GlobalAveragePooling1D()(jl.Add()([h, f])))
    return jl.Model(inp, out).init(KEY)[1]


def test_weight_paths_name_serial_children_and_functional_layers():
    _, params = mlp().init(KEY, (None, 5))
    assert jax.tree_util.tree_leaves(jl.param_paths(params)) == [
        "[0]/bias", "[0]/kernel", "[2]/[0]/bias", "[2]/[0]/kernel", "[2]/[1]/bias",
        "[2]/[1]/kernel", "[3]/bias", "[3]/kernel"]
    paths = set(jax.tree_util.tree_leaves(jl.param_paths(transformer_params())))
    assert {"embedding/embeddings", "multi_head_attention/query/kernel",
            "multi_head_attention/attention_output/bias", "dense_1/kernel"} <= paths


def test_layout_map_first_matching_rule_wins_and_unmatched_is_replicated():
    _, params = mlp().init(KEY, (None, 4))
    got = by_path(params, MESH, [(r"\[2\]/\[0\]/kernel", P(None, "model")),
                                 (r"kernel$", ("data",)), (r"^\[0\]/bias$", "model")])
    assert got["[2]/[0]/kernel"] == P(None, "model")
    assert got["[0]/kernel"] == got["[3]/kernel"] == P("data")
    assert got["[0]/bias"] == P("model")
    assert got["[3]/bias"] == got["[2]/[1]/bias"] == P()
    # a dict of rules keeps its order; None replicates
    assert by_path(params, MESH, {r"kernel": None})["[0]/kernel"] == P()


@pytest.mark.parametrize("rules, message", [
    ([(r"kernel$", P(None, "model"))],
     "LayoutMap rule 'kernel$' gives P(None, 'model') to weight '[3]/kernel' of "
     "shape (4, 3): dim 1 (size 3) is not divisible by mesh axis 'model' (4)"),
    ([(r"^\[0\]/kernel", P(("data", "model")))],
     "weight '[0]/kernel' of shape (5, 16): dim 0 (size 5) is not divisible by mesh axis "
     "'data' (2) x mesh axis 'model' (4) = 8 devices"),
    ([(r"bias", P("tensor"))], "mesh axis 'tensor' is not in the mesh (axes ('data', 'model'))"),
    ([(r"bias", P(None, None))], "the spec has 2 entries, the weight 1 dims"),
    ([(r"kernel", P("data", "data"))], "mesh axis 'data' is used twice"),
    ([(r"kernel[", P())], "LayoutMap: rule 'kernel[' is not a valid regex"),
])
def test_a_rule_that_does_not_fit_names_the_rule_and_the_weight(rules, message):
    _, params = mlp().init(KEY, (None, 5))
    with pytest.raises(ValueError) as e:
        specs(params, MESH, rules)
    assert message in str(e.value)


def test_bad_rules_and_layouts_are_type_errors():
    _, params = mlp().init(KEY, (None, 5))
    with pytest.raises(TypeError, match=r"each rule is a \(regex, spec\) pair"):
        specs(params, MESH, [r"kernel"])
    with pytest.raises(TypeError, match="a spec is a PartitionSpec"):
        specs(params, MESH, [(r"kernel", 3)])
    with pytest.raises(TypeError, match="a layout is a jl.Layout"):
        specs(params, MESH, "fsdp")
    with pytest.raises(ValueError, match="FSDP: mesh axis 'batch' is not in the mesh"):
        specs(params, MESH, jl.FSDP("batch"))
    with pytest.raises(ValueError, match="fit: layout= places params on a mesh: pass mesh="):
        jl.fit(mlp(), params, "sgd", "mse", np.zeros((4, 5)), np.zeros((4, 3)),
               layout=jl.FSDP(), verbose=0)


def test_fsdp_splits_the_largest_divisible_dim_of_large_weights():
    mesh = AbstractMesh((4,), ("data",))
    params = {"a": np.zeros((6, 40)), "b": np.zeros((12, 8)), "c": np.zeros((30,)),
              "small": np.zeros((4, 4)), "odd": np.zeros((3, 5, 7))}
    got = dict(zip("abcos", specs(params, mesh, jl.FSDP(min_size=20))))
    assert got["a"] == P(None, "data")        # 40 > 6
    assert got["b"] == P("data", None)        # 12 > 8, both divisible
    assert got["c"] == P()                    # 30 is not divisible by 4
    assert got["s"] == P()                    # 16 elements < min_size
    assert got["o"] == P()                    # no divisible dim
    assert specs(params, mesh, jl.DataParallel()) == [P()] * 5


def test_tensor_parallel_is_megatron_for_dense_attention_and_embedding():
    got = by_path(transformer_params(), MESH, jl.TensorParallel())
    for name in ("query", "key", "value"):            # split over the 4 heads
        assert got[f"multi_head_attention/{name}/kernel"] == P(None, "model", None)
        assert got[f"multi_head_attention/{name}/bias"] == P("model", None)
    assert got["multi_head_attention/attention_output/kernel"] == P("model", None, None)
    assert got["multi_head_attention/attention_output/bias"] == P()
    assert got["embedding/embeddings"] == P("model", None)            # the vocabulary
    assert got["dense/kernel"] == P(None, "model") and got["dense/bias"] == P("model")
    assert got["dense_1/kernel"] == P("model", None) and got["dense_1/bias"] == P()
    assert got["dense_2/kernel"] == P()          # column, but 3 classes do not divide by 4


def test_tensor_parallel_with_named_splits_and_einsum_dense():
    inp = jl.Input((5, 8))
    h = jl.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de")(inp)
    h = jl.EinsumDense("abde,de->ab", (None,))(h)
    params = jl.Model(inp, h).init(KEY)[1]
    tp = jl.TensorParallel(column=[r"^einsum_dense/"], row=[r"^einsum_dense_1/"])
    got = by_path(params, MESH, tp)
    assert got["einsum_dense/kernel"] == P(None, None, "model")
    assert got["einsum_dense/bias"] == P(None, "model")
    assert got["einsum_dense_1/kernel"] == P("model", None)
    with pytest.raises(TypeError, match="column is a list of regexes"):
        jl.TensorParallel(column=r"^up/")


def test_layouts_add_up_on_a_2d_mesh():
    got = by_path(transformer_params(), MESH, jl.TensorParallel() + jl.FSDP(min_size=64))
    assert got["dense/kernel"] == P("data", "model")        # (16, 32): column, then FSDP
    assert got["dense_1/kernel"] == P("model", "data")
    assert got["multi_head_attention/query/kernel"] == P("data", "model", None)
    assert got["embedding/embeddings"] == P("model", "data")
    assert got["dense/bias"] == P("model")                  # 32 elements < min_size
    # an explicit rule overrides what came before it
    got = by_path(transformer_params(), MESH,
                  jl.FSDP(min_size=0) + jl.LayoutMap([(r"^embedding/", P(None, "model"))]))
    assert got["embedding/embeddings"] == P(None, "model")


def test_layout_table_lists_every_weight_with_its_shard():
    _, params = jl.serial(jl.Dense(8)).init(KEY, (None, 4))
    table = jl.layout_table(params, MESH, jl.TensorParallel())
    assert table.splitlines() == ["path        shape   spec             per device",
                                  "[0]/bias    (8,)    ('model',)       (2,)",
                                  "[0]/kernel  (4, 8)  (None, 'model')  (4, 2)"]


def test_optimizer_state_follows_the_params_and_sharded_init_on_one_device(tmp_path):
    mesh = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
    model = mlp()
    shape, params = jl.sharded_init(model, KEY, (None, 5), mesh, jl.TensorParallel())
    assert shape == model.init(KEY, (None, 5))[0]
    ref = model.init(KEY, (None, 5))[1]
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref)):
        np.testing.assert_array_equal(a, b)
    assert params[0]["kernel"].sharding.spec == P(None, "model")
    tx = optax.adam(1e-3)
    ts = jl.TrainState(ref, (), tx.init(ref), np.int32(0), np.zeros(2, np.uint32))
    ts = jl.shard(ts, mesh, jl.TensorParallel())
    adam = ts.opt_state[0]
    assert adam.mu[0]["kernel"].sharding.spec == P(None, "model")
    assert adam.nu[2][0]["kernel"].sharding.spec == P("model", None)
    assert adam.count.sharding.spec == P() and ts.step.sharding.spec == P()
    # a checkpoint loads into the shardings of `like`
    jl.save(tmp_path / "c.safetensors", ts.params, opt_state=ts.opt_state)
    back = jl.load(tmp_path / "c.safetensors", like=ts)
    assert isinstance(back.params[0]["kernel"].sharding, NamedSharding)
    assert back.opt_state[0].mu[0]["kernel"].sharding.spec == P(None, "model")
    np.testing.assert_array_equal(back.params[3]["kernel"], ref[3]["kernel"])




@pytest.mark.slow
@pytest.mark.parametrize("devices", [4, 8])
def test_every_layout_trains_as_one_device(devices, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd(), JAX_PLATFORMS="cpu",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "") +   # the suite's quick-compile flags
               f" --xla_force_host_platform_device_count={devices}")
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    assert out["devices"] == devices
    assert set(out["runs"]) == {f"{m}/{lay}" for m in ("serial", "functional", "transformer")
                                for lay in ("data_parallel", "fsdp", "tensor_parallel",
                                            "tp+fsdp")}
    for name, run in out["runs"].items():
        assert run["loss_diff"] < 2e-5, name
        assert run["param_diff"] < 2e-5, name
        assert run["as_laid_out"], name          # params carry the layout's specs
        assert run["step_keeps_shardings"], name  # compiled step: state in == state out
        assert run["compiles"] == 1, name        # one compiled step for all the steps
        assert run["split"] == (name.split("/")[1] != "data_parallel"), name
    for name, diff in out["eval"].items():
        assert diff < 2e-5, name
    fsdp = out["fsdp_bytes"]                     # per-device params: 1/devices under FSDP
    assert fsdp["sharded"] * devices <= fsdp["whole"] * 1.1
    ck = out["checkpoint"]
    assert ck["loaded_equal"] and ck["on_new_mesh"]
    assert ck["resume_diff"] < 2e-5


# --------------------------------------------------------------------------- the subprocess
# `python tests/test_sharding.py DIR` with XLA_FLAGS=--xla_force_host_platform_device_count=N


def _models():
    serial = jl.serial(jl.Dense(16), jl.relu, jl.Dropout(0.1), jl.Dense(16), jl.relu,
                       jl.Dense(3))
    inp = jl.Input((6,))
    h = jl.Dense(16, activation="relu")(inp)
    h = jl.Add()([h, jl.Dense(16)(jl.Dense(32, activation="relu")(h))])
    functional = jl.Model(inp, jl.Dense(3)(h))
    tokens = jl.Input((8,), dtype="int32")
    h = jl.Embedding(32, 16)(tokens)
    h = jl.LayerNormalization()(jl.Add()([h, jl.MultiHeadAttention(4, 4)([h, h])]))
    f = jl.Dense(16)(jl.Dense(32, activation="relu")(h))
    h = jl.GlobalAveragePooling1D()(jl.Add()([h, f]))
    transformer = jl.Model(tokens, jl.Dense(3)(h))
    r = np.random.default_rng(0)
    x = r.normal(size=(32, 6)).astype(np.float32)
    y = r.integers(0, 3, 32)
    return {"serial": (serial, (None, 6), x, y), "functional": (functional, None, x, y),
            "transformer": (transformer, None, r.integers(0, 32, (32, 8)), y)}


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _step_shardings(ts, mesh, x, y):
    """Lower the cached compiled training step of the last fit: whether its TrainState
    comes out with the shardings it went in with, and how many times it compiled."""
    from jaxlayers.training import data, devices, steps
    key = next(k for k in reversed(steps._CACHE) if k[0] == "fit")
    step, init_meters, _ = steps._CACHE[key][1]
    place = devices.Placement(mesh, 8)
    batch, valid = next(data.Source("fit", x, y, None, None, 8).batches(None))
    meters = jax.device_put(init_meters(None), place.replicated)
    compiled = step.lower(ts, meters, place.batch(batch), place.batch(valid)).compile()
    ins = jax.tree.leaves(compiled.input_shardings[0][0])
    outs = jax.tree.leaves(compiled.output_shardings[0])
    have = [a.sharding for a in jax.tree.leaves(ts)]
    same = all(i.is_equivalent_to(o, a.ndim) and i.is_equivalent_to(h, a.ndim)
               for i, o, h, a in zip(ins, outs, have, jax.tree.leaves(ts)))
    return same, step._cache_size()


def _devices_main(tmp):
    n = len(jax.devices())
    mesh1 = Mesh(np.array(jax.devices()), ("data",))
    mesh2 = Mesh(np.array(jax.devices()).reshape(n // 2, 2), ("data", "model"))
    layouts = {"data_parallel": (mesh1, jl.DataParallel()),
               "fsdp": (mesh1, jl.FSDP(min_size=0)),
               "tensor_parallel": (mesh2, jl.TensorParallel()),
               "tp+fsdp": (mesh2, jl.TensorParallel() + jl.FSDP(min_size=0))}
    loss = jl.losses.SparseCategoricalCrossentropy(from_logits=True)
    # eps: the key bias of attention has a zero gradient (softmax ignores it); Adam would
    # blow its float noise up to full steps
    kw = dict(epochs=2, batch_size=8, verbose=0, rng=1)
    out = {"devices": n, "runs": {}, "eval": {}}
    for mname, (model, shape, x, y) in _models().items():
        params = (model.init(KEY, shape) if shape else model.init(KEY))[1]
        ts1, h1 = jl.fit(model, params, optax.adam(0.01, eps=1e-4), loss, x, y, **kw)
        for lname, (mesh, layout) in layouts.items():
            ts, h = jl.fit(model, params, optax.adam(0.01, eps=1e-4), loss, x, y, mesh=mesh,
                           layout=layout, **kw)
            want = jax.tree.leaves(jl.training.sharding.layout_specs(params, mesh, layout),
                                   is_leaf=lambda s: isinstance(s, P))
            got = [a.sharding for a in jax.tree.leaves(ts.params)]
            same, compiles = _step_shardings(ts, mesh, x, y)
            out["runs"][f"{mname}/{lname}"] = {
                "loss_diff": max(abs(a - b) for a, b in zip(h1["loss"], h["loss"])),
                "param_diff": _max_diff(ts1.params, ts.params),
                "as_laid_out": all(g.is_equivalent_to(NamedSharding(mesh, w), a.ndim)
                                   for g, w, a in zip(got, want, jax.tree.leaves(ts.params))),
                "split": any(not g.is_fully_replicated for g in got),
                "step_keeps_shardings": same, "compiles": compiles}
        mesh, layout = layouts["tp+fsdp"]
        e1 = jl.evaluate(model, ts1, x, y, loss=loss, batch_size=8)["loss"]
        e2 = jl.evaluate(model, ts1, x, y, loss=loss, batch_size=8, mesh=mesh, layout=layout)
        out["eval"][f"{mname}/evaluate"] = abs(e1 - e2["loss"])
        p1 = jl.predict(model, ts1, x, batch_size=8)
        p2 = jl.predict(model, ts1, x, batch_size=8, mesh=mesh, layout=layout)
        out["eval"][f"{mname}/predict"] = _max_diff(p1, p2)

    # per-device bytes of a large MLP's params under FSDP
    big = jl.serial(jl.Dense(256), jl.relu, jl.Dense(256))
    _, bp = jl.sharded_init(big, KEY, (None, 64), mesh1, jl.FSDP())
    out["fsdp_bytes"] = {
        "whole": sum(a.nbytes for a in jax.tree.leaves(bp)),
        "sharded": sum(a.addressable_shards[0].data.nbytes for a in jax.tree.leaves(bp))}

    # save a sharded TrainState from the 1-D FSDP mesh, load it onto the 2-D mesh, resume
    model, shape, x, y = _models()["serial"]
    params = model.init(KEY, shape)[1]
    ts1, _ = jl.fit(model, params, optax.adam(0.01, eps=1e-4), loss, x, y, **dict(kw, epochs=1))
    ts1b, h1b = jl.fit(model, ts1, optax.adam(0.01, eps=1e-4), loss, x, y, **dict(kw, epochs=1))
    ts, _ = jl.fit(model, params, optax.adam(0.01, eps=1e-4), loss, x, y, mesh=mesh1,
                   layout=jl.FSDP(min_size=0), **dict(kw, epochs=1))
    path = os.path.join(tmp, "sharded.safetensors")
    jl.save(path, ts.params, ts.state, ts.opt_state)
    mesh, layout = layouts["tp+fsdp"]
    like = jl.shard(jl.TrainState(params, (), optax.adam(0.01, eps=1e-4).init(params), ts.step, ts.rng),
                    mesh, layout)
    back = jl.load(path, like=like)
    resumed = jl.TrainState(back.params, back.state, back.opt_state, like.step, like.rng)
    ts2, h2 = jl.fit(model, resumed, optax.adam(0.01, eps=1e-4), loss, x, y, mesh=mesh, layout=layout,
                     **dict(kw, epochs=1))
    out["checkpoint"] = {
        "loaded_equal": _max_diff(back.params, ts.params) == 0.0
        and _max_diff(back.opt_state, ts.opt_state) == 0.0,
        "on_new_mesh": all(a.sharding == b.sharding for a, b in
                           zip(jax.tree.leaves(back.params), jax.tree.leaves(like.params))),
        "resume_diff": max(abs(h1b["loss"][0] - h2["loss"][0]),
                           _max_diff(ts1b.params, ts2.params))}
    print("RESULT" + json.dumps(out), flush=True)


if __name__ == "__main__":
    _devices_main(sys.argv[1])
