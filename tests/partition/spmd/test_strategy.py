"""partition/spmd/strategy.py: the factor sharding an op runs with and the reshards it implies,
on single ops whose cheapest layout is worked out by hand (ring bytes of analysis/cost.py)."""
import pytest

from rhino_mlir.analysis.cost import ring_bytes
from rhino_mlir.analysis.rules import parse_rule
from rhino_mlir.partition.spmd.strategy import Layout, Tensor, choose, parallelism, partial_axes, steps
from rhino_mlir.sharding import AxisRef, Mesh, parse_sharding

M = Mesh("m", (("x", 2), ("y", 4)))
X, Y = AxisRef("x"), AxisRef("y")
I_, J, K = 0, 1, 2                                       # factor indices of DOT, in name order
DOT = parse_rule("([i, k], [k, j])->([i, j]) {i=8, j=16, k=32} reduction={k}")


def sh(text):
    return parse_sharding(f"<@m, {text}>")


def run(rule, comb, targets, layouts, operands, results):
    targets = [sh(t) for t in targets]
    layouts = [lay if isinstance(lay, Layout) else Layout(sh(lay)) for lay in layouts]
    operands = [Tensor(s, 4) for s in operands]
    results = [Tensor(s, 4) for s in results]
    fsh = choose(rule, comb, targets, layouts, operands, results, M)
    return fsh, steps(rule, comb, fsh, targets, layouts, operands, results, M)


def kinds(st):
    return [[s.kind for s in ss] for ss in st]


def test_sharded_contraction_runs_as_partial_sums_then_all_reduce():
    # x (8, 32) and w (32, 16) both split on k over x: multiply the local halves, add them up
    fsh, st = run(DOT, "add", ["[{}, {}]"], ['[{}, {"x"}]', '[{"x"}, {}]'], [(8, 32), (32, 16)], [(8, 16)])
    assert fsh == [(), (), (X,)]
    assert partial_axes(DOT, fsh) == (X,)
    assert kinds(st) == [[], [], ["all_reduce"]]          # no operand moves
    assert st[2][0].axes == (X,) and st[2][0].combiner == "add"
    assert st[2][0].bytes == ring_bytes("all_reduce", 8 * 16 * 4, 2)
    assert parallelism(fsh, M) == 2


def test_partial_result_into_a_row_sharded_target_is_a_reduce_scatter():
    # results first would move x (all_to_all, 256 B) and gather w (1024 B); partial sums
    # then reduce_scatter move 256 B: the reduction keeps the axis
    fsh, st = run(DOT, "add", ['[{"x"}, {}]'], ['[{}, {"x"}]', '[{"x"}, {}]'], [(8, 32), (32, 16)], [(8, 16)])
    assert fsh == [(), (), (X,)]
    assert kinds(st) == [[], [], ["reduce_scatter"]]
    assert st[2][0].dim == 0 and st[2][0].bytes == ring_bytes("reduce_scatter", 8 * 16 * 4, 2)


@pytest.mark.parametrize("k,expect", [(16, I_), (32, I_), (64, K)])
def test_results_first_or_reductions_first_by_bytes_ties_to_results(k, expect):
    # target rows on x; x (8, k) split on k, w replicated.
    #   results first: i on x, x moves by all_to_all: (1/2) * 8*(k/2)*4 = 8k bytes
    #   reductions first: k on x, w sliced (free), reduce_scatter of (8,16): 256 bytes
    # equal at k = 32, where results first wins
    rule = parse_rule(f"([i, k], [k, j])->([i, j]) {{i=8, j=16, k={k}}} reduction={{k}}")
    fsh, st = run(rule, "add", ['[{"x"}, {}]'], ['[{}, {"x"}]', "[{}, {}]"], [(8, k), (k, 16)], [(8, 16)])
    other = K if expect == I_ else I_
    assert fsh[expect] == (X,) and fsh[other] == ()
    if expect == I_:
        assert kinds(st) == [["all_to_all"], [], []] and st[0][0].bytes == 8 * k
    else:
        assert kinds(st) == [[], ["slice"], ["reduce_scatter"]] and st[2][0].bytes == 256


def test_no_combiner_means_no_partial_results():
    # a reduction without an add/mul/min/max combiner: operands are gathered instead
    fsh, st = run(DOT, None, ["[{}, {}]"], ['[{}, {"x"}]', '[{"x"}, {}]'], [(8, 32), (32, 16)], [(8, 16)])
    assert fsh == [(), (), ()]
    assert kinds(st) == [["all_gather"], ["all_gather"], []]
    assert partial_axes(DOT, fsh) == ()


def test_need_replication_factor_is_never_sharded():
    sort = parse_rule("([i, j])->([i, j]) {i=8, j=16} need_replication={j}")
    fsh, st = run(sort, None, ['[{"y"}, {"x"}]'], ['[{}, {"x"}]'], [(8, 16)], [(8, 16)])
    assert fsh == [(Y,), ()]                                # rows follow the target, j stays whole
    assert kinds(st) == [["all_gather", "slice"], ["slice"]]
    assert st[0][0].dim == 1 and st[0][1].dim == 0 and st[1][0].dim == 1


def test_partial_operand_is_completed_before_use():
    add = parse_rule("([i, j], [i, j])->([i, j]) {i=8, j=16}")
    rep = sh("[{}, {}]")
    fsh, st = run(add, None, ['[{}, {"y"}]'], [Layout(rep, partial=(Y,)), '[{}, {"y"}]'], [(8, 16)] * 2, [(8, 16)])
    assert fsh == [(), (Y,)]
    assert kinds(st) == [["reduce_scatter"], [], []]       # sum and split in one collective
    assert st[0][0].axes == (Y,) and st[0][0].dim == 1


def test_splitting_reshape_keeps_shards_local_through_sub_axes():
    # (8,) on y=4 -> (2, 4): the major 2 rows take "y":(1)2, the 4 columns "y":(2)2
    rs = parse_rule("([ij])->([i, j]) {i=2, j=4}")
    fsh, st = run(rs, None, ['[{"y":(1)2}, {"y":(2)2}]'], ['[{"y"}]'], [(8,)], [(2, 4)])
    assert fsh == [(AxisRef("y", 1, 2),), (AxisRef("y", 2, 2),)]
    assert kinds(st) == [[], []]
    assert parallelism(fsh, M) == 4


def test_parallelism_counts_distinct_axes():
    assert parallelism([(X,), (Y,), ()], M) == 8
    assert parallelism([(X,), (), (X,)], M) == 2
    assert parallelism([(), ()], M) == 1
