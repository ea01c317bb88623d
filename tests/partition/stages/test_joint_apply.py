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
    st = J.stage_of_ops(an, micro, split)
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
    _, an, micro = gpt
    with pytest.raises(RhinoError, match="splits 3 layers but @main has 4 repeated layers"):
        J.stage_of_ops(an, micro, [1, 2])
