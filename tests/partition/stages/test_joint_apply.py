"""A joint pipeline plan's layers per stage as the stage of every op (partition/stages/joint_apply.py)."""
import pytest

from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.errors import RhinoError
from rhino_mlir.partition.stages import joint_apply as J
from rhino_mlir.partition.stages.microbatch import analyze as micro_analyze
from rhino_mlir.partition.stages.tasks import BWD, FWD, assign
from rhino_mlir.passes import PassContext
from rhino_mlir.passes.pass_pipeline import run_pipeline_str

GPT = dict(batch=4, seq=8, d_model=16, n_layer=4)


@pytest.fixture(scope="module")
def gpt():
    text, _ = zoo.get("gpt-tiny", **GPT).lower("train_step")
    ctx = I.new_context()
    m = I.parse_module(text, ctx, "gpt")
    run_pipeline_str(m, "builtin.module(rhino-inline)", PassContext(ctx))
    an, micro = J.analyze(m)
    return m, an, micro


def test_layer_stages():
    assert J.layer_stages([2, 1, 3]) == [0, 0, 1, 2, 2, 2]
    assert J.layer_stages([4]) == [0, 0, 0, 0]


@pytest.mark.parametrize("split", [[1, 3], [3, 1], [2, 2], [1, 1, 1, 1]])
def test_stages_follow_the_layers_and_can_be_scheduled(gpt, split):
    m, an, micro = gpt
    reps = J.repeated_layers(an)
    assert len(reps) == GPT["n_layer"]
    st = J.stage_of_ops(an, micro, J.layer_map(an, split))
    assert set(st) == {i for i, x in enumerate(micro) if x}
    want = J.layer_stages(split)
    for k, L in enumerate(reps):                      # forward: the layer's stage
        assert {st[i] for i in L.ops if micro[i]} == {want[k]}
    first, last = min(reps[0].ops), max(reps[-1].ops)
    assert all(s == 0 for i, s in st.items() if i < first)
    assert all(s == len(split) - 1 for i, s in st.items() if last < i <= an.fwd_end)
    # backward: an op reading forward values of layer k (and of no other repeated
    # layer) runs in layer k's stage
    own = {r: k for k, L in enumerate(reps) for i in L.ops for r in an.ops[i].results}
    checked = 0
    for i in range(an.fwd_end + 1, len(an.ops)):
        ks = {own[v] for v in an.ops[i].operands if v in own}
        if micro[i] and len(ks) == 1:
            assert st[i] == want[ks.pop()], i
            checked += 1
    assert checked > 10 * GPT["n_layer"]
    bwd = [st[i] for i in sorted(st) if i > an.fwd_end]
    assert bwd == sorted(bwd, reverse=True) and bwd[-1] == 0
    # every stage has a forward and (but the last, which runs its backward in F) a backward
    with m.context, I.ir.Location.unknown():
        from rhino_mlir.analysis import rules
        rules.populate(m)
        info = micro_analyze(m, 1)
        rules.strip(m.operation)
    tasks = assign(info, len(split), st)
    used = {t for t in tasks.task if t is not None}
    assert all((FWD, s) in used for s in range(len(split)))
    assert all((BWD, s) in used for s in range(len(split) - 1))


def test_a_plan_for_another_layer_count_is_refused(gpt):
    _, an, _ = gpt
    with pytest.raises(RhinoError, match="splits 3 layers but @main has 4 repeated layers"):
        J.layer_map(an, [1, 2])


def test_recomputed_clones_split_into_the_stage_of_their_layer():
    """rhino-remat (full) before the stages: each stage's backward holds the barriers of its
    own layers, and the forward-to-backward boundary of stage 0 shrinks to the layer inputs."""
    from rhino_mlir.partition.remat.apply import apply_remat
    from rhino_mlir.passes.pipeline_split import read_table
    text, _ = zoo.get("gpt-tiny", **GPT).lower("train_step")
    outs = {}
    for policy in ("none", "full"):
        ctx = I.new_context()
        m = I.parse_module(text, ctx, "gpt")
        run_pipeline_str(m, "builtin.module(rhino-inline)", PassContext(ctx))
        lm = J.layer_map(J.layers_of(m), [2, 2])
        layers, _ = J.remat_layers(lm, [policy, "none"])
        if layers:
            apply_remat(m, {}, "none", layers=layers)
        J.write_stages(m, lm)
        run_pipeline_str(m, "builtin.module(rhino-pipeline-split{stages=2 microbatches=2})", PassContext(ctx))
        fns = {(f["stage"], f["name"]): f for f in read_table(m)["functions"]}
        text_of = {k: str(op) for k in fns for op in I.walk_ops(m.operation)
                   if op.name == "builtin.module" and "sym_name" in op.attributes
                   and op.attributes["sym_name"].value == f"stage_{k[0]}"}
        outs[policy] = (fns, text_of)
    fns, text_of = outs["full"]
    assert text_of[(0, "bwd")].count("stablehlo.optimization_barrier") == 2     # layers 0 and 1
    assert "optimization_barrier" not in text_of[(1, "fwd")]                     # stage 1: policy none
    assert len(fns[(0, "fwd")]["outputs"]) < len(outs["none"][0][(0, "fwd")]["outputs"])
