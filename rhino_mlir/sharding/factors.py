"""Between tensor shardings and factor shardings, through an op's factor rule.

A factor sharding gives each factor of a rule its mesh axes (major->minor). Reading a
tensor's sharding onto factors splits an axis into sub-axes where a compound
dimension needs it: a dim `[ij]` with i=2, j=4 sharded on x=4 gives i -> "x":(1)2 and
j -> "x":(2)2 (Rhino's strided partitioning). Writing back concatenates the factors'
axes per dimension; that is only a valid layout when every factor before the last
sharded one is fully sharded, which `legalize` enforces by dropping minor axes.
"""
from __future__ import annotations

import math
from typing import Sequence

from .model import AxisRef, Mesh, TensorSharding, axes_size

Axes = tuple[AxisRef, ...]


def split_axis(a: AxisRef, major: int, mesh: Mesh) -> tuple[AxisRef, AxisRef]:
    """Split `a` into a major part of size `major` and the minor rest."""
    length = a.length(mesh)
    return (AxisRef(a.name, a.pre, major), AxisRef(a.name, a.pre * major, length // major))


def normalize(axes: Sequence[AxisRef], mesh: Mesh) -> Axes:
    """Merge adjacent contiguous sub-axes of one axis; a sub-axis spanning its axis is the axis."""
    out: list[AxisRef] = []
    for a in axes:
        if out and out[-1].name == a.name and out[-1].size is not None and a.size is not None \
                and out[-1].pre * out[-1].size == a.pre:
            a = AxisRef(a.name, out[-1].pre, out[-1].size * a.size)
            out.pop()
        if a.size is not None and a.pre == 1 and a.size == mesh.axis_size(a.name):
            a = AxisRef(a.name)
        out.append(a)
    return tuple(out)


def project(dims: Sequence[Sequence[int]], sizes: Sequence[int], sh: TensorSharding,
            mesh: Mesh) -> tuple[dict[int, Axes], bool]:
    """Factor -> axes read off one tensor's sharding; False if some axes do not fit."""
    out: dict[int, Axes] = {}
    exact = True
    for fs, axes in zip(dims, sh.dims):
        axes = list(axes)
        if not axes:
            continue
        if len(fs) == 1:                      # one factor: any split, padding allowed
            out[fs[0]] = tuple(axes)
            continue
        k, cap, cur = 0, (sizes[fs[0]] if fs else 1), []
        while axes:
            if k >= len(fs):
                exact = False
                break
            if cap == 1:
                if cur:
                    out[fs[k]] = tuple(cur)
                k, cur = k + 1, []
                cap = sizes[fs[k]] if k < len(fs) else 1
                continue
            a = axes[0]
            n = a.length(mesh)
            if cap % n == 0:
                cur.append(a)
                axes.pop(0)
                cap //= n
            elif n % cap == 0:                # the axis spans this factor and the next
                major, minor = split_axis(a, cap, mesh)
                cur.append(major)
                axes[0] = minor
                cap = 1
            else:
                exact = False
                break
        if cur and k < len(fs):
            out[fs[k]] = tuple(cur)
    return out, exact


def dims_of(dims: Sequence[Sequence[int]], fsh: Sequence[Axes], mesh: Mesh) -> tuple[Axes, ...]:
    return tuple(normalize([a for f in fs for a in fsh[f]], mesh) for fs in dims)


def tensor_sharding(mesh_name: str, dims: Sequence[Sequence[int]], fsh: Sequence[Axes],
                    mesh: Mesh) -> TensorSharding:
    return TensorSharding(mesh_name, dims_of(dims, fsh, mesh))


def legalize(tensors: Sequence[Sequence[Sequence[int]]], sizes: Sequence[int], fsh: list[Axes],
             mesh: Mesh) -> list[Axes]:
    """Drop axes that no tensor layout can express (minor factor sharded after a partial one)."""
    fsh = list(fsh)
    changed = True
    while changed:
        changed = False
        for dims in tensors:
            for fs in dims:
                if len(fs) < 2:
                    continue
                partial_seen = False
                for f in fs:
                    if partial_seen and fsh[f]:
                        fsh[f] = ()
                        changed = True
                    if axes_size(fsh[f], mesh) != sizes[f]:
                        partial_seen = partial_seen or bool(fsh[f]) or sizes[f] > 1
                    # a compound dim must split evenly
                    if fsh[f] and sizes[f] % axes_size(fsh[f], mesh):
                        fsh[f] = ()
                        changed = True
    return fsh


def dedupe(fsh: list[Axes], order: Sequence[int], mesh: Mesh) -> list[Axes]:
    """Keep each mesh axis (or overlapping sub-axis) in one factor only, first in `order`."""
    used: list[AxisRef] = []
    out = list(fsh)
    for f in order:
        keep = []
        for a in out[f]:
            if any(a.overlaps(u, mesh) for u in used):
                break                          # later axes would change the layout: stop
            keep.append(a)
        used.extend(keep)
        out[f] = tuple(keep)
    return out


def shard_count(fsh: Sequence[Axes], factors: Sequence[int], mesh: Mesh) -> int:
    return math.prod(axes_size(fsh[f], mesh) for f in factors)
