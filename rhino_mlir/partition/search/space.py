"""Strategy space: the shardings a value (class) may take on a mesh.

Every assignment of each mesh axis to one dimension of the tensor or to none; two axes
on one dimension in either order (major->minor). A dimension only takes axes whose
product divides it, so plans never pay for padding. For 1-D and 2-D meshes of N
devices this is (rank+1)^axes (+ orders) candidates: 10 for a matrix on a 2-D mesh.
Sub-axis (strided) candidates are added for dimensions that merge several factors,
e.g. the heads inside a fused QKV projection, when `strided=True`.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

from ...sharding import AxisRef, Mesh, TensorSharding


def candidates(shape: Sequence[int], mesh: Mesh, strided: bool = False) -> list[TensorSharding]:
    axes = [AxisRef(n) for n, s in mesh.axes if s > 1]
    rank = len(shape)
    out: list[TensorSharding] = []
    seen = set()
    for choice in itertools.product(range(rank + 1), repeat=len(axes)):   # rank = "none"
        per_dim: list[list[AxisRef]] = [[] for _ in range(rank)]
        for a, d in zip(axes, choice):
            if d < rank:
                per_dim[d].append(a)
        orders = [per_dim]
        multi = [d for d in range(rank) if len(per_dim[d]) > 1]
        for d in multi:                                    # the other major->minor order
            alt = [list(x) for x in per_dim]
            alt[d] = list(reversed(alt[d]))
            orders.append(alt)
        for dims in orders:
            if any(shape[d] % math.prod(mesh.axis_size(a.name) for a in dims[d]) for d in range(rank)):
                continue
            key = tuple(tuple(d) for d in dims)
            if key not in seen:
                seen.add(key)
                out.append(TensorSharding(mesh.name, key))
    if strided:
        out += _strided(shape, mesh, seen)
    return out


def _strided(shape, mesh: Mesh, seen) -> list[TensorSharding]:
    """Halves of an axis on two dimensions (e.g. "x":(1)2 on heads, "x":(2)2 on batch)."""
    out = []
    rank = len(shape)
    for name, size in mesh.axes:
        if size < 4 or size & (size - 1):
            continue
        major, minor = AxisRef(name, 1, 2), AxisRef(name, 2, size // 2)
        for d0, d1 in itertools.permutations(range(rank), 2):
            if shape[d0] % 2 or shape[d1] % (size // 2):
                continue
            dims = [() for _ in range(rank)]
            dims[d0] = (major,)
            dims[d1] = (minor,)
            key = tuple(dims)
            if key not in seen:
                seen.add(key)
                out.append(TensorSharding(mesh.name, key))
    return out


def meshes(n: int, devices_per_node: int | None = None) -> list[tuple[tuple[str, int], ...]]:
    """Mesh shapes for n devices: (n,) and every (a, b) with a*b = n, a, b > 1.

    Axis "x" is the major one; with several nodes it is the one that spans them."""
    out = [(("x", n),)]
    for a in range(2, n):
        if n % a == 0 and n // a > 1:
            out.append((("x", a), ("y", n // a)))
    return out
