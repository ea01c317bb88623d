"""partition/stages/tasks.py: stage defaults, the task (fwd / bwd / update) of every op, and the
rule that every dependency runs forward in task order F_0 < .. < F_{S-1} < B_{S-1} < .. < B_0."""
import pytest
from linear_train import parse, train_step

from rhino_mlir import ir as I
from rhino_mlir.partition.stages.microbatch import analyze
from rhino_mlir.partition.stages.tasks import BWD, FWD, UPDATE, StageError, assign, op_stages, rank

# a 3-layer linear train step cut like a 3-stage pipeline: layer l's forward on stage l, the
# gradients of layer l on stage l too
STAGES = {"h0": 0, "h1": 0, "h2": 1, "h3": 2, "sq": 2, "loss": 2, "dw2": 2, "g2": 2, "dw1": 1, "g1": 1, "dw0": 0}


def train(layers=3):
    """(module, MicroInfo, op names); the module must outlive the ops that info holds."""
    text, names = train_step(layers)
    m = parse(text)
    with m.context, I.ir.Location.unknown():
        info = analyze(m, 2)
    return m, info, names


def given(names, stages):
    return {i: stages[n] for i, n in enumerate(names) if n in stages}


def check_forward(info, t):
    """Every producer -> user pair inside the pipeline runs in task order; updates come after."""
    n = t.stages
    for i, op in enumerate(info.ops):
        if t.task[i] is None:
            continue
        for v in op.operands:
            j = t.producer.get(v)
            if j is None or t.task[j] is None:
                continue
            if t.task[i][0] == UPDATE:
                assert t.task[j][0] != UPDATE or t.update_order.index(t.task[j][1]) <= \
                    t.update_order.index(t.task[i][1])
            else:
                assert t.task[j][0] != UPDATE and rank(*t.task[j], n) <= rank(*t.task[i], n)


def test_three_stage_train_step():
    m, info, names = train()
    t = assign(info, 3, given(names, STAGES))
    check_forward(info, t)
    task = dict(zip(names, t.task))
    # forward of each layer on its stage; the last stage computes its gradients in F_2;
    # stages 1 and 0 need the gradient coming back, so their gradient ops run in B
    assert [task[n] for n in ["h0", "h1", "h2", "h3", "loss", "dw2", "g2"]] == \
        [(FWD, 0), (FWD, 0), (FWD, 1), (FWD, 2), (FWD, 2), (FWD, 2), (FWD, 2)]
    assert [task[n] for n in ["dw1", "g1", "dw0"]] == [(BWD, 1), (BWD, 1), (BWD, 0)]
    assert task["zero"] is None and task["lr"] is None            # constants: cloned where used
    assert [task[f"u{l}"] for l in range(3)] == [(UPDATE, 0), (UPDATE, 1), (UPDATE, 2)]
    assert t.update_order == [2, 1, 0]                               # no cross-stage update deps
    assert t.functions() == [(0, FWD), (1, FWD), (2, FWD), (1, BWD), (0, BWD),
                             (2, UPDATE), (1, UPDATE), (0, UPDATE)]


def test_rank_is_the_task_order():
    assert [rank(FWD, s, 3) for s in range(3)] + [rank(BWD, s, 3) for s in reversed(range(3))] == list(range(6))


def test_unstaged_ops_follow_their_first_producer_else_their_first_user():
    m, info, names = train()
    producer = {v: i for i, op in enumerate(info.ops) for v in op.results}
    st = dict(zip(names, op_stages(info, producer, given(names, {"h1": 0, "h3": 1}))))
    assert st["h0"] == 0                      # no staged producer: its user h1
    assert st["h2"] == 0 and st["sq"] == 1    # producers h1 and h3
    assert st["dw2"] == 0                     # operands h2 (stage 0) then h3 (1): the first wins
    assert st["zero"] == 1                    # a constant: its user, the loss
    # dw0 reads h0 (unstaged while producers are followed: it takes its user's stage later)
    # and g1 (<- g2 <- h3: stage 1)
    assert st["dw0"] == 1 and st["g1"] == 1
    assert st["s0"] == 1 and st["lr"] == 1    # s0 <- dw0; lr: its first user s0
    assert st["s2"] == 0 and st["u2"] == 0    # s2 <- dw2 (lr had no stage yet); u2 <- s2


def test_rhino_stage_attributes_are_read():
    m, info, names = train()
    with info.ops[0].context:
        i64 = I.ir.IntegerType.get_signless(64)
        for i, n in enumerate(names):
            if n in STAGES:
                info.ops[i].attributes["rhino.stage"] = I.ir.IntegerAttr.get(i64, STAGES[n])
    t = assign(info)                                               # stages = max + 1
    assert t.stages == 3
    assert t.task == assign(info, 3, given(names, STAGES)).task


def test_a_dependency_on_an_earlier_stages_backward_is_refused():
    # g2 on stage 0 runs in B_0, the very last task; dw1 on stage 1 (B_1) would need it earlier
    m, info, names = train()
    with pytest.raises(StageError, match=r"\(stablehlo.dot_general\) in stage 1 uses .* which runs later"):
        assign(info, 3, given(names, {**STAGES, "g2": 0}))


def test_stage_numbers_must_fit_and_no_stage_may_be_empty():
    m, info, names = train()
    with pytest.raises(StageError, match=r"has rhino.stage = 5 but the pipeline has 3 stage\(s\)"):
        assign(info, 3, given(names, {**STAGES, "h2": 5}))
    with pytest.raises(StageError, match=r"stage\(s\) 3 of 4 hold no per-micro-batch op"):
        assign(info, 4, given(names, STAGES))


def test_update_order_follows_cross_stage_update_dependencies():
    m, info, names = train()
    # s2 = lr * dw2 computed in stage 0's update, u2 = w2 - s2 in stage 2's: update 2 reads update 0
    t = assign(info, 3, given(names, {**STAGES, "s2": 0, "u2": 2}))
    check_forward(info, t)
    assert t.update_order == [1, 0, 2]                 # 0 before 2; otherwise higher stages first
    with pytest.raises(StageError, match="needs values across stages .* in both directions"):
        assign(info, 3, given(names, {**STAGES, "s2": 0, "u2": 2, "s0": 2, "u0": 0}))
