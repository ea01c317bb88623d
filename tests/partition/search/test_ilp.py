"""partition/search/ilp.py: the O3 integer program against brute-force enumeration of every
assignment of a two-layer MLP's decision groups (16 on 2 devices, 625 on a 2x2 mesh)."""
import functools
import itertools

import pytest

from rhino_mlir import ir as I
from rhino_mlir.analysis import graph, rules
from rhino_mlir.partition.search.coarsen import dim_classes
from rhino_mlir.partition.search.evaluate import Evaluator, Space
from rhino_mlir.partition.search.ilp import solve_ilp
from rhino_mlir.partition.search.solve import Assignment, options
from rhino_mlir.sharding import AxisRef, Mesh

M2 = Mesh("mesh", (("x", 2),))
M22 = Mesh("mesh", (("x", 2), ("y", 2)))


class Timer:
    """1 ns per flop and per byte on the wire, 1 us per collective, times `scale`: these
    plans take ~1e-5 s, so most tests count in microseconds (scale 1e6), away from HiGHS's
    absolute tolerances (the solver scales its objective; one test keeps seconds)."""

    def __init__(self, scale=1e6):
        self.scale = scale

    def compute(self, flops, nbytes, dtype):
        return flops * 1e-9 * self.scale

    def comm(self, step, mesh):
        return (step.bytes * 1e-9 + 1e-6) * self.scale


def mlp(B, D, H):
    return f"""func.func @main(%x: tensor<{B}x{D}xf32>, %w1: tensor<{D}x{H}xf32>, %w2: tensor<{H}x{D}xf32>) -> tensor<{B}x{D}xf32> {{
  %0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<{B}x{D}xf32>, tensor<{D}x{H}xf32>) -> tensor<{B}x{H}xf32>
  %1 = stablehlo.tanh %0 : tensor<{B}x{H}xf32>
  %2 = stablehlo.dot_general %1, %w2, contracting_dims = [1] x [0] : (tensor<{B}x{H}xf32>, tensor<{H}x{D}xf32>) -> tensor<{B}x{D}xf32>
  return %2 : tensor<{B}x{D}xf32>
}}"""


@functools.lru_cache(maxsize=None)
def case(shape, mesh, scale=1e6):
    return Case(shape, mesh, scale)


class Case:
    def __init__(self, shape, mesh, scale):
        ctx = I.new_context()
        self.module = m = I.parse_module(mlp(*shape), ctx)     # alive as long as the graph's values
        with ctx, I.ir.Location.unknown():
            rules.populate(m)
            g = graph.build(m)
        self.mesh = mesh
        self.space = Space(g, dim_classes(g))
        self.ev = Evaluator(self.space, mesh, Timer(scale))
        self.ng = len(self.space.dc.groups)
        assert self.ng == 4                                    # batch, width in, hidden, width out
        # every op touches at most 3 groups: the ILP (max_arity 3) is exact here
        self.all = []
        for choice in itertools.product(options(mesh), repeat=self.ng):
            a = Assignment(self.space, mesh, list(choice))
            self.all.append((self.ev.total(a).time, self.ev.memory(a)["peak"], choice))

    def start(self, choice=None):
        return Assignment(self.space, self.mesh, list(choice or [()] * self.ng))

    def best(self, budget=None, where=lambda c: True):
        ok = [r for r in self.all if (budget is None or r[1] <= budget) and where(r[2])]
        return min(ok, key=lambda r: r[0]) if ok else None

    def time(self, asg):
        return self.ev.total(asg).time


@pytest.mark.parametrize("shape,mesh", [((64, 16, 32), M2), ((64, 16, 32), M22), ((4, 64, 256), M22)])
def test_optimum_equals_brute_force(shape, mesh):
    c = case(shape, mesh)
    out = solve_ilp(c.ev, c.start(), None)
    assert out is not None
    assert c.time(out) == pytest.approx(c.best()[0], rel=1e-6)
    assert c.time(out) < c.time(c.start())                   # replicated is not the optimum


def budget_sweep(c, pick=slice(2, None, 12)):
    """(budget, answer) for every 12th distinct peak (of 29) below the unconstrained optimum's."""
    free = c.best()
    peaks = sorted({r[1] for r in c.all if r[1] < free[1]})
    return free, [(b, solve_ilp(c.ev, c.start(), b)) for b in peaks[pick]]


def test_memory_budget_is_honoured_at_the_optimum_within_it():
    # big weights, small batch: the fastest plan replicates a weight; budgets below its
    # peak force the ILP to shard more
    c = case((4, 64, 256), M22)
    free, sweep = budget_sweep(c)
    answered = [(b, out) for b, out in sweep if out is not None]
    # (None: the linear constraint counts arguments and outputs only; an answer whose
    # liveness peak overflows is refused, never returned)
    assert len(answered) == 3
    for budget, out in answered:
        assert c.ev.memory(out)["peak"] <= budget
        assert c.time(out) == pytest.approx(c.best(budget)[0], rel=1e-3)
        assert c.time(out) > free[0]                           # the budget did bind


def test_costs_in_seconds_reach_the_same_optimum():
    c = case((4, 64, 256), M22, scale=1.0)
    _, sweep = budget_sweep(c, slice(26, 27))                  # the 102912 B budget
    for budget, out in sweep:
        if out is not None:
            assert c.time(out) == pytest.approx(c.best(budget)[0], rel=1e-3), budget


def test_budget_below_every_plan_is_infeasible():
    c = case((4, 64, 256), M22)
    assert solve_ilp(c.ev, c.start(), 1024.0) is None           # the weights alone need more


def test_frozen_group_keeps_its_axes():
    c = case((64, 16, 32), M22)
    free = c.best()
    g = 0                                                       # the biggest group: the batch
    assert c.space.dc.groups[g] == [c.space.dc.of[(0, 0)]]
    pin = (AxisRef("y"),)
    assert free[2][g] != pin
    start = [()] * c.ng
    start[g] = pin
    out = solve_ilp(c.ev, c.start(start), None, frozen=frozenset({g}))
    assert out.choice[g] == pin
    assert c.time(out) == pytest.approx(c.best(where=lambda ch: ch[g] == pin)[0], rel=1e-6)
    assert c.time(out) > free[0]
