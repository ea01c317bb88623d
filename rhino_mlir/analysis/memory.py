"""Peak bytes per device of a sharded program, from the global program and a sharding
of every value, without partitioning it.

analysis/liveness.py walks the program once into buffers with live intervals (fusion
and donation included); here a sharding prices them:
    local bytes(v) = prod(ceil(global dim / shards)) * elem bytes
    live(t)        = sum of local bytes of the buffers live at point t
                     + reshard buffers at t (below)
The reshard buffers are the partitioner's decision, so partition/spmd/memory.py finds them
and passes them in (`report(..., extra=...)`); `memory_report` there is the whole model.

Breakdown in the terms of XLA's `memory_analysis()`: arguments (split by role when the
caller names roles), outputs, aliased (donated arguments reused as outputs),
temporaries (the peak of live buffers that are neither arguments, results nor
constants; reshards included), constants apart. `peak` is the liveness peak;
`xla_comparable` = arguments + outputs - aliased + temporaries is how XLA's buffer
assignment adds up (every result its own buffer for the whole run), checked against
XLA in benchmarks/bench_memory.py.

A result whose @main sharding (`("result", r)`) differs from its value's is resharded at
the return (rhino-spmd-partition emits the collective there): the output buffer has the
result's local size and is written at the last point, while the value as computed stays a
temporary until then (an updated parameter computed sharded and returned replicated costs
the replicated output plus its shard).

    lv = liveness(module)                      # once: the IR walk
    peak, point = lv.peak(local_bytes(lv, shardings, mesh))   # per candidate: numpy
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import ir as I
from ..sharding import Mesh, TensorSharding
from . import dataflow
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


def sharding_lookup(shardings: Shardings) -> Callable:
    """f(key, value) -> TensorSharding | None from a dict keyed by key tuple or ir.Value."""
    if shardings is None:
        return lambda k, v: None
    if callable(shardings):
        return shardings
    if any(isinstance(k, tuple) for k in shardings):
        return lambda k, v: shardings.get(k)
    return lambda k, v: shardings.get(v) if v is not None else None


def local_nbytes(shape, sh: TensorSharding | None, mesh: Mesh, ebytes: int) -> int:
    if sh is None or not sh.dims:
        return prod(shape) * ebytes
    return prod(sh.local_shape(shape, mesh)) * ebytes


def local_bytes(lv: Liveness, shardings: Shardings, mesh: Mesh | None) -> np.ndarray:
    """Per-buffer local bytes of `lv` under `shardings` (None: replicated)."""
    if shardings is None or mesh is None:
        return lv.global_bytes
    get = sharding_lookup(shardings)
    cache: dict = {}                          # (shape, dims, bytes): layers repeat
    out = np.empty(len(lv), dtype=np.int64)
    for i, (key, v, shape) in enumerate(zip(lv.keys, lv.values, lv.shapes)):
        sh, eb = get(key, v), int(lv.elem_bytes[i])
        k = (shape, sh.dims if sh is not None else (), eb)
        if k not in cache:
            cache[k] = local_nbytes(shape, sh, mesh, eb)
        out[i] = cache[k]
    return out


def peak_bytes(lv: Liveness, local_bytes_fn: Callable[[int], int] | np.ndarray) -> int:
    """Peak live bytes of a walked program for per-buffer local bytes (callable or array)."""
    return lv.peak(local_bytes_fn)[0]


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
           roles: Mapping[int, str] | Sequence[str] | None = None, extra=None) -> MemoryReport:
    """The breakdown for one sharding of a walked program; `extra`: (starts, ends, bytes) of
    buffers the program does not name (the partitioner's reshards: partition/spmd/memory.py)."""
    w = local_bytes(lv, shardings, mesh)
    lv, w, extra = _resharded_results(lv, w, shardings, mesh, extra)
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


def _resharded_results(lv: Liveness, w: np.ndarray, shardings: Shardings, mesh: Mesh | None, extra):
    """(lv, w, extra) with every result resharded at the return priced as the module
    docstring says: its buffer written at the last point with the result's size, the value
    as computed an extra temporary from its definition to the end."""
    if shardings is None or mesh is None:
        return lv, w, extra
    get = sharding_lookup(shardings)
    last = len(lv.points) - 1
    rows, w2, start = [], None, None
    for r, i in enumerate(lv.results):
        sh = get(("result", r), None)
        if sh is None or r in lv.aliases or lv.kind[i] != OUT or lv.start[i] == last:
            continue
        b = local_nbytes(lv.shapes[i], sh, mesh, int(lv.elem_bytes[i]))
        if b == w[i]:
            continue
        if w2 is None:
            w2, start = w.copy(), lv.start.copy()
        rows.append((int(lv.start[i]), last, int(w[i])))
        w2[i], start[i] = b, last
    if not rows:
        return lv, w, extra
    a = np.array(rows, dtype=np.int64)
    add = (a[:, 0], a[:, 1], a[:, 2])
    extra = add if extra is None else tuple(np.concatenate([x, y]) for x, y in zip(extra, add))
    return replace(lv, start=start), w2, extra


def shardings_from_ir(module, lv: Liveness) -> tuple[dict, Mesh | None]:
    """({key: TensorSharding}, mesh) from the annotations rhino-propagate writes."""
    from ..sharding import annotations as A
    with module.context:
        mesh = A.module_mesh(module, "memory")
        f = I.main_func(module)
        out: dict = {}
        for i in range(lv.num_args):
            s = A.arg_sharding(f, i)
            if s is not None:
                out[("arg", i)] = s
        for r in range(len(lv.results)):
            s = A.result_sharding(f, r)
            if s is not None:
                out[("result", r)] = s
        for k, op in enumerate(I.walk_ops(f)):
            shs = A.op_shardings(op)
            for r, s in enumerate(shs or ()):
                out[("op", k, r)] = s
                if op.name in dataflow.LOOP_OPS:   # the carry has the loop result's sharding
                    out[("carry", k, r)] = s
    return out, mesh


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


__all__ = ["Liveness", "MemoryReport", "liveness", "local_bytes", "report", "peak_bytes", "shardings_from_ir", "roles_from_paths",
           "TEMP", "ARG", "OUT", "CONST"]
