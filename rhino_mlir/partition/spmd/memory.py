"""Peak bytes per device of the partitioned program, predicted from the global one.

analysis/memory.py prices the global program's buffers for a sharding; the partitioner adds
buffers the global program does not have, and only its decision code knows them: an operand
whose sharding is not what its op needs gets a resharded copy, live from the first to the
last op in need of it (one copy per value and target); a result produced partial or in
another layout keeps its pre-collective buffer at the op's point. strategy.choose decides
them here exactly as rhino-spmd-partition does.

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
from .strategy import Layout, Tensor, choose, partial_axes

_NO_RESHARD = dataflow.LOOP_OPS | dataflow.BRANCH_OPS | dataflow.IDENTITY_OPS | dataflow.TERMINATORS


def reshards(lv: Liveness, shardings: Shardings, mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, bytes) of the reshard buffers the partitioner would create."""
    get = sharding_lookup(shardings)
    rep = lambda ref: TensorSharding.replicated_of(mesh.name, len(ref.shape))  # noqa: E731
    spans: dict = {}                          # (operand key, target dims) -> [start, end, bytes]
    out: list = []                            # pre-collective result buffers
    cache: dict = {}
    for s in lv.sites:
        if s.op.name in _NO_RESHARD:
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
                fsh = choose(r2, comb, want, [Layout(h) for h in have],
                             [Tensor(x.shape, x.ebytes) for x in s.operands],
                             [Tensor(x.shape, x.ebytes) for x in s.results], mesh)
                partial = bool(partial_axes(r2, fsh))
                cache[k] = ([tensor_sharding(mesh.name, d, fsh, mesh) for d in r2.operands],
                            [None if partial else tensor_sharding(mesh.name, d, fsh, mesh)
                             for d in r2.results])
            need, made = cache[k]
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

