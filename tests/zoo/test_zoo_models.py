"""Every zoo family's small config lowers, plans on 1x4xcpu-test, partitions and runs on
4 XLA CPU devices with the single-device numbers; big configs lower from shapes alone.

Inference functions (forward / generate) go the whole way in the default run; train
steps are planned there and partitioned + run in the slow set (rhino-propagate takes
5-20 s per train step on 2 cores)."""
import jax
import numpy as np
import pytest

from harness.xla_oracle import check_local
from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.cluster import parse_cluster
from rhino_mlir.partition.search.apply import write_result
from rhino_mlir.partition.search.planner import Request, plan_module
from rhino_mlir.passes import REGISTRY, PassContext
from rhino_mlir.tools import rhino

FAMILIES = ["gpt-tiny", "bert-tiny", "t5-tiny", "gshard-moe-tiny", "wrn-tiny", "vit-tiny"]
INFERENCE = [(n, "forward") for n in FAMILIES] + [("gpt-tiny", "generate"), ("t5-tiny", "generate")]


def plan_partition(name: str, fn: str, partition: bool = True, **over):
    m = zoo.get(name, **over)
    text, _ = m.lower(fn)
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    REGISTRY["rhino-inline"]().apply(pctx, mod)
    res = plan_module(mod, Request(parse_cluster("1x4xcpu-test")))
    write_result(mod, res)
    annotated = str(mod)
    if partition:
        for p in ("rhino-propagate", "rhino-spmd-partition"):
            REGISTRY[p]().apply(pctx, mod)
    return m, res, annotated, str(mod)


@pytest.mark.parametrize("name,fn", INFERENCE)
def test_inference_plans_partitions_and_runs_on_4_devices(name, fn):
    m, res, annotated, local = plan_partition(name, fn)
    assert res.plan.prediction.step_time_s > 0
    assert res.plan.prediction.step_time_s <= min(b["step_time_s"] for b in res.plan.baselines) * (1 + 1e-9)
    args = [np.asarray(a) for a in jax.tree_util.tree_leaves(m.args(fn))]
    check_local(local, annotated, args)


@pytest.mark.parametrize("name", FAMILIES)
def test_train_step_plans(name):
    _, res, annotated, _ = plan_partition(name, "train_step", partition=False)
    assert res.plan.mesh and res.plan.prediction.memory_per_device_bytes > 0
    assert "sdy.sharding" in annotated
    assert {b["name"] for b in res.plan.baselines} >= {"dp", "megatron"}


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES[1:])        # gpt-tiny: tests/partition/test_planner.py
def test_train_step_partitions_and_runs_on_4_devices(name):
    m, _, annotated, local = plan_partition(name, "train_step")
    args = [np.asarray(a) for a in jax.tree_util.tree_leaves(m.args("train_step"))]
    check_local(local, annotated, args)


BIG = {"gpt-1.5b": (1.5e9, 1.6e9), "gpt-175b": (1.74e11, 1.76e11), "bert-base": (1.09e8, 1.11e8),
       "bert-large": (3.3e8, 3.4e8), "t5-base": (2.2e8, 2.3e8), "gshard-moe-3.5b": (3.4e9, 3.5e9),
       "wrn-50-2": (6.8e7, 7.0e7), "vit-base": (8.6e7, 8.7e7)}


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_configs_have_published_sizes_and_lower_from_shapes(name):
    m = zoo.get(name)
    lo, hi = BIG[name]
    assert lo <= m.n_params() <= hi
    if "scan_layers" in m.cfg.__dataclass_fields__:        # constant program size: fast to lower
        text, info = zoo.get(name, scan_layers=True).lower("train_step")
        assert "stablehlo.while" in text and len(info.arg_paths) > 3


def test_gpt_configs_follow_the_papers():
    c = zoo.get("gpt-1.5b").cfg
    assert (c.n_layer, c.d_model, c.n_head, c.vocab, c.seq) == (48, 1600, 25, 50257, 1024)
    c = zoo.get("gpt-175b").cfg
    assert (c.n_layer, c.d_model, c.n_head, c.seq) == (96, 12288, 96, 2048)
    assert {"gpt-125m", "gpt-350m", "gpt-1.3b", "gpt-6.7b"} <= set(zoo.names())


def test_generate_is_greedy_decoding():
    m = zoo.get("gpt-tiny", gen_tokens=3)
    params, idx = m.args("generate")
    out = np.asarray(jax.jit(m.fns["generate"])(params, idx))
    T = m.cfg.seq
    np.testing.assert_array_equal(out[:, :T - 3], idx[:, :T - 3])          # prompt kept
    logits = np.asarray(jax.jit(m.fns["forward"])(params, out))
    np.testing.assert_array_equal(out[:, T - 3:], logits[:, T - 4:T - 1].argmax(-1))


def test_rhino_export_writes_stablehlo(tmp_path, capsys):
    out = tmp_path / "m.mlir"
    assert rhino.main(["export", "bert-tiny", "-o", str(out), "--fn", "forward", "--set", "n_layer=1",
                       "--set", "scan_layers=true"]) == 0
    text = out.read_text()
    assert "func.func public @main" in text and "stablehlo.while" in text
    assert rhino.main(["export", "bert-tiny", "--set", "nope=1"]) == 1
    assert "has no such config field" in capsys.readouterr().err
    assert rhino.main(["export", "vit-tiny", "--fn", "generate"]) == 1
