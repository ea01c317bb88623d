"""Resharding: the collectives that move a value from one sharding to another.

One function, `plan`, decides the steps and their bytes; `emit` writes exactly those
steps into the IR. The planner prices edges with `plan`, `rhino-spmd-partition` emits
with `emit`, so predicted traffic is the program's traffic.

Order: complete partial results (reduce_scatter when the target shards a dimension on
the partial axes, else all_reduce); drop axes (all_to_all when the axis moves to another
dimension, else all_gather); add axes (a partition_id-indexed slice, no traffic).
Uneven dimensions (size not divisible by the shard count) take the safe path: gather the
whole dimension, crop the padding, pad to k*ceil(G/k) and slice.
Bytes are per device on the wire: analysis/cost.py's `ring_bytes`, the formula that
also counts the collectives of an emitted program.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ...analysis.cost import ring_bytes
from ...sharding import AxisRef, Mesh, TensorSharding, axes_size
from ...sharding.device_index import replica_groups

Axes = tuple[AxisRef, ...]


@dataclass(frozen=True)
class Step:
    kind: str                    # all_reduce | reduce_scatter | all_gather | all_to_all | slice
    dim: int = -1                # gather/scatter/slice dim; all_to_all concat dim
    split_dim: int = -1          # all_to_all split dim
    axes: Axes = ()              # collective axes (slice: the axes added)
    combiner: str = ""
    crop: int = 0                # all_gather: crop the dim to this size afterwards
    full: Axes = ()              # slice on an uneven dim: slice from the whole, by these axes
    bytes: float = 0.0


def _local(shape: Sequence[int], dims, mesh: Mesh) -> list[int]:
    return [-(-g // axes_size(d, mesh)) for g, d in zip(shape, dims)]


def _nbytes(shape, elem_bytes) -> int:
    n = elem_bytes
    for s in shape:
        n *= s
    return n


def _even(g: int, axes, mesh: Mesh) -> bool:
    return g % axes_size(axes, mesh) == 0


def _prefix(a: Sequence, b: Sequence) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def plan(src: TensorSharding, dst: TensorSharding, shape: Sequence[int], mesh: Mesh, elem_bytes: int,
         partial: Sequence[AxisRef] = (), combiner: str = "add") -> list[Step]:
    cur = [list(d) for d in src.dims]
    want = [list(d) for d in dst.dims]
    steps: list[Step] = []

    def local_bytes():
        return _nbytes(_local(shape, cur, mesh), elem_bytes)

    # 1. complete partial results
    pend = [a for a in partial]
    if pend:
        rs = None
        for d, (c, w) in enumerate(zip(cur, want)):
            if w[:len(c)] != c:
                continue
            new = []
            for a in w[len(c):]:
                if a in pend:
                    new.append(a)
                else:
                    break
            if new and _even(shape[d], c + new, mesh):
                rs = (d, new)
                break
        rest = [a for a in pend if not rs or a not in rs[1]]
        if rest:
            n = axes_size(rest, mesh)
            steps.append(Step("all_reduce", axes=tuple(rest), combiner=combiner,
                              bytes=ring_bytes("all_reduce", local_bytes(), n)))
        if rs:
            d, new = rs
            n = axes_size(new, mesh)
            steps.append(Step("reduce_scatter", dim=d, axes=tuple(new), combiner=combiner,
                              bytes=ring_bytes("reduce_scatter", local_bytes(), n)))
            cur[d] = cur[d] + new

    # 2. drop axes that the target does not have at this place
    for d in range(len(cur)):
        keep = _prefix(cur[d], want[d])
        excess = cur[d][keep:]
        if not excess:
            continue
        moved = None
        if _even(shape[d], cur[d], mesh):
            for e in range(len(cur)):
                if e != d and want[e] == cur[e] + excess and _even(shape[e], want[e], mesh):
                    moved = e
                    break
        n = axes_size(excess, mesh)
        if moved is not None:
            steps.append(Step("all_to_all", dim=d, split_dim=moved, axes=tuple(excess),
                              bytes=ring_bytes("all_to_all", local_bytes(), n)))
            cur[d] = cur[d][:keep]
            cur[moved] = cur[moved] + excess
        elif _even(shape[d], cur[d], mesh):
            cur[d] = cur[d][:keep]
            steps.append(Step("all_gather", dim=d, axes=tuple(excess),
                              bytes=ring_bytes("all_gather", local_bytes(), n)))
        else:                                  # uneven: gather the whole dim, crop padding
            steps.append(_gather_whole(cur, d, shape, mesh, elem_bytes))

    # 3. add the target's axes with a partition_id-indexed slice (no traffic)
    for d in range(len(cur)):
        if cur[d] == want[d]:
            continue
        assert want[d][:len(cur[d])] == cur[d], (cur, want)
        new = tuple(want[d][len(cur[d]):])
        if _even(shape[d], want[d], mesh):
            steps.append(Step("slice", dim=d, axes=new))
        else:
            if cur[d]:                         # uneven and already split: regather first
                steps.append(_gather_whole(cur, d, shape, mesh, elem_bytes))
            steps.append(Step("slice", dim=d, axes=new, full=tuple(want[d])))
        cur[d] = list(want[d])
    return steps


def _gather_whole(cur: list, d: int, shape, mesh: Mesh, elem_bytes: int) -> Step:
    """All-gather every axis of dim d (k padded shards of ceil(G/k)), then crop to G."""
    axes = tuple(cur[d])
    cur[d] = []
    k = axes_size(axes, mesh)
    loc = _local(shape, cur, mesh)
    loc[d] = -(-shape[d] // k) * k
    return Step("all_gather", dim=d, axes=axes, crop=shape[d],
                bytes=ring_bytes("all_gather", _nbytes(loc, elem_bytes), k))


def total_bytes(steps: Sequence[Step]) -> float:
    return sum(s.bytes for s in steps)


def emit(em, x, steps: Sequence[Step], shape: Sequence[int], mesh: Mesh):
    """Write `steps` (from `plan`) before the emitter's anchor; returns the new local value."""
    from ... import ir as I
    for s in steps:
        if s.kind == "all_reduce":
            x = em.all_reduce(x, replica_groups(mesh, s.axes), s.combiner)
        elif s.kind == "reduce_scatter":
            x = em.reduce_scatter(x, s.dim, replica_groups(mesh, s.axes), s.combiner)
        elif s.kind == "all_gather":
            x = em.all_gather(x, s.dim, replica_groups(mesh, s.axes))
            if s.crop:
                x = em.crop(x, s.dim, s.crop)
        elif s.kind == "all_to_all":
            x = em.all_to_all(x, s.split_dim, s.dim, replica_groups(mesh, s.axes))
        elif s.kind == "slice":
            local = I.shape_of(x.type)
            if s.full:                          # uneven: slice the whole dim by all target axes
                k = axes_size(s.full, mesh)
                c = -(-shape[s.dim] // k)
                x = em.pad_to(x, s.dim, k * c)
                start = em.mul_i32(em.shard_index(mesh, s.full), c)
            else:
                k = axes_size(s.axes, mesh)
                c = local[s.dim] // k
                start = em.mul_i32(em.shard_index(mesh, s.axes), c)
            x = em.dynamic_slice_dim(x, s.dim, start, c)
        else:  # pragma: no cover
            raise AssertionError(s.kind)
    return x
