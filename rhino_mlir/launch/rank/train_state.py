"""Where a training rank's values live, and how they come in and go out.

A `Place` is one device's view of one global value: its spec (global shape, dtype,
sharding), the mesh of its stage and the device index. From it follow the region of the
global array the device holds (DESIGN.md's padded shards), whether the device is the
one that writes that shard (the lowest device holding it, so replicas write once) and
the chunk shape a checkpoint uses. Carried values are read once (from `--init` or a
checkpoint) into local shards and never leave the rank between steps; data arrays are
memory-mapped `.npy` files read one step and one shard at a time. Used by the
single-stage loop (train_rank.py) and the pipelined one (train_pipeline.py).
Pure numpy + mpi4py + zarr: rank processes import this.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
import numpy as np

from ...errors import RhinoError
from . import checkpoint as ckpt
from .layout import ValueSpec, bounds, check_input, np_dtype, shard_index


@dataclass(frozen=True)
class Place:
    spec: ValueSpec
    meshes: dict            # mesh name -> Mesh (the stage's)
    n: int                  # devices of the stage
    device: int             # this device's index in the stage

    def _parsed(self):
        return self.spec.parsed(self.meshes, self.n)

    # cached: the loops ask every step (a frozen dataclass still has a __dict__)
    @cached_property
    def local_shape(self) -> list[int]:
        s, mesh = self._parsed()
        return s.local_shape(self.spec.shape, mesh)

    @cached_property
    def region(self) -> list[tuple[int, int]]:
        s, mesh = self._parsed()
        return bounds(self.spec.shape, s, mesh, self.device)

    @cached_property
    def writer(self) -> bool:
        """The lowest device holding this shard index (replicas are written once)."""
        s, mesh = self._parsed()
        mine = shard_index(s, mesh, self.device)
        return all(shard_index(s, mesh, d) != mine for d in range(self.device))

    def same_layout(self, other: "Place") -> bool:
        a, ma = self._parsed()
        b, mb = other._parsed()
        return (self.device == other.device and self.n == other.n and ma.axes == mb.axes
                and ma.device_ids == mb.device_ids and a.dims == b.dims)

    def take(self, x, shift: dict[int, int] | None = None) -> np.ndarray:
        """This device's padded shard of global `x` (an array, a memmap view, anything
        numpy-indexable); `shift` offsets a dimension (a micro-batch inside a batch)."""
        reg = self.region
        loc = self.local_shape
        shift = shift or {}
        src = tuple(slice(lo + shift.get(d, 0), hi + shift.get(d, 0)) for d, (lo, hi) in enumerate(reg))
        if [hi - lo for lo, hi in reg] == loc:
            return np.array(x[src], order="C")      # np.array keeps 0-d arrays 0-d
        out = np.zeros(loc, dtype=np_dtype(self.spec.dtype))
        out[tuple(slice(0, hi - lo) for lo, hi in reg)] = x[src]
        return out


def initial(src: dict, specs, wanted: dict) -> dict:
    """key -> this device's shard of carried argument j at the start, for `wanted`: key ->
    (j, Place); from `--init` (global arrays: each rank slices its own; the npz is opened
    once) or a checkpoint (each rank reads the region it needs)."""
    if src["kind"] == "checkpoint":
        return from_checkpoint(src["path"], wanted)
    with np.load(src["path"], allow_pickle=False) as z:
        cache: dict[int, np.ndarray] = {}
        out = {}
        for key, (j, place) in wanted.items():
            if j not in cache:
                cache[j] = check_input(f"arg{j}", z[f"arg{j}"], specs[j])
            out[key] = place.take(cache[j])
        return out


def from_checkpoint(path: str, wanted: dict) -> dict:
    """key -> this device's shard of checkpoint array "argJ", for `wanted`: key -> (j, Place);
    one batch of reads."""
    keys = list(wanted)
    got = ckpt.read_regions(path, [(f"arg{wanted[k][0]}", wanted[k][1].spec.dtype, wanted[k][1].region,
                                    wanted[k][1].local_shape) for k in keys])
    return dict(zip(keys, got))


class DataReader:
    """`DIR/argJ.npy` memory-mapped: step k reads index k mod length, this shard only."""

    def __init__(self, path: str, spec: ValueSpec):
        self.mm = np.load(path, mmap_mode="r", allow_pickle=False)
        self.length = int(self.mm.shape[0])
        self.bf16 = spec.dtype == "bfloat16"

    def row(self, k: int):
        x = self.mm[k % self.length]
        return x.view(np_dtype("bfloat16")) if self.bf16 else x

    def __call__(self, k: int, place: Place, shift: dict[int, int] | None = None) -> np.ndarray:
        return place.take(self.row(k), shift)


def reshard(local: np.ndarray, src: Place, dst: Place, comm) -> np.ndarray:
    """A value computed in `src`'s layout, for `dst`'s: all-gather over the stage and slice.

    The fallback for a carried result whose sharding differs from its argument's; the
    usual case (same layout) never gets here."""
    from .layout import assemble_value
    shards = comm.allgather(local)
    whole = assemble_value(shards, src.spec, src.meshes, src.n)
    return dst.take(whole)


# ----------------------------------------------------------------------------- checkpoints

def save(world, rank: int, held: dict[str, tuple[np.ndarray, Place]], arrays: dict[str, dict],
         root: str, step: int, tag: str, manifest: dict) -> dict | None:
    """Every rank writes the shards it is the writer of; rank 0 commits. Collective.

    `held`: checkpoint array name -> (local shard, its place) on this rank; `arrays`: name
    -> {shape, dtype, chunks}, the same on every rank (each rank creates a share of them).
    Returns a record with the path, bytes and seconds (every rank gets it)."""
    t0 = time.perf_counter()
    tmp = ckpt.begin(root, step, tag) if rank == 0 else None
    tmp = Path(world.bcast(str(tmp) if tmp is not None else None, root=0))
    names = sorted(arrays)
    ckpt.create_arrays(tmp, {k: arrays[k] for k in names[rank::world.Get_size()]})
    world.Barrier()
    files = ckpt.write_shards(tmp, [(name, place.region, x) for name, (x, place) in sorted(held.items())
                                    if place.writer])
    got = world.gather(files, root=0)
    rec = None
    if rank == 0:
        allf = {k: v for d in got for k, v in d.items()}
        meta = {k: {"shape": list(a["shape"]), "dtype": a["dtype"], "chunks": list(a["chunks"])}
                for k, a in arrays.items()}
        path = ckpt.commit(tmp, root, step, dict(manifest, arrays=meta), allf)
        m = ckpt.read_manifest(path)
        rec = {"path": str(path), "bytes": m["bytes"], "seconds": time.perf_counter() - t0}
    return world.bcast(rec, root=0)


def gather_globals(world, rank: int, held: dict[str, tuple[np.ndarray, Place]],
                   specs: dict[str, ValueSpec]) -> dict[str, np.ndarray] | None:
    """Whole arrays on rank 0 from the writers' shards (`--outputs`, end of a run only)."""
    mine = {name: (place.region, x) for name, (x, place) in held.items() if place.writer}
    got = world.gather(mine, root=0)
    if rank != 0:
        return None
    out = {name: np.zeros(s.shape, np_dtype(s.dtype)) for name, s in specs.items()}
    filled = {name: 0 for name in specs}
    for d in got:
        for name, (reg, x) in d.items():
            out[name][tuple(slice(lo, hi) for lo, hi in reg)] = x[tuple(slice(0, hi - lo) for lo, hi in reg)]
            filled[name] += math.prod(hi - lo for lo, hi in reg)
    for name, s in specs.items():
        if filled[name] != math.prod(s.shape):
            raise RhinoError(f"{name}: ranks returned {filled[name]} of {math.prod(s.shape)} elements")
    return out


def carried_arrays(places: dict[str, Place]) -> dict[str, dict]:
    """Checkpoint array specs: chunk = the writer's local shard shape."""
    return {name: {"shape": list(p.spec.shape), "dtype": p.spec.dtype, "chunks": p.local_shape}
            for name, p in places.items()}


def scalar(x) -> float | int | bool:
    """A 0-d result as a JSON number."""
    v = np.asarray(x).reshape(()).item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)          # JSON has no NaN/inf; keep the spelling
    return v
