"""Peak bytes per device of the partitioned program, predicted from the global one.

analysis/memory.py prices the global program's buffers for a sharding; the partitioner adds
buffers the global program does not have, and only its decision code knows them: an operand
whose sharding is not what its op needs gets a resharded copy, live from the first to the
last op in need of it (one copy per value and target); a result produced partial or in
another layout keeps its pre-collective buffer at the op's point. strategy.choose decides
them here exactly as rhino-spmd-partition does. An accumulator carry kept partial
(partition/spmd/carry.py) has its contribution's sharding, not the plan's (a ZeRO-2 gradient
is carried whole): the difference is an extra buffer over the carry's and the loop result's
live intervals.

    memory_report(module, roles=...)           # shardings read from rhino-propagate's IR
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ... import ir as I
from ...analysis import dataflow, rules
from ...analysis.liveness import Liveness, liveness
from ...analysis.local_rules import combiner, restrict
from ...analysis.memory import MemoryReport, Shardings, sharding_lookup, local_nbytes, report, shardings_from_ir
from ...sharding import Mesh, TensorSharding
from ...sharding.factors import tensor_sharding
from . import carry
from .strategy import Layout, Tensor, choose, partial_axes

_NO_RESHARD = dataflow.LOOP_OPS | dataflow.BRANCH_OPS | dataflow.IDENTITY_OPS | dataflow.TERMINATORS


def reshards(lv: Liveness, shardings: Shardings, mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, bytes) of the reshard buffers the partitioner would create."""
    get = sharding_lookup(shardings)
    rep = lambda ref: TensorSharding.replicated_of(mesh.name, len(ref.shape))  # noqa: E731
    spans: dict = {}                          # (operand key, target dims) -> [start, end, bytes]
    out: list = []                            # pre-collective result buffers
    cache: dict = {}
    partial: dict = {}                        # value made partial -> the sharding it has
    updates = _updates(lv)
    index = {k: i for i, k in enumerate(lv.keys)} if updates else {}
    for s in lv.sites:
        if s.op.name in _NO_RESHARD:
            continue
        if len(s.results) == 1 and s.results[0].value in updates:
            row = _kept_carry(lv, index, updates[s.results[0].value], s, partial, get, mesh)
            if row:
                out += row
                continue
        have = [(get(x.key, x.value) or rep(x)).closed() for x in s.operands]
        want = [(get(x.key, x.value) or rep(x)).closed() for x in s.results]
        r = rules.rule_of(s.op)
        if r is None or len(r.operands) != len(s.operands) or len(r.results) != len(s.results):
            need, made = [rep(x) for x in s.operands], want      # runs replicated
        else:
            r2, comb = restrict(s.op, r), combiner(s.op)
            k = (r2, comb, tuple(h.dims for h in have), tuple(t.dims for t in want))
            if k not in cache:
                cache[k] = decide(r2, comb, s, have, want, mesh)
            need, made, parts = cache[k]
            for x, p in zip(s.results, parts):
                if p is not None:
                    partial[x.value] = p
        for x, h, n in zip(s.operands, have, need):
            if n.dims != h.dims:
                span = spans.setdefault((x.key, n.dims), [s.point, s.point, local_nbytes(x.shape, n, mesh, x.ebytes)])
                span[1] = max(span[1], s.point)
        for x, t, m in zip(s.results, want, made):
            if m is None or m.dims != t.dims:
                out.append((s.point, s.point, local_nbytes(x.shape, m or t, mesh, x.ebytes)))
    rows = list(spans.values()) + out
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def decide(r2, comb, s, have: list, want: list, mesh: Mesh) -> tuple[list, list, list]:
    """(sharding each operand is read in, each result's sharding as made or None when made
    partial, each result's partial sharding or None) at site `s`, whose op has the
    restricted rule `r2` and combiner `comb`: what rhino-spmd-partition does there."""
    fsh = choose(r2, comb, want, [Layout(h) for h in have],
                 [Tensor(x.shape, x.ebytes) for x in s.operands],
                 [Tensor(x.shape, x.ebytes) for x in s.results], mesh)
    part = bool(partial_axes(r2, fsh))
    return ([tensor_sharding(mesh.name, d, fsh, mesh) for d in r2.operands],
            [None if part else tensor_sharding(mesh.name, d, fsh, mesh) for d in r2.results],
            [tensor_sharding(mesh.name, d, fsh, mesh) if part else None for d in r2.results])


def _updates(lv: Liveness) -> dict:
    """Accumulator updates (partition/spmd/carry.py) of the loops in `lv`: result -> (loop,
    Accumulator)."""
    out, seen = {}, set()
    for s in lv.sites:
        loop = s.op.parent
        loop = getattr(loop, "operation", loop)
        if loop is None or getattr(loop, "name", "") not in dataflow.LOOP_OPS or id(loop) in seen:
            continue
        seen.add(id(loop))
        for a in carry.accumulators(loop).values():
            out[a.update.results[0]] = (loop, a)
    return out


def _kept_carry(lv: Liveness, index: dict, upd, s, partial: dict, get, mesh: Mesh) -> list:
    """Rows (start, end, bytes) for an accumulator carry kept partial in a sharding coarser
    than the plan's, at its update site `s`; [] when it is completed in the body instead."""
    loop, a = upd
    x = s.op.operands[a.other]
    if a.through is not None and a.through.results[0] == x:
        x = a.through.operands[0]
    have = partial.get(x)
    if have is None:
        return []
    ref = s.results[0]
    planned = (get(ref.key, ref.value) or TensorSharding.replicated_of(mesh.name, len(ref.shape))).closed()
    extra = local_nbytes(ref.shape, have, mesh, ref.ebytes) - local_nbytes(ref.shape, planned, mesh, ref.ebytes)
    rows = [(s.point, s.point, 0)]
    if extra > 0:
        w = next((k[1] for k in (r.key for r in s.operands) if k[0] == "carry"), None)
        for key in (("carry", w, a.index), ("op", w, a.index)):
            i = index.get(key)
            if i is not None:
                rows.append((int(lv.start[i]), int(lv.end[i]), extra))
    return rows


def memory_report(module, shardings: Shardings = None, mesh: Mesh | None = None,
                  roles: Mapping[int, str] | Sequence[str] | None = None,
                  fusion: bool = True, reshard: bool = True) -> MemoryReport:
    """Breakdown per device of `module` (the global program). Without `shardings`, the
    sdy annotations in the IR are used (run rhino-propagate first so every op has one).
    Attaches Shardy's op rules to the module (as rhino-propagate does) if missing."""
    with module.context:
        if reshard and not any("sdy.sharding_rule" in op.attributes
                               for op in I.walk_ops(I.main_func(module))):
            rules.populate(module)
        lv = liveness(module, fusion)
        if shardings is None:
            shardings, ir_mesh = shardings_from_ir(module, lv)
            mesh = mesh or ir_mesh
        extra = reshards(lv, shardings, mesh) if reshard and shardings is not None and mesh is not None else None
        return report(lv, shardings, mesh, roles, extra)

