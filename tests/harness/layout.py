"""Pure layout: which slice of a global tensor each device holds, per DESIGN.md.

A dimension of global size G split k ways has local size c = ceil(G/k); shard i holds
elements [i*c, min((i+1)*c, G)) and is padded at its end (a shard may be all padding).
The shard index along a dimension sharded on axes (a, b, ...) (major->minor) is the
mixed-radix number of the device's coordinates on those axes, sub-axes "y":(m)k
included. Device index d (= partition_id) sits at mesh position d, or at the position
of d in the mesh's device_ids (as in Shardy and XLA: `{devices=[2]1,0}` puts tile 0 on
device 1).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rhino_mlir.sharding import Mesh, TensorSharding


def device_position(mesh: Mesh, device: int) -> int:
    """Row-major mesh position of the device whose partition_id is `device`."""
    if mesh.device_ids is None:
        return device
    return list(mesh.device_ids).index(device)


def position_device(mesh: Mesh, position: int) -> int:
    """Device index (partition_id) at a row-major mesh position."""
    return position if mesh.device_ids is None else mesh.device_ids[position]


def shard_index(sharding: TensorSharding, mesh: Mesh, device: int) -> tuple[int, ...]:
    """Shard number along every dimension for one device."""
    pos = device_position(mesh, device)
    out = []
    for axes in sharding.dims:
        i = 0
        for a in axes:
            i = i * a.length(mesh) + a.coord(mesh, pos)
        out.append(i)
    return tuple(out)


def local_shape(shape: Sequence[int], sharding: TensorSharding, mesh: Mesh) -> list[int]:
    return [-(-g // k) for g, k in zip(shape, sharding.shards(mesh))]


def shard_bounds(shape: Sequence[int], sharding: TensorSharding, mesh: Mesh,
                 device: int) -> list[tuple[int, int]]:
    """[start, stop) of the real (unpadded) elements a device holds, per dimension."""
    loc = local_shape(shape, sharding, mesh)
    idx = shard_index(sharding, mesh, device)
    return [(min(i * c, g), min((i + 1) * c, g)) for i, c, g in zip(idx, loc, shape)]


def pad_value(dtype, fill="nan"):
    """Padding content: NaN / largest integer / True proves the program masks it."""
    dt = np.dtype(dtype)
    if fill != "nan":
        return np.asarray(fill).astype(dt)
    if dt == np.bool_:
        return np.True_
    if np.issubdtype(dt, np.integer):
        return np.iinfo(dt).max
    return np.asarray(np.nan).astype(dt)      # covers ml_dtypes bf16 as well


def slice_global(x: np.ndarray, sharding: TensorSharding, mesh: Mesh,
                 fill="nan") -> list[np.ndarray]:
    """Per-device local shards of a global array (ceil-sized, padded at the end)."""
    x = np.asarray(x)
    if sharding.rank != x.ndim:
        raise ValueError(f"sharding has rank {sharding.rank} but array has rank {x.ndim}")
    if sharding.unreduced:
        raise ValueError("an argument cannot be unreduced; give the complete value")
    loc = local_shape(x.shape, sharding, mesh)
    out = []
    for d in range(mesh.size):
        b = shard_bounds(x.shape, sharding, mesh, d)
        shard = np.full(loc, pad_value(x.dtype, fill), dtype=x.dtype)
        src = tuple(slice(s, e) for s, e in b)
        dst = tuple(slice(0, e - s) for s, e in b)
        shard[dst] = x[src]
        out.append(shard)
    return out


def crop(shard: np.ndarray, shape: Sequence[int], sharding: TensorSharding, mesh: Mesh,
         device: int) -> tuple[tuple[slice, ...], np.ndarray]:
    """(global slice, real part of the shard) for one device's local result."""
    loc = local_shape(shape, sharding, mesh)
    if list(shard.shape) != loc:
        raise AssertionError(f"device {device}: local result has shape {list(shard.shape)} "
                             f"but sharding {sharding.to_text()} of {list(shape)} expects {loc}")
    b = shard_bounds(shape, sharding, mesh, device)
    return (tuple(slice(s, e) for s, e in b),
            shard[tuple(slice(0, e - s) for s, e in b)])


def assemble(shards: Sequence[np.ndarray], shape: Sequence[int], sharding: TensorSharding,
             mesh: Mesh, same=None) -> np.ndarray:
    """Global array from per-device shards; padding cropped.

    Devices holding the same shard (replicated axes) must agree: `same(a, b, what)`
    raises if they do not (default: bit-exact, NaN equal to NaN)."""
    if len(shards) != mesh.size:
        raise AssertionError(f"expected {mesh.size} device results, got {len(shards)}")
    same = same or _bit_equal
    dtype = np.asarray(shards[0]).dtype
    out = np.zeros(shape, dtype=dtype)
    first: dict[tuple[int, ...], int] = {}
    for d, s in enumerate(shards):
        where, part = crop(np.asarray(s), shape, sharding, mesh, d)
        key = shard_index(sharding, mesh, d)
        if key in first:
            same(part, out[where], f"device {d} vs device {first[key]} (replicas of shard {key})")
        else:
            first[key] = d
            out[where] = part
    return out


def _bit_equal(a, b, what):
    if not np.array_equal(np.asarray(a), np.asarray(b),
                          equal_nan=np.issubdtype(np.asarray(a).dtype, np.inexact)):
        raise AssertionError(f"{what}: replicas differ")


def gather_groups(sharding: TensorSharding, mesh: Mesh, dim: int) -> list[list[int]]:
    """Device groups that all_gather dimension `dim` back to its full (padded) size.

    Members of a group differ only in their coordinates on that dimension's axes,
    and are listed in shard order, so the gathered concatenation is in global order."""
    groups: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for d in range(mesh.size):
        pos = device_position(mesh, d)
        coords = mesh.coords(pos)
        for a in sharding.dims[dim]:
            post = mesh.axis_size(a.name) // (a.pre * a.length(mesh))
            coords[a.name] -= a.coord(mesh, pos) * post     # drop this (sub-)axis's digit
        key = tuple(coords[n] for n, _ in mesh.axes)
        groups.setdefault(key, []).append((shard_index(sharding, mesh, d)[dim], d))
    return [[d for _, d in sorted(g)] for _, g in sorted(groups.items())]


def replica_groups_text(groups: list[list[int]]) -> str:
    n, k = len(groups), len(groups[0]) if groups else 0
    rows = ", ".join("[" + ", ".join(map(str, g)) + "]" for g in groups)
    return f"dense<[{rows}]> : tensor<{n}x{k}xi64>"


