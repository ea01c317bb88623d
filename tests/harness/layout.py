"""Reference layout: which part of a global tensor each device holds, per DESIGN.md.

Written apart from the product's arithmetic (rhino_mlir/launch/rank/layout.py, which
forms a shard number per device as a mixed-radix number of its mesh coordinates, and
AxisRef.coord): here the whole placement is built at once with numpy, so the two can
check each other (tests/launch/rank/test_layout.py compares them on random meshes).

Devices. The mesh is an array of device indices (partition_ids) of the mesh's shape:
position p holds p, or device_ids[p] (as in Shardy and XLA: `{devices=[2]1,0}` puts
tile 0 on device 1).

Tiles. Every mesh axis is cut into the factors its sub-axes name ("y"=8 used as
"y":(2)2 becomes 2 x 2 x 2, major -> minor, so "y":(2)2 is the middle factor), by a
row-major reshape of the device array. Moving the factors of tensor dim 0's axes first
(in the order the sharding lists them, major -> minor), then dim 1's, ..., then the
unused ones, and merging them per dim gives an array `tiles[i0, i1, ..., r]`: the
devices that hold tile (i0, i1, ...), one per replica r.

Index sets. A dimension of global size G split k ways is padded at its end to k*c
elements, c = ceil(G/k), and cut into k rows of c: tile i holds row i, real where the
index is < G, padding after (a row may be all padding).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from rhino_mlir.sharding import Mesh, TensorSharding


# ----------------------------------------------------------------------------- devices

def _device_grid(mesh: Mesh) -> np.ndarray:
    """Device index at every mesh coordinate: shape = the mesh's axis sizes."""
    ids = np.arange(mesh.size) if mesh.device_ids is None else np.asarray(mesh.device_ids)
    return ids.reshape([s for _, s in mesh.axes])


def device_position(mesh: Mesh, device: int) -> int:
    """Row-major mesh position of the device whose partition_id is `device`."""
    where = np.flatnonzero(_device_grid(mesh).ravel() == device)
    if where.size != 1:
        raise ValueError(f"device {device} is not in mesh @{mesh.name} {mesh.to_text()}")
    return int(where[0])


def position_device(mesh: Mesh, position: int) -> int:
    """Device index (partition_id) at a row-major mesh position."""
    return position if mesh.device_ids is None else mesh.device_ids[position]


# ----------------------------------------------------------------------------- tiles

def _factor_bounds(mesh: Mesh, sharding: TensorSharding) -> dict[str, list[int]]:
    """Per axis, the sizes of its major parts where some sub-axis starts or ends."""
    cuts = {n: {1, s} for n, s in mesh.axes}
    for axes in sharding.dims:
        for a in axes:
            if a.size is not None:
                cuts[a.name] |= {a.pre, a.pre * a.size}
    out = {}
    for n, c in cuts.items():
        b = sorted(c)
        if any(hi % lo for lo, hi in zip(b, b[1:])):
            raise ValueError(f"sub-axes of '{n}' do not nest: major parts {b}")
        out[n] = b
    return out


@lru_cache(maxsize=512)
def _tiles(sharding: TensorSharding, mesh: Mesh) -> np.ndarray:
    """tiles[i0, ..., i_{r-1}, replica] = device holding tile (i0, ...).

    E.g. mesh ["x"=2, "y"=4], dims [{"y":(2)2, "x"}]: the device grid (2, 4) is factored
    as (x 2, y-major 2, y-minor 2); dim 0 takes (y-minor, x), the rest (y-major) is the
    replica: tiles has shape (4, 2)."""
    bounds = _factor_bounds(mesh, sharding)
    shape, slot = [], {}             # slot[(axis, major part)] = index in the factored grid
    for n, _ in mesh.axes:
        b = bounds[n]
        for lo, hi in zip(b, b[1:]):
            slot[(n, lo)] = len(shape)
            shape.append(hi // lo)
    grid = _device_grid(mesh).reshape(shape)
    order, ks = [], []
    for axes in sharding.dims:
        k = 1
        for a in axes:
            b = bounds[a.name]
            lo, hi = (a.pre, a.pre * a.size) if a.size is not None else (1, b[-1])
            for f in b[b.index(lo):b.index(hi)]:
                order.append(slot[(a.name, f)])
                k *= shape[slot[(a.name, f)]]
        ks.append(k)
    rest = [i for i in range(len(shape)) if i not in order]
    return np.transpose(grid, order + rest).reshape(ks + [-1])


def _rows(g: int, k: int) -> np.ndarray:
    """(k, ceil(g/k)): row i = the indices tile i holds of a size-g dim padded to k rows
    of equal length; indices >= g are padding."""
    c = (g + k - 1) // k
    return np.arange(k * c).reshape(k, c)


def shard_index(sharding: TensorSharding, mesh: Mesh, device: int) -> tuple[int, ...]:
    """Shard number along every dimension for one device."""
    where = np.argwhere(_tiles(sharding, mesh) == device)
    if len(where) != 1:
        raise ValueError(f"device {device} is not in mesh @{mesh.name} {mesh.to_text()}")
    return tuple(int(i) for i in where[0][:-1])


def local_shape(shape: Sequence[int], sharding: TensorSharding, mesh: Mesh) -> list[int]:
    ks = _tiles(sharding, mesh).shape[:-1]
    return [_rows(g, k).shape[1] for g, k in zip(shape, ks)]


def shard_bounds(shape: Sequence[int], sharding: TensorSharding, mesh: Mesh,
                 device: int) -> list[tuple[int, int]]:
    """[start, stop) of the real (unpadded) elements a device holds, per dimension
    (an all-padding shard holds the empty range at the end, (G, G))."""
    ks = _tiles(sharding, mesh).shape[:-1]
    out = []
    for g, k, i in zip(shape, ks, shard_index(sharding, mesh, device)):
        real = _rows(g, k)[i]
        real = real[real < g]
        out.append((int(real[0]), int(real[-1]) + 1) if real.size else (g, g))
    return out


# ----------------------------------------------------------------------------- arrays

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
    tiles = _tiles(sharding, mesh)
    rows = [_rows(g, k) for g, k in zip(x.shape, tiles.shape[:-1])]
    # the global array padded at the end of every dim to k*c, then cut into tiles
    padded = np.full([r.size for r in rows], pad_value(x.dtype, fill), dtype=x.dtype)
    padded[tuple(slice(0, g) for g in x.shape)] = x
    out: list = [None] * mesh.size
    for tile in np.ndindex(*tiles.shape[:-1]):
        idx = [r[i] for r, i in zip(rows, tile)]
        block = padded[np.ix_(*idx)] if idx else padded
        for d in tiles[tile]:
            out[int(d)] = np.array(block)              # a copy per device
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


# ----------------------------------------------------------------------------- collectives

def gather_groups(sharding: TensorSharding, mesh: Mesh, dim: int) -> list[list[int]]:
    """Device groups that all_gather dimension `dim` back to its full (padded) size.

    Members of a group hold the same tiles of every other dim and replica, and are
    listed in shard order, so the gathered concatenation is in global order; groups are
    in mesh order of their first member."""
    tiles = _tiles(sharding, mesh)
    groups = np.moveaxis(tiles, dim, -1).reshape(-1, tiles.shape[dim]).tolist()
    return sorted(groups, key=lambda g: device_position(mesh, g[0]))


def replica_groups_text(groups: list[list[int]]) -> str:
    n, k = len(groups), len(groups[0]) if groups else 0
    rows = ", ".join("[" + ", ".join(map(str, g)) + "]" for g in groups)
    return f"dense<[{rows}]> : tensor<{n}x{k}xi64>"


def covered(shape: Sequence[int], sharding: TensorSharding, mesh: Mesh) -> np.ndarray:
    """How many devices hold each global element (the replica count everywhere when the
    tiles partition the tensor)."""
    n = np.zeros(shape, dtype=np.int64)
    for d in _tiles(sharding, mesh).ravel():
        n[tuple(slice(s, e) for s, e in shard_bounds(shape, sharding, mesh, int(d)))] += 1
    return n
