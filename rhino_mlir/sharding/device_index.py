"""Device positions, shard indices and replica groups: pure Python over a Mesh.

A device's position is its row-major index over the mesh axes; with `device_ids`
the device id at position p is device_ids[p] (and partition_id returns that id).
The shard index of a dimension sharded on axes [a0, a1, ...] (major->minor) is
sum(coord(a_i) * prod(len(a_j) for j > i)).
"""
from __future__ import annotations

from typing import Sequence

from .model import AxisRef, Mesh, axes_size


def shard_index(mesh: Mesh, axes: Sequence[AxisRef], pos: int) -> int:
    idx = 0
    for a in axes:
        idx = idx * a.length(mesh) + a.coord(mesh, pos)
    return idx


def device_id(mesh: Mesh, pos: int) -> int:
    return mesh.device_ids[pos] if mesh.device_ids else pos


def index_table(mesh: Mesh, axes: Sequence[AxisRef]) -> list[int]:
    """table[device id] = shard index over `axes` (what partition_id indexes)."""
    n = mesh.size
    table = [0] * (max(mesh.device_ids) + 1 if mesh.device_ids else n)
    for p in range(n):
        table[device_id(mesh, p)] = shard_index(mesh, axes, p)
    return table


def _signature(mesh: Mesh, axes: Sequence[AxisRef], pos: int) -> tuple[int, ...]:
    """Coordinates of `pos` with the digits that belong to `axes` zeroed."""
    coords = mesh.coords(pos)
    sig = []
    for name, full in mesh.axes:
        c = coords[name]
        for a in axes:
            if a.name != name:
                continue
            if a.size is None:
                c = 0
            else:
                post = full // (a.pre * a.size)
                c -= ((c // post) % a.size) * post
        sig.append(c)
    return tuple(sig)


def replica_groups(mesh: Mesh, axes: Sequence[AxisRef]) -> list[list[int]]:
    """Groups of device ids that differ only along `axes`, each ordered by shard index."""
    groups: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for p in range(mesh.size):
        groups.setdefault(_signature(mesh, axes, p), []).append((shard_index(mesh, axes, p), device_id(mesh, p)))
    out = []
    for key in sorted(groups):
        members = sorted(groups[key])
        assert [i for i, _ in members] == list(range(axes_size(axes, mesh))), (axes, members)
        out.append([d for _, d in members])
    return sorted(out)
