"""reshard_price.Table: the reshard rows of memory.reshards, one decision per kind of site."""
import numpy as np

from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.cluster import load_cluster
from rhino_mlir.partition.search import reshard_price, training
from rhino_mlir.partition.search.planner import Request, plan_module
from rhino_mlir.partition.spmd.memory import reshards
from rhino_mlir.passes import REGISTRY, PassContext


def _module():
    text, _ = zoo.get("gpt-tiny", n_layer=4).lower("train_step")
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    return m


def test_rows_equal_the_walk_for_every_candidate(monkeypatch):
    seen = []

    def both(cand, fx):
        sh = cand.asg.folded_shardings() if cand.asg is not None else cand.sh
        t = reshard_price.table(fx)
        new = t.rows(sh, cand.mesh)

        def lookup(key, value):
            v = t.vid_of(key)
            return sh[v] if v >= 0 else None
        old = reshards(fx.lv, lookup, cand.mesh)
        for a, b in zip(old, new):
            np.testing.assert_array_equal(a, b)
        seen.append((len(new[0]), len(t), len(fx.lv.sites)))
        cand.reshards = new
        return new
    monkeypatch.setattr(training, "_reshards", both)
    # a tight budget on 2x4: 2-D meshes, tensor-parallel candidates that reshard
    cl = load_cluster("2x4xcpu-test")
    plan_module(_module(), Request(cl.with_memory(400_000)))
    assert len(seen) >= 5
    assert any(n > 0 for n, _, _ in seen)                 # some candidates do reshard
    n, classes, sites = seen[0]
    assert classes < 0.7 * sites                           # the copies of a layer share decisions


def test_a_program_with_accumulator_carries_keeps_the_walk(monkeypatch):
    """rhino-accumulate's loop: carry rows depend on the order of the walk, so Table defers to it."""
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    text, _ = zoo.get("mlp").lower("train_step")
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    run_pipeline_str(m, "builtin.module(rhino-accumulate{microbatches=2})", PassContext(ctx))
    seen = []
    orig = training._reshards

    def spy(cand, fx):
        got = orig(cand, fx)
        seen.append((reshard_price.table(fx).walk, len(got[0])))
        return got
    monkeypatch.setattr(training, "_reshards", spy)
    plan_module(m, Request(load_cluster("1x4xcpu-test")))
    assert seen and all(w for w, _ in seen)
    assert any(n > 0 for _, n in seen)
