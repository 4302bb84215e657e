"""The benchmark suite imports and computes what it claims (no timing is asserted).

jaxlayers and the hand-written floor must give the same loss, the same update and the
same inference output from the same params; each installed peer must give the same first
loss on the tiny MLP (a peer that is not installed is skipped).
"""
import importlib

import jax
import numpy as np
import pytest

from bench import mlp, tiny_mlp
from bench.timing import Unavailable, measure
from tests.keras_ref import numpy_initializers

@pytest.fixture(autouse=True)
def _allow_rank_promotion():
    """The floor and the peers are user code: they broadcast a bias implicitly, as users do."""
    with jax.numpy_rank_promotion("allow"):
        yield


MODULES = ["timing", "common", "peers", "mlp", "tiny_mlp", "cnn", "lstm", "gru", "simple_rnn",
           "bn_dropout_cnn", "residual", "depthwise", "mobilenetv2", "transformer",
           "applications", "resnet50", "efficientnetb0", "convnexttiny", "build_cost", "report",
           "run", "transformer_probe", "transformer_variants"]


@pytest.mark.parametrize("name", MODULES)
def test_bench_modules_import(name):
    importlib.import_module(f"bench.{name}")


def _one_step(built, x, y):
    out = np.asarray(built.infer(built.infer_arg(built.carry), x))
    built.carry, loss = built.train(built.carry, x, y)
    return float(loss), out, built.carry


def test_jaxlayers_mlp_matches_hand_written():
    cfg = {"batch": 16}
    x, y = mlp.data(cfg)
    b = mlp.builders(cfg, x, y)
    loss_h, out_h, (params_h, _) = _one_step(b["hand"](), x, y)
    loss_j, out_j, (params_j, _) = _one_step(b["jaxlayers"](), x, y)
    assert np.isfinite(loss_h)
    np.testing.assert_allclose(loss_j, loss_h, rtol=1e-6)
    np.testing.assert_allclose(out_j, out_h, rtol=1e-5, atol=1e-6)
    for (w, bias), p in zip(params_h, params_j):           # one Adam step, same result
        np.testing.assert_allclose(p["kernel"], w, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(p["bias"], bias, rtol=1e-5, atol=1e-7)


def test_depthwise_lowerings_match_the_hand_written_step():
    from bench import depthwise
    cfg = {"batch": 2, "kernel": 3}
    x, y = depthwise.data(cfg)
    b = depthwise.builders(cfg, x, y)
    loss_h, out_h, (params_h, _) = _one_step(b["hand"](), x, y)
    for impl in ("jaxlayers_xla", "jaxlayers_shifted"):
        loss_j, out_j, (params_j, _) = _one_step(b[impl](), x, y)
        np.testing.assert_allclose(loss_j, loss_h, rtol=1e-5)
        np.testing.assert_allclose(out_j, out_h, rtol=1e-4, atol=1e-5)
        for k in ("kernel", "bias"):
            np.testing.assert_allclose(params_j[k], params_h[k], rtol=1e-4, atol=1e-6)


def _peer_matches_hand(b, impl, x, y):
    """The peer `impl` of builders `b` gives the floor's first loss and output (skipped where
    the peer is not installed, as in the test environment)."""
    try:
        built = b[impl]()
    except Unavailable as e:
        pytest.skip(str(e))
    loss_p, out_p, _ = _one_step(built, x, y)
    loss_h, out_h, _ = _one_step(b["hand"](), x, y)
    np.testing.assert_allclose(loss_p, loss_h, rtol=1e-5)
    np.testing.assert_allclose(out_p, out_h, rtol=1e-4, atol=1e-5)


TINY_TRANSFORMER = {"batch": 2, "seq": 8}


def test_transformer_jaxlayers_matches_the_floor():
    """Both jaxlayers builds (decoder blocks, MHA serial) compute the floor's loss, output
    and Adam update (the second step's loss) from the same weights."""
    from bench import transformer
    x, y = transformer.data(TINY_TRANSFORMER)
    b = transformer.builders(TINY_TRANSFORMER, x, y)
    ref = b["hand"]()
    loss_h, out_h, _ = _one_step(ref, x, y)
    loss2_h = float(ref.train(ref.carry, x, y)[1])
    assert out_h.shape == (2, 8, transformer.CLASSES) and np.isfinite(loss_h)
    for impl in ("jaxlayers", "jaxlayers_mha"):
        built = b[impl]()
        loss_j, out_j, _ = _one_step(built, x, y)
        np.testing.assert_allclose(loss_j, loss_h, rtol=1e-5)
        np.testing.assert_allclose(out_j, out_h, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(float(built.train(built.carry, x, y)[1]), loss2_h, rtol=1e-5)


def test_transformer_variants_compute_the_floor():
    """The compile probe's variants of the floor (einsum or matmul projections, softmax
    and LayerNorm arithmetic, flat params) are the same model: the floor's loss and output."""
    from bench import transformer, transformer_variants
    x, y = transformer.data(TINY_TRANSFORMER)
    loss_h, out_h, _ = _one_step(transformer.builders(TINY_TRANSFORMER, x, y)["hand"](), x, y)
    for name, build in transformer_variants.builders().items():
        loss, out, _ = _one_step(build(), x, y)
        np.testing.assert_allclose(loss, loss_h, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(out, out_h, rtol=1e-4, atol=1e-5, err_msg=name)


def test_transformer_bfloat16_rows_stay_close():
    from bench import transformer
    x, y = transformer.data(TINY_TRANSFORMER)
    loss32, _, _ = _one_step(transformer.builders(TINY_TRANSFORMER, x, y)["hand"](), x, y)
    b16 = transformer.builders(TINY_TRANSFORMER, x, y, dtype="bfloat16")
    assert set(b16) == {"hand", "jaxlayers", "jaxlayers_mha"}
    for impl in b16:
        loss16, out16, (params16, _) = _one_step(b16[impl](), x, y)
        assert out16.dtype == jax.numpy.bfloat16 and abs(loss16 - loss32) < 0.05 * loss32
        assert all(p.dtype == np.float32 for p in jax.tree_util.tree_leaves(params16))


@pytest.mark.slow
def test_applications_recipe_matches_keras():
    """The applications workloads' recipe on a small MobileNetV2 (no dropout): the import,
    its folded inference and Keras' own model give the same outputs and first loss."""
    from bench import applications, peers
    cfg, kw = {"batch": 4, "size": 64}, {"alpha": 0.35}   # BN batch statistics over 16 values
    data, builders = applications.workload("MobileNetV2", **kw)
    x, y = data(cfg)
    assert set(builders(cfg, x, y)) == {"jaxlayers", "jaxlayers_folded", "keras_stateless"}
    # each model built from the same numpy-drawn weights (no random op compiled per shape)
    with numpy_initializers():
        keras_built = peers.keras_stateless(applications.keras_model("MobileNetV2", cfg, **kw))
    loss_k, out_k, _ = _one_step(keras_built, x, y)
    for folded in (False, True):
        with numpy_initializers():
            built = applications.build_jaxlayers("MobileNetV2", cfg, kw, folded)
        loss_j, out_j, _ = _one_step(built, x, y)
        np.testing.assert_allclose(loss_j, loss_k, rtol=1e-5)
        np.testing.assert_allclose(out_j, out_k, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(out_k).max()))


@pytest.mark.slow
@pytest.mark.parametrize("workload,impl", [
    ("transformer", p) for p in ("linen", "nnx_split", "eqx_jit", "haiku", "keras_stateless")
] + [("depthwise", p) for p in ("linen", "nnx_split", "eqx_jit")])
def test_peer_computes_the_same_new_workloads(workload, impl):
    """The peers of the transformer and depthwise workloads start from the floor's weights
    (skipped where the peer is not installed, as in the test environment)."""
    mod = importlib.import_module(f"bench.{workload}")
    cfg = TINY_TRANSFORMER if workload == "transformer" else {"batch": 2, "kernel": 3}
    x, y = mod.data(cfg)
    b = mod.builders(cfg, x, y)
    _peer_matches_hand(b, impl, x, y)


def test_harness_reports_compiled_temporary_memory():
    cfg = tiny_mlp.BASE
    x, y = tiny_mlp.data(cfg)
    b = tiny_mlp.builders(cfg, x, y)
    rows = measure({"hand": b["hand"]}, x, y, passes=1, budget_s=0.0, warmup=0, memory=True,
                   log=lambda *a: None)
    assert rows[0]["train_temp_mb"] is not None and rows[0]["train_temp_mb"] >= 0


def test_jaxlayers_bfloat16_path_stays_close():
    cfg = {"batch": 16}
    x, y = mlp.data(cfg)
    b32 = mlp.builders(cfg, x, y)
    b16 = mlp.builders(cfg, x, y, dtype="bfloat16")
    loss32, _, _ = _one_step(b32["jaxlayers"](), x, y)
    loss16, _, (params16, _) = _one_step(b16["jaxlayers"](), x, y)
    assert abs(loss16 - loss32) < 0.05
    assert all(p.dtype == np.float32 for p in jax.tree_util.tree_leaves(params16))


PEERS = ["stax", "linen", "nnx_split", "nnx_jit", "eqx_jit", "eqx_filter_jit", "haiku",
         "keras_stateless"]


@pytest.mark.slow
@pytest.mark.parametrize("peer", PEERS)
def test_peer_computes_the_same_tiny_mlp(peer):
    cfg = tiny_mlp.BASE
    x, y = tiny_mlp.data(cfg)
    b = tiny_mlp.builders(cfg, x, y)
    _peer_matches_hand(b, peer, x, y)


def test_harness_runs_and_reports(tmp_path):
    cfg = tiny_mlp.BASE
    x, y = tiny_mlp.data(cfg)
    b = tiny_mlp.builders(cfg, x, y)
    rows = measure({k: b[k] for k in ("hand", "jaxlayers")}, x, y, passes=2, budget_s=0.0,
                   warmup=1, log=lambda *a: None)
    assert [r["impl"] for r in rows] == ["hand", "jaxlayers"]
    assert rows[0]["loss0"] == pytest.approx(rows[1]["loss0"], rel=1e-6)
    assert all(r["passes"] == 2 and r["train_ms"] > 0 for r in rows)
    from bench import report, run
    run.write_csv(str(tmp_path / "tiny_mlp.csv"), run.with_ratios(
        [dict(r, workload="tiny_mlp", config="batch=8", dtype="float32") for r in rows]))
    report.write(str(tmp_path))
    text = (tmp_path / "README.md").read_text()
    assert "| jaxlayers |" in text and "jax " in text


def test_harness_measures_compile_time_ahead_of_time():
    """The compile columns come from `lower` and `compile` rounds (trace + lower and XLA's
    compile apart, nothing run); a step without `lower` falls back to its first calls."""
    from bench import timing
    cfg = tiny_mlp.BASE
    x, y = tiny_mlp.data(cfg)
    b = tiny_mlp.builders(cfg, x, y)

    def no_lower():                      # the same step behind a plain Python function
        built = b["hand"]()
        train, infer = built.train, built.infer
        built.train = lambda carry, x, y: train(carry, x, y)
        built.infer = lambda arg, x: infer(arg, x)
        return built
    rows = measure({"hand": b["hand"], "wrapped": no_lower}, x, y, passes=1, budget_s=0.0,
                   warmup=0, compiles=2, log=lambda *a: None)
    aot, wrapped = rows
    assert aot["compiles"] == 2 and aot["lower_s"] > 0 and aot["xla_s"] > 0
    assert aot["compile_cpu_s"] > 0 and aot["compile_infer_s"] > 0
    # two rounds: each median is the mean, so the total's is the sum of the parts'
    assert aot["compile_s"] == pytest.approx(aot["lower_s"] + aot["xla_s"], rel=1e-9)
    assert wrapped["compiles"] == 2 and np.isnan(wrapped["lower_s"])
    assert wrapped["compile_s"] > 0
    assert timing.aot_seconds(lambda v: v, 1.0) is None


def test_missing_jaxlayers_layer_is_reported_not_raised():
    from bench import common
    with pytest.raises(Unavailable, match="not available yet"):
        common.jl_names("NoSuchLayerXYZ")
