"""Search over dimension-class groups: O2 coordinate descent (O3 adds partition/search/ilp.py).

A decision gives each group of dimension classes (coarsen.py) an ordered tuple of mesh
axes; every value's sharding follows (`Assignment.key_sharding`): each dim takes its
class's axes, skipping axes an earlier dim of the value already took and axes that do
not divide it. O2 starts from seeds (data parallel, tensor parallel, both) and moves
one group at a time to its best option, pricing only the op types that touch the group
(evaluate.py), while the plan fits the memory budget. Deterministic: groups and
options are visited in a fixed order.
"""
from __future__ import annotations

import itertools

from ...sharding import AxisRef, Mesh, TensorSharding
from .evaluate import Evaluator


def options(mesh: Mesh, strided: bool = False) -> list[tuple[AxisRef, ...]]:
    """Ordered axis tuples a group may take. `strided` adds the two halves of each axis
    (sub-axes "y":(1)k and "y":(k)s/k, k its smallest factor): Rhino's strided splits,
    e.g. 12 heads on 4 of 8 devices with the other factor of 2 on the batch."""
    axes = [AxisRef(n) for n, s in mesh.axes if s > 1]
    parts = list(axes)
    if strided:
        for n, s in mesh.axes:
            k = next((d for d in range(2, s) if s % d == 0), None)
            if k is not None:
                parts += [AxisRef(n, 1, k), AxisRef(n, k, s // k)]
    out = [()]
    for k in range(1, len(axes) + 1):
        for p in itertools.permutations(parts, k):
            if all(not a.overlaps(b, mesh) for i, a in enumerate(p) for b in p[i + 1:]) and \
                    (k == 1 or any(a.size is None for a in p) or len(p) == 1):
                out.append(tuple(p))
    return out


class _Choice(list):
    """Group -> axes; setting an entry forgets the shardings derived from it."""

    def __init__(self, items, owner: "Assignment"):
        super().__init__(items)
        self.owner = owner

    def __setitem__(self, i, v) -> None:
        if self[i] != v:
            super().__setitem__(i, v)
            cur = self.owner.cur
            for k in self.owner.space.group_keys[i]:
                cur.pop(k, None)


class Assignment:
    """Group -> axes, and the shardings that follow, per value key (evaluate.Space)."""

    def __init__(self, space, mesh: Mesh, choice: list):
        self.space, self.mesh = space, mesh
        self.cur: dict = {}                      # key -> sharding under the current choice
        self.choice = _Choice(choice, self)
        self.memo: dict = {}

    def key_sharding(self, k: int) -> TensorSharding:
        s = self.cur.get(k)
        if s is not None:
            return s
        shape, _, groups = self.space.keys[k]
        ck = (k, tuple(self.choice[gi] if gi >= 0 else () for gi in groups))
        s = self.memo.get(ck)
        if s is None:
            s = self.memo[ck] = self._derive(shape, ck[1])
        self.cur[k] = s
        return s

    def _derive(self, shape, per_dim) -> TensorSharding:
        dims, used = [], []
        for size, axes_in in zip(shape, per_dim):
            axes, k = [], 1
            for a in axes_in:
                n = a.length(self.mesh)
                if any(a.overlaps(u, self.mesh) for u in used) or size % (k * n):
                    break
                axes.append(a)
                used.append(a)
                k *= n
            dims.append(tuple(axes))
        return TensorSharding(self.mesh.name, tuple(dims))

    def set(self, group: int, axes) -> None:
        self.choice[group] = axes

    def copy(self) -> "Assignment":
        a = Assignment(self.space, self.mesh, self.choice)
        a.memo, a.cur = self.memo, dict(self.cur)
        return a

    def folded_shardings(self) -> list[TensorSharding]:
        """One sharding per value of the search's graph (folded or not)."""
        return [self.key_sharding(k) for k in self.space.vkey]

    def value_shardings(self) -> list[TensorSharding]:
        """One sharding per value of the program (graph.build's numbering)."""
        sh = self.folded_shardings()
        fold = self.space.g.fold
        return sh if fold is None else fold.expand(sh)


def descend(ev: Evaluator, asg: Assignment, budget: float | None, max_sweeps: int = 4,
            frozen: frozenset = frozenset(), strided: bool = False) -> Assignment:
    """Move one group at a time (not the frozen ones) to its best option until no move improves."""
    opts = options(asg.mesh, strided)
    mem = ev.memory(asg)["peak"]
    for _ in range(max_sweeps):
        improved = False
        for gi in range(len(asg.choice)):
            if not ev.space.scope[gi] or gi in frozen:
                continue
            cur = asg.choice[gi]
            base = ev.scope_time(gi, asg)
            ranked = []
            for o in opts:
                if o == cur:
                    continue
                asg.set(gi, o)
                ranked.append((ev.scope_time(gi, asg) - base, opts.index(o), o))
            asg.set(gi, cur)
            over = budget is not None and mem > budget
            for delta, _, o in sorted(ranked):
                if delta >= -1e-9 * max(1e-9, abs(base)) and not over:
                    break
                asg.set(gi, o)
                m = ev.memory(asg)["peak"]
                fits = budget is None or m <= budget
                if (fits and delta < 0) or (over and m < mem and delta <= 0) or (over and fits):
                    mem, improved = m, True
                    break
                asg.set(gi, cur)
        if not improved:
            break
    return asg


def shrink_memory(ev: Evaluator, asg: Assignment, budget: float, width: int = 24,
                  frozen: frozenset = frozenset()) -> Assignment:
    """Greedy: while over budget, take the move with the best memory saved per time added."""
    opts = options(asg.mesh)
    mem = ev.memory(asg)["peak"]
    for _ in range(4 * len(asg.choice)):
        if mem <= budget:
            break
        best = None
        for gi in range(min(width, len(asg.choice))):        # the biggest groups
            if gi in frozen:
                continue
            cur = asg.choice[gi]
            base = ev.scope_time(gi, asg)
            for o in opts:
                if o == cur or len(o) < len(cur):
                    continue
                asg.set(gi, o)
                m = ev.memory(asg)["peak"]
                dt = ev.scope_time(gi, asg) - base
                if m < mem:
                    score = dt / (mem - m)
                    if best is None or score < best[0]:
                        best = (score, gi, o, m)
            asg.set(gi, cur)
        if best is None:
            break
        _, gi, o, mem = best
        asg.set(gi, o)
    return asg
