"""rhino-pipeline-split: the pipelined program computes the single-device step.

Every stage function is run on XLA CPU (tests/harness) in schedule order by the
controller's in-process `simulate` (launch/rank/pipeline.py): its outputs, micro-batches
concatenated and reductions over the batch accumulated, must equal the original program
on one device. Stages come from `plan_pipeline` (the ILP) or are written by hand.
"""
import jax
import numpy as np
import pytest

import programs
from harness.xla_oracle import assert_close, check_local, run_global
from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.cluster import load_cluster
from rhino_mlir.errors import RhinoError
from rhino_mlir.launch.rank.pipeline import simulate
from rhino_mlir.partition.stages.pipeline import annotate, plan_pipeline
from rhino_mlir.passes import REGISTRY, PassContext
from rhino_mlir.passes.pipeline_split import function_text, read_table


def leaves(x):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(x)]


def split(text, stages, m, by_hand=None, cluster="1x8xcpu", batch_args=()):
    """(pipelined module, table); by_hand(position of the op in @main, 0..1) -> stage,
    else the stages of plan_pipeline."""
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    REGISTRY["rhino-inline"]().apply(pctx, mod)
    if by_hand is None:
        annotate(mod, plan_pipeline(mod, load_cluster(cluster), stages, m,
                                    batch_args=list(batch_args) or None))
    else:
        with ctx:
            i64 = I.ir.IntegerType.get_signless(64)
            ops = I.block_ops(I.main_func(mod).regions[0].blocks[0])[:-1]
            for i, op in enumerate(ops):
                op.attributes["rhino.stage"] = I.ir.IntegerAttr.get(i64, by_hand(i / len(ops)))
    REGISTRY["rhino-pipeline-split"](stages=stages, microbatches=m,
                                     batch_args=tuple(batch_args)).apply(pctx, mod)
    return mod, read_table(mod)


def run(mod, table, args, kind, partitioned=False):
    texts = {}

    def call(s, fn, xs):
        if (s, fn) not in texts:
            texts[(s, fn)] = function_text(mod, s, fn)
        if not partitioned:
            return run_global(texts[(s, fn)], xs)
        return check_local(partition(texts[(s, fn)]), texts[(s, fn)], xs)
    return simulate(table, call, args, kind)


def partition(text):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    for p in ("rhino-propagate", "rhino-spmd-partition"):
        REGISTRY[p]().apply(pctx, m)
    return str(m)


def same(got, ref):
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert_close(g, r, what=f"out{i}")


def test_mlp_4_stages_inference():
    m = zoo.get("mlp", dims=(16, 32, 32, 32, 8))
    text, _ = m.lower("forward")
    args = leaves(m.args("forward"))
    mod, table = split(text, 4, 4)
    assert {(f["stage"], f["name"]) for f in table["functions"]} == {(s, "fwd") for s in range(4)}
    x = next(e for f in table["functions"] for e in f["inputs"] if e["kind"] == "arg" and e["dim"] == 0)
    assert x["arg"] == len(args) - 1                            # the data argument, sliced
    same(run(mod, table, args, "inference"), run_global(text, args))


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
def test_mlp_train_step_accumulates(kind):
    m = zoo.get("mlp", dims=(16, 32, 32, 8))
    text, _ = m.lower("train_step_sgd")
    args = leaves(m.args("train_step_sgd"))
    mod, table = split(text, 2, 4)
    names = {f["name"] for f in table["functions"]}
    assert "update" in names
    accs = [v for v in table["values"].values() if v["kind"] == "acc"]
    assert accs and all(v["combiner"] == "add" for v in accs)   # gradients and the loss sum
    assert all(c[1] == "update" for v in accs for c in v["consumers"])
    same(run(mod, table, args, kind), run_global(text, args))


def test_weight_as_long_as_the_batch_is_not_split():
    # w1 (8, 32) has the batch's leading size 8: the rules, not shapes, find the batch
    m = zoo.get("mlp", dims=(8, 32, 8), batch=8)
    text, _ = m.lower("train_step_sgd")
    args = leaves(m.args("train_step_sgd"))
    mod, table = split(text, 2, 4)
    sliced = {e["arg"] for f in table["functions"] for e in f["inputs"]
              if e["kind"] == "arg" and e["dim"] is not None}
    assert sliced == {4, 5}                                     # x and y, not w1 (arg 1)
    same(run(mod, table, args, "1f1b"), run_global(text, args))


def test_transformer_skip_connection_crosses_stages():
    g = zoo.get("gpt-tiny", n_layer=2, seq=8, vocab=48, batch=4)
    text, _ = g.lower("forward")
    args = leaves(g.args("forward"))
    # cut inside the second block: its input h is both the layernorm input (stage 0) and
    # the residual added back after attention (stage 1)
    mod, table = split(text, 2, 2, by_hand=lambda x: 0 if x < 0.6 else 1)
    crossing = [vid for vid, v in table["values"].items()
                if v["stage"] == 0 and any(c[0] == 1 for c in v["consumers"])]
    assert len(crossing) >= 2
    same(run(mod, table, args, "inference"), run_global(text, args))


def test_two_stages_tensor_parallel():
    text, args = programs.get("transformer_block", "dp_tp_2x2")
    mod, table = split(text, 2, 2, by_hand=lambda x: 0 if x < 0.5 else 1)
    assert table["mesh"]["axes"] == [["x", 2], ["y", 2]]
    sharded = [v for v in table["values"].values() if v["sharding"] and '"y"' in v["sharding"]]
    assert sharded, "boundary values keep their tensor-parallel sharding"
    same(run(mod, table, args, "inference", partitioned=True), run_global(text, args))


def test_adam_gpt_train_step_two_stages():
    text, args = programs.get("gpt_train_step", "dp_tp_2x2")
    mod, table = split(text, 2, 2)
    same(run(mod, table, args, "1f1b"), run_global(text, args))


# ----------------------------------------------------------------------------- bad input

BN = """
func.func @main(%x: tensor<8x4xf32>, %w: tensor<4x4xf32>) -> tensor<8x4xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %1 = stablehlo.reduce(%0 init: %z) applies stablehlo.add across dimensions = [0] : (tensor<8x4xf32>, tensor<f32>) -> tensor<4xf32>
  %2 = stablehlo.broadcast_in_dim %1, dims = [1] : (tensor<4xf32>) -> tensor<8x4xf32>
  %3 = stablehlo.subtract %0, %2 : tensor<8x4xf32>
  return %3 : tensor<8x4xf32>
}
"""


def test_batch_norm_statistic_cannot_be_micro_batched():
    with pytest.raises(RhinoError, match="reduced over the whole batch"):
        split(BN, 1, 2, by_hand=lambda x: 0, batch_args=(0,))
    split(BN, 1, 1, by_hand=lambda x: 0, batch_args=(0,))     # one micro-batch: fine


def test_batch_not_divisible_is_refused():
    m = zoo.get("mlp")
    text, _ = m.lower("forward")
    with pytest.raises(RhinoError, match="batch size 8 does not divide into 3 micro-batches; "
                       "choose one of 1, 2, 4, 8"):
        split(text, 1, 3, by_hand=lambda x: 0)


def test_more_stages_than_ops():
    m = zoo.get("mlp")
    text, _ = m.lower("forward")
    with pytest.raises(RhinoError, match="hold no per-micro-batch op"):
        split(text, 9, 1, by_hand=lambda x: 0)
    with pytest.raises(RhinoError, match="only .* per-micro-batch op"):
        split(text, 8, 1, cluster="1x8xcpu")


def test_backward_stage_order_is_checked():
    m = zoo.get("mlp")
    text, _ = m.lower("forward")
    with pytest.raises(RhinoError, match="rhino.stage = 5 but the pipeline has 2"):
        split(text, 2, 1, by_hand=lambda x: 5 if x > 0.5 else 0)
