"""ZeRO baselines (Rajbhandari et al.): data parallel with optimizer state sharded.

Optimizer state is what the decision groups cannot split from its parameter (they are
tied by the element-wise update), so these plans are built per value on top of the
data-parallel plan:
  zero1  optimizer-state arguments and the update chain they feed (new moments, the
         step, the new parameters) sharded over the data axes; gradients are completed
         whole (all_reduce) and sliced; new parameters are all-gathered for the output;
  zero2  also the gradients feeding the update (completed by reduce_scatter);
  zero3  also the parameters (gathered where the forward and backward use them) and
         the new parameters stay sharded.
A value is sharded on its first dimension that the data axes divide.
"""
from __future__ import annotations

from ...analysis.graph import Graph
from ...sharding import AxisRef, Mesh, TensorSharding

LEVELS = {"zero1": 1, "zero2": 2, "zero3": 3}


def _shard(g: Graph, v: int, mesh: Mesh, axes: tuple) -> TensorSharding | None:
    k = 1
    for a in axes:
        k *= mesh.axis_size(a.name)
    for d, size in enumerate(g.shapes[v]):
        if size % k == 0:
            dims = [()] * len(g.shapes[v])
            dims[d] = axes
            return TensorSharding(mesh.name, tuple(dims))
    return None


def _closure(g: Graph, start: list[int]) -> set[int]:
    """Values computed (transitively) from `start`: the optimizer's update chain."""
    seen, todo = set(start), list(start)
    while todo:
        v = todo.pop()
        for n in g.users[v]:
            for r in g.nodes[n].results:
                if r not in seen and g.shapes[r]:
                    seen.add(r)
                    todo.append(r)
    return seen


def plan(g: Graph, roles, mesh: Mesh, base: list[TensorSharding], level: str) -> tuple[list, list] | None:
    """(value shardings, result shardings) of a ZeRO level over data parallel `base`."""
    lvl = LEVELS[level]
    opt = [a for a in roles.stateful if a not in roles.params]
    if not opt:
        return None                                     # not a training step with state
    axes = tuple(AxisRef(n) for n, s in mesh.axes if s > 1)
    sh = list(base)
    chain = _closure(g, opt)
    param_types = {(tuple(g.shapes[p]), g.dtypes[p]) for p in roles.params}
    targets = set(chain) | set(opt)
    if lvl >= 2:                                        # gradients: operands of the chain
        for v in list(chain):
            p = g.producer[v]
            if p >= 0:
                targets |= {u for u in g.nodes[p].operands
                            if u not in chain and g.producer[u] >= 0 and g.shapes[u] and
                            (tuple(g.shapes[u]), g.dtypes[u]) in param_types}
    if lvl >= 3:
        targets |= set(roles.params)
    for v in targets:
        s = _shard(g, v, mesh, axes)
        if s is not None:
            sh[v] = s
    params = set(roles.params)
    results = []
    for v in g.outputs:                                 # a new parameter is computed from its old one
        p = g.producer[v]
        new_param = v in chain and p >= 0 and any(u in params for u in g.nodes[p].operands)
        results.append(base[v] if new_param and lvl < 3 else sh[v])
    return sh, results
