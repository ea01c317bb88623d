"""partition/stages/stage_ilp.py: chunking the op sequence, and the stage ILP against brute-force
enumeration of every task assignment that keeps the dependencies in task order."""
import itertools

import numpy as np
import pytest

from rhino_mlir.errors import RhinoError
from rhino_mlir.partition.stages.stage_ilp import Chunks, chunk, solve, stage_of_task


# ----------------------------------------------------------------------------- chunk

def test_equal_costs_cut_into_equal_consecutive_chunks():
    ch = chunk([1.0] * 8, [(0, 1, 5.0), (1, 2, 3.0), (0, 5, 2.0), (3, 6, 1.0), (4, 7, 4.0)], 4)
    assert ch.of_op == [0, 0, 1, 1, 2, 2, 3, 3]
    assert ch.cost == [2.0, 2.0, 2.0, 2.0]
    # (0, 1) stays inside chunk 0; the others cross chunks
    assert ch.edges == {(0, 1): 3.0, (0, 2): 2.0, (1, 3): 1.0, (2, 3): 4.0}


def test_a_heavy_op_gets_a_chunk_of_its_own():
    # weight = half cost share, half op share: 0.53 for the heavy op, 0.067 for the others;
    # with 2 slots the heavy op's midpoint (0.26) is in the first, every other one in the second
    ch = chunk([100.0] + [1.0] * 7, [], 2)
    assert ch.of_op == [0, 1, 1, 1, 1, 1, 1, 1] and ch.cost == [100.0, 7.0]


def test_chunk_count_is_clamped_to_the_ops():
    assert chunk([3.0, 1.0, 2.0], [], 10).of_op == [0, 1, 2]
    assert chunk([3.0, 1.0, 2.0], [], 0).of_op == [0, 0, 0]


# ----------------------------------------------------------------------------- solve

def brute(C, edges, stages, training, time, flops, share, transfer, m, slack=0.5):
    """min over all task assignments of (M + S - 1) * T + M * crossing transfers, where every
    edge keeps task order, no stage is empty and every stage's flop share is within slack."""
    nt = 2 * stages if training else stages
    best = []
    tot = sum(flops)
    for tasks in itertools.product(range(nt), repeat=C):
        if any(tasks[u] > tasks[v] for u, v in edges):
            continue
        st = [stage_of_task(t, stages) for t in tasks]
        if set(st) != set(range(stages)):
            continue
        frac = [sum(f for f, s in zip(flops, st) if s == k) / tot for k in range(stages)]
        if any(not (1 - slack) * share[k] - 1e-9 <= frac[k] <= min(1.0, (1 + slack) * share[k]) + 1e-9
               for k in range(stages)):
            continue
        T = max(sum(time[c, k] for c in range(C) if st[c] == k) for k in range(stages))
        cross = sum(transfer.get(e, 0.0) for e in edges if st[e[0]] != st[e[1]])
        best.append(((m + stages - 1) * T + m * cross, tasks))
    return sorted(best)


def objective(tasks, C, edges, stages, time, transfer, m):
    st = [stage_of_task(t, stages) for t in tasks]
    T = max(sum(time[c, k] for c in range(C) if st[c] == k) for k in range(stages))
    return (m + stages - 1) * T + m * sum(transfer.get(e, 0.0) for e in edges if st[e[0]] != st[e[1]])


def check(costs, edges, stages, training, m=4, speed=None, transfer=None, unit=1.0):
    C = len(costs)
    speed = speed or [1.0] * stages
    time = np.array([[c * unit / sp for sp in speed] for c in costs])
    share = [sp / sum(speed) for sp in speed]
    transfer = transfer or {}
    ch = Chunks(list(range(C)), list(costs), {e: 1.0 for e in edges})
    tasks = solve(ch, stages, training, time, list(costs), share, transfer, m)
    for u, v in edges:                                     # dependencies run in task order
        assert tasks[u] <= tasks[v]
    assert {stage_of_task(t, stages) for t in tasks} == set(range(stages))
    ranked = brute(C, edges, stages, training, time, list(costs), share, transfer, m)
    opt = ranked[0][0]
    # HiGHS stops within 2% (mip_rel_gap); every other objective here is further off
    assert all(o <= opt * (1 + 1e-9) or o > 1.02 * opt for o, _ in ranked)
    assert objective(tasks, C, edges, stages, time, transfer, m) == pytest.approx(opt)
    return tasks


CHAIN = [4.0, 1.0, 3.0, 2.0, 2.0, 5.0, 1.0, 2.0]
CHAIN_EDGES = [(i, i + 1) for i in range(len(CHAIN) - 1)]


def test_inference_chain_splits_into_balanced_contiguous_stages():
    tasks = check(CHAIN, CHAIN_EDGES, 3, training=False)
    assert tasks == sorted(tasks)                          # contiguous: F_0 | F_1 | F_2
    sums = [sum(c for c, t in zip(CHAIN, tasks) if t == s) for s in range(3)]
    assert max(sums) == 8.0                                # e.g. 4+1 | 3+2+2 | 5+1+2
    even = [3.0, 4.0, 2.0, 5.0, 1.0, 3.0, 2.0, 1.0]        # 3+4 | 2+5 | 1+3+2+1
    assert check(even, CHAIN_EDGES, 3, training=False) == [0, 0, 1, 1, 2, 2, 2, 2]


def test_training_chain_pairs_each_stage_forward_with_its_backward():
    # a forward of 4 chunks then its backward of 4 (twice the cost), one chain
    costs = [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 4.0, 2.0]
    tasks = check(costs, [(i, i + 1) for i in range(7)], 2, training=True)
    st = [stage_of_task(t, 2) for t in tasks]
    assert st[0] == st[-1] == 0                            # the stage that starts also ends
    # F_0 + B_0 and F_1 + B_1 each take half of the 18 units
    assert [sum(c for c, s in zip(costs, st) if s == k) for k in range(2)] == [9.0, 9.0]


def test_slower_devices_get_less_work():
    tasks = check(CHAIN, CHAIN_EDGES, 2, training=False, speed=[3.0, 1.0])
    st = [stage_of_task(t, 2) for t in tasks]
    assert sum(c for c, s in zip(CHAIN, st) if s == 0) > sum(c for c, s in zip(CHAIN, st) if s == 1)


def test_expensive_transfers_move_the_cut():
    # the balanced cut (after chunk 3: 10 | 10) crosses a costly edge; the cut after chunk 2
    # (8 | 12) does not: 5 * 12 beats 5 * 10 + 4 * 10
    edges = CHAIN_EDGES
    transfer = {e: (0.0 if e == (2, 3) else 10.0) for e in edges}
    tasks = check(CHAIN, edges, 2, training=False, transfer=transfer)
    assert tasks == [0, 0, 0, 1, 1, 1, 1, 1]


def test_skip_connections_of_a_dag_keep_task_order():
    #   0 -> 1 -> 2 -> 3 -> 4 -> 5, plus 0 -> 3 and 1 -> 5 (residuals)
    edges = [(i, i + 1) for i in range(5)] + [(0, 3), (1, 5)]
    check([2.0, 1.0, 3.0, 2.0, 1.0, 3.0], edges, 2, training=True)


def test_three_stage_training_split():
    check([4.0, 4.0, 3.0, 4.0, 1.0, 1.0, 3.0], CHAIN_EDGES[:6], 3, training=True)


def test_the_same_split_with_costs_in_microseconds():
    check([4.0, 4.0, 3.0, 4.0, 1.0, 1.0, 3.0], CHAIN_EDGES[:6], 3, training=True, unit=1e-6)


def test_more_stages_than_chunks_is_an_error():
    ch = Chunks([0, 1], [1.0, 1.0], {(0, 1): 1.0})
    with pytest.raises(RhinoError, match="3 stages but the program has only 2 independent piece"):
        solve(ch, 3, False, np.ones((2, 3)), [1.0, 1.0], [1 / 3] * 3, {}, 2)


def test_stage_of_task():
    assert [stage_of_task(t, 3) for t in range(6)] == [0, 1, 2, 2, 1, 0]
