"""Peak bytes per device of a sharded program, from the global program and a sharding
of every value, without partitioning it.

analysis/liveness.py walks the program once into buffers with live intervals (fusion
and donation included); here a sharding prices them:
    local bytes(v) = prod(ceil(global dim / shards)) * elem bytes
    live(t)        = sum of local bytes of the buffers live at point t
                     + reshard buffers at t (below)
The reshards are those rhino-spmd-partition emits (partition/strategy.py decides them
for it and for the planner): an operand whose sharding is not what its op needs gets
a resharded copy, live from the first to the last op in need of it (the partitioner
reuses one copy per value and target); a result produced partial or in another layout
keeps its pre-collective buffer at the op's point.

Breakdown in the terms of XLA's `memory_analysis()`: arguments (split by role when the
caller names roles), outputs, aliased (donated arguments reused as outputs),
temporaries (the peak of live buffers that are neither arguments, results nor
constants; reshards included), constants apart. `peak` is the liveness peak;
`xla_comparable` = arguments + outputs - aliased + temporaries is how XLA's buffer
assignment adds up (every result its own buffer for the whole run), checked against
XLA in benchmarks/bench_memory.py.

    lv = liveness(module)                      # once: the IR walk
    peak, point = lv.peak(local_bytes(lv, shardings, mesh))   # per candidate: numpy
    memory_report(module, roles=...)           # shardings read from rhino-propagate's IR
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import ir as I
from ..sharding import Mesh, TensorSharding
from . import dataflow, rules
from .liveness import ARG, CONST, OUT, TEMP, Liveness, liveness

Shardings = Mapping | Callable | None      # {ir.Value or key: TensorSharding} or f(key, value)


@dataclass(frozen=True)
class MemoryReport:
    """Bytes per device (see the module docstring)."""
    arguments: int
    by_role: dict                 # role -> bytes ("parameters", "optimizer_state", "batch", ...)
    outputs: int
    aliased: int
    temporaries: int
    temp_point: int
    xla_temporaries: int          # temporaries outside result buffers (outside_outputs)
    reshards: int                 # reshard buffers live at the temporaries' peak
    constants: int
    peak: int
    peak_point: int
    peak_op: str
    peak_op_index: int | None     # walk index of that op in @main (plan.json's value naming)

    @property
    def xla_comparable(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.xla_temporaries

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["xla_comparable"] = self.xla_comparable
        return d


def _getter(shardings: Shardings) -> Callable:
    """f(key, value) -> TensorSharding | None from a dict keyed by key tuple or ir.Value."""
    if shardings is None:
        return lambda k, v: None
    if callable(shardings):
        return shardings
    if any(isinstance(k, tuple) for k in shardings):
        return lambda k, v: shardings.get(k)
    return lambda k, v: shardings.get(v) if v is not None else None


def _nbytes(shape, sh: TensorSharding | None, mesh: Mesh, ebytes: int) -> int:
    if sh is None or not sh.dims:
        return prod(shape) * ebytes
    return prod(sh.local_shape(shape, mesh)) * ebytes


def local_bytes(lv: Liveness, shardings: Shardings, mesh: Mesh | None) -> np.ndarray:
    """Per-buffer local bytes of `lv` under `shardings` (None: replicated)."""
    if shardings is None or mesh is None:
        return lv.global_bytes
    get = _getter(shardings)
    cache: dict = {}                          # (shape, dims, bytes): layers repeat
    out = np.empty(len(lv), dtype=np.int64)
    for i, (key, v, shape) in enumerate(zip(lv.keys, lv.values, lv.shapes)):
        sh, eb = get(key, v), int(lv.elem_bytes[i])
        k = (shape, sh.dims if sh is not None else (), eb)
        if k not in cache:
            cache[k] = _nbytes(shape, sh, mesh, eb)
        out[i] = cache[k]
    return out


def peak_bytes(lv: Liveness, local_bytes_fn: Callable[[int], int] | np.ndarray) -> int:
    """Peak live bytes of a walked program for per-buffer local bytes (callable or array)."""
    return lv.peak(local_bytes_fn)[0]


# ----------------------------------------------------------------------------- reshards

_NO_RESHARD = dataflow.LOOP_OPS | dataflow.BRANCH_OPS | dataflow.IDENTITY_OPS | dataflow.TERMINATORS


def reshards(lv: Liveness, shardings: Shardings, mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, bytes) of the reshard buffers the partitioner would create."""
    from ..partition.strategy import Layout, Tensor, choose, partial_axes   # decides for both
    from ..partition.factor_sharding import tensor_sharding
    from .local_rules import combiner, restrict

    get = _getter(shardings)
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
                span = spans.setdefault((x.key, n.dims), [s.point, s.point, _nbytes(x.shape, n, mesh, x.ebytes)])
                span[1] = max(span[1], s.point)
        for x, t, m in zip(s.results, want, made):
            if m is None or m.dims != t.dims:
                out.append((s.point, s.point, _nbytes(x.shape, m or t, mesh, x.ebytes)))
    rows = list(spans.values()) + out
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


# ----------------------------------------------------------------------------- XLA's way

def outside_outputs(lv: Liveness, w: np.ndarray, extra=None) -> int:
    """Peak of the temporaries that do not fit in result buffers not yet written.

    XLA's buffer assignment places a temporary inside a result's buffer when it dies
    before that result is written (a training step's gradients live in the buffers of
    the new parameters), so its `temp_size` counts only the rest. Largest first, best
    fit: each result buffer holds temporaries whose live sum never exceeds its size."""
    n = len(lv.points)
    temps = [(int(w[i]), int(lv.start[i]), int(lv.end[i])) for i in np.nonzero(lv.kind == TEMP)[0] if w[i]]
    if extra is not None:
        temps += [(int(b), int(a), int(e)) for a, e, b in zip(*extra) if b]
    aliased = {lv.results[r] for r in lv.aliases}
    slots = sorted((int(w[i]), int(lv.start[i])) for i in set(lv.results) - aliased
                   if lv.kind[i] == OUT and w[i])
    used = [None] * len(slots)               # live bytes per point inside each slot
    rest = np.zeros(n + 1, dtype=np.int64)
    for size, a, b in sorted(temps, key=lambda t: -t[0]):
        for k, (cap, written) in enumerate(slots):
            if cap < size or b >= written:
                continue
            if used[k] is None:
                used[k] = np.zeros(written, dtype=np.int64)
            if used[k][a:b + 1].max() + size <= cap:
                used[k][a:b + 1] += size
                break
        else:
            rest[a] += size
            rest[b + 1] -= size
    return int(np.cumsum(rest[:n]).max(initial=0))


# ----------------------------------------------------------------------------- report

def report(lv: Liveness, shardings: Shardings = None, mesh: Mesh | None = None,
           roles: Mapping[int, str] | Sequence[str] | None = None, reshard: bool = True) -> MemoryReport:
    """The breakdown for one sharding of a walked program."""
    w = local_bytes(lv, shardings, mesh)
    extra = reshards(lv, shardings, mesh) if reshard and shardings is not None and mesh is not None else None
    total = lv.profile(w, extra=extra)
    temps = lv.profile(w, [TEMP], extra)
    t, tt = int(np.argmax(total)), int(np.argmax(temps))
    moved = lv.profile(np.zeros(len(lv), dtype=np.int64), extra=extra)[tt] if extra is not None else 0
    by_role: dict = {}
    for i in range(lv.num_args):
        role = "arguments"
        if roles is not None:
            role = (roles.get(i) if isinstance(roles, Mapping) else roles[i] if i < len(roles) else None) \
                or "arguments"
        by_role[role] = by_role.get(role, 0) + int(w[i])
    return MemoryReport(
        arguments=int(w[:lv.num_args].sum()), by_role=by_role,
        outputs=int(sum(w[v] for v in lv.results)),
        aliased=int(sum(w[lv.results[r]] for r in lv.aliases)),
        temporaries=int(temps[tt]), temp_point=tt, reshards=int(moved),
        xla_temporaries=outside_outputs(lv, w, extra),
        constants=int(w[lv.kind == CONST].sum()),
        peak=int(total[t]), peak_point=t, peak_op=lv.points[t],
        peak_op_index=lv.point_ops[t] if t < len(lv.point_ops) else None)


def shardings_from_ir(module, lv: Liveness) -> tuple[dict, Mesh | None]:
    """({key: TensorSharding}, mesh) from the annotations rhino-propagate writes."""
    from ..partition import annotations as A
    with module.context:
        mesh = A.module_mesh(module, "memory")
        f = I.main_func(module)
        out: dict = {}
        for i in range(lv.num_args):
            s = A.arg_sharding(f, i)
            if s is not None:
                out[("arg", i)] = s
        for k, op in enumerate(I.walk_ops(f)):
            shs = A.op_shardings(op)
            for r, s in enumerate(shs or ()):
                out[("op", k, r)] = s
                if op.name in dataflow.LOOP_OPS:   # the carry has the loop result's sharding
                    out[("carry", k, r)] = s
    return out, mesh


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
        return report(lv, shardings, mesh, roles, reshard)


def roles_from_paths(arg_paths: Sequence[str], signature: Sequence[str]) -> list[str]:
    """Role of each @main argument from its `rhino.arg_path` ("[1]['m']...") and the zoo
    signature ("params", "opt_state", "batch"): the leading index picks the entry."""
    names = {"params": "parameters", "opt_state": "optimizer_state", "batch": "batch",
             "inputs": "batch"}
    out = []
    for p in arg_paths:
        k = int(p[1:p.index("]")]) if p.startswith("[") and "]" in p else -1
        out.append(names.get(signature[k], signature[k]) if 0 <= k < len(signature) else "arguments")
    return out


__all__ = ["Liveness", "MemoryReport", "liveness", "local_bytes", "reshards", "report",
           "memory_report", "peak_bytes", "shardings_from_ir", "roles_from_paths",
           "TEMP", "ARG", "OUT", "CONST"]
