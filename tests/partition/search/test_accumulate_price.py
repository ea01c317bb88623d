"""partition/search/accumulate_price.py: with K micro-batches, a data-parallel plan's gradient
all-reduces are priced once per step (as rhino-spmd-partition emits them, after the loop),
so its predicted communication does not grow with K."""
from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.cluster import load_cluster
from rhino_mlir.passes.auto_shard import apply_training
from rhino_mlir.partition.search.apply import write_result
from rhino_mlir.partition.search.planner import Request, plan_module
from rhino_mlir.passes import REGISTRY, PassContext
from rhino_mlir.passes.pass_pipeline import run_pipeline_str


def _plan_and_partition(k: int):
    text, _ = zoo.get("mlp", dims=(64, 256, 256, 8), batch=64).lower("train_step")
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    res = plan_module(m, Request(load_cluster("1x4xcpu-test"), strategy="dp", microbatches=k, remat="none"))
    write_result(m, res)
    apply_training(m, {}, res.plan.microbatches)
    pctx = PassContext(ctx)
    run_pipeline_str(m, "builtin.module(rhino-propagate,rhino-spmd-partition)", pctx)
    return res.plan, pctx.stats["rhino-spmd-partition"], str(m)


def test_data_parallel_comm_does_not_scale_with_microbatches():
    p1, s1, _ = _plan_and_partition(1)
    p4, s4, local = _plan_and_partition(4)
    assert p4.microbatches == 4 and p4.mesh == [["x", 4]]
    # the same gradient all-reduces, once per step: predicted bytes and seconds as with K = 1
    assert p4.prediction.bytes_per_axis == p1.prediction.bytes_per_axis
    assert abs(p4.prediction.comm_s - p1.prediction.comm_s) <= 1e-9 * p1.prediction.comm_s
    assert p4.prediction.compute_s > p1.prediction.compute_s          # K loop trips cost something
    # what the partitioner emits: nothing in the loop body, the predicted bytes after it
    body = local[local.index("} do {"):]
    body = body[:body.index("\n    }\n")]
    assert "stablehlo.all_reduce" not in body and s4["kinds"].count("all_reduce") >= 4
    assert s4["bytes"] == sum(p4.prediction.bytes_per_axis.values())
