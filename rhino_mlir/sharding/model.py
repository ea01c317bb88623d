"""Sharding model: meshes, axis references (with sub-axes) and tensor shardings.

Mirrors Shardy's notation so that what we read is what we write:
    sdy.mesh @mesh = <["x"=2, "y"=4]>
    #sdy.sharding<@mesh, [{"x"}, {"y":(1)2, ?}], replicated={"z"}, unreduced={"w"}>
A sub-axis "y":(m)k is the k-sized slice of axis y after a major part of size m
(y's coordinate splits major->minor as [m][k][rest]).
Device index = row-major position over the mesh axes (or the position in device_ids).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import ShardingError


@dataclass(frozen=True)
class Mesh:
    name: str
    axes: tuple[tuple[str, int], ...]          # (name, size), major -> minor
    device_ids: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        return math.prod(s for _, s in self.axes)

    def axis_size(self, name: str) -> int:
        for n, s in self.axes:
            if n == name:
                return s
        raise ShardingError(f"unknown axis '{name}' in mesh @{self.name} (axes: "
                            f"{', '.join(n for n, _ in self.axes) or 'none'})")

    def has_axis(self, name: str) -> bool:
        return any(n == name for n, _ in self.axes)

    def axis_index(self, name: str) -> int:
        return [n for n, _ in self.axes].index(name)

    def coords(self, device: int) -> dict[str, int]:
        """Mesh coordinates of the device at logical position `device` (row-major)."""
        out, rem = {}, device
        for n, s in reversed(self.axes):
            out[n] = rem % s
            rem //= s
        return out

    def to_text(self) -> str:
        ax = ", ".join(f'"{n}"={s}' for n, s in self.axes)
        ids = "" if self.device_ids is None else f", device_ids=[{', '.join(map(str, self.device_ids))}]"
        return f"<[{ax}]{ids}>"


@dataclass(frozen=True, order=True)
class AxisRef:
    name: str
    pre: int = 1                 # sub-axis pre-size (1 for a full axis)
    size: int | None = None      # sub-axis size; None = the whole axis

    def full_size(self, mesh: Mesh) -> int:
        return mesh.axis_size(self.name)

    def length(self, mesh: Mesh) -> int:
        return self.size if self.size is not None else mesh.axis_size(self.name)

    def is_sub(self) -> bool:
        return self.size is not None

    def coord(self, mesh: Mesh, device: int) -> int:
        c = mesh.coords(device)[self.name]
        if self.size is None:
            return c
        post = mesh.axis_size(self.name) // (self.pre * self.size)
        return (c // post) % self.size

    def overlaps(self, other: "AxisRef", mesh: Mesh) -> bool:
        if self.name != other.name:
            return False
        a0, a1 = self._span(mesh)
        b0, b1 = other._span(mesh)
        return a0 < b1 and b0 < a1

    def _span(self, mesh: Mesh) -> tuple[float, float]:
        # position in log-space of the major->minor decomposition of the axis
        full = mesh.axis_size(self.name)
        if self.size is None:
            return 0.0, math.log2(full)
        return math.log2(self.pre), math.log2(self.pre * self.size)

    def to_text(self) -> str:
        if self.size is None:
            return f'"{self.name}"'
        return f'"{self.name}":({self.pre}){self.size}'


def axes_size(axes: Sequence[AxisRef], mesh: Mesh) -> int:
    return math.prod(a.length(mesh) for a in axes)


@dataclass(frozen=True)
class TensorSharding:
    mesh: str
    dims: tuple[tuple[AxisRef, ...], ...]
    open_dims: tuple[bool, ...] = ()          # dims written with '?'
    replicated: tuple[AxisRef, ...] = ()
    unreduced: tuple[AxisRef, ...] = ()

    @staticmethod
    def replicated_of(mesh: str, rank: int) -> "TensorSharding":
        return TensorSharding(mesh, tuple(() for _ in range(rank)))

    @property
    def rank(self) -> int:
        return len(self.dims)

    def is_replicated(self) -> bool:
        return all(not d for d in self.dims) and not self.unreduced

    def used_axes(self) -> list[AxisRef]:
        return [a for d in self.dims for a in d] + list(self.unreduced)

    def shards(self, mesh: Mesh) -> tuple[int, ...]:
        return tuple(axes_size(d, mesh) for d in self.dims)

    def local_shape(self, shape: Sequence[int], mesh: Mesh) -> list[int]:
        return [-(-g // k) for g, k in zip(shape, self.shards(mesh))]

    def with_dims(self, dims) -> "TensorSharding":
        return TensorSharding(self.mesh, tuple(tuple(d) for d in dims), (), self.replicated, self.unreduced)

    def closed(self) -> "TensorSharding":
        return TensorSharding(self.mesh, self.dims, (), self.replicated, self.unreduced)

    def to_text(self) -> str:
        parts = []
        for i, d in enumerate(self.dims):
            items = [a.to_text() for a in d]
            if i < len(self.open_dims) and self.open_dims[i]:
                items.append("?")
            parts.append("{" + ", ".join(items) + "}")
        s = f"@{self.mesh}, [{', '.join(parts)}]"
        if self.replicated:
            s += ", replicated={" + ", ".join(a.to_text() for a in self.replicated) + "}"
        if self.unreduced:
            s += ", unreduced={" + ", ".join(a.to_text() for a in self.unreduced) + "}"
        return f"#sdy.sharding<{s}>"

    def validate(self, mesh: Mesh, shape: Sequence[int], what: str) -> None:
        if len(shape) != self.rank:
            raise ShardingError(f"{what}: sharding has rank {self.rank} but tensor has rank {len(shape)}")
        seen: list[AxisRef] = []
        for a in self.used_axes() + list(self.replicated):
            if not mesh.has_axis(a.name):
                raise ShardingError(f"{what}: unknown axis '{a.name}' in mesh @{mesh.name}")
            full = mesh.axis_size(a.name)
            if a.size is not None and (a.pre * a.size > full or full % (a.pre * a.size)):
                raise ShardingError(f"{what}: sub-axis {a.to_text()} does not divide axis '{a.name}' of size {full}")
            for b in seen:
                if a.overlaps(b, mesh):
                    raise ShardingError(f"{what}: axis {a.to_text()} is used twice")
            seen.append(a)


# ----------------------------------------------------------------------------- text parsing

_MESH = re.compile(r'sdy\.mesh\s+@(?P<name>[\w.$-]+)\s*=\s*'
                   r'(?P<body><\s*\[[^\]]*\](?:\s*,\s*device_ids\s*=\s*\[[^\]]*\])?\s*>)')
_MESH_BODY = re.compile(r'<\s*\[(?P<axes>[^\]]*)\](?:\s*,\s*device_ids\s*=\s*\[(?P<ids>[^\]]*)\])?\s*>')
_AXIS = re.compile(r'"(?P<n>[^"]+)"\s*=\s*(?P<s>\d+)')
_AXREF = re.compile(r'"(?P<n>[^"]+)"(?::\((?P<pre>\d+)\)(?P<size>\d+))?')


def parse_mesh_body(name: str, body: str) -> Mesh:
    m = _MESH_BODY.search(body)
    if not m:
        if re.search(r'<\s*\[\s*\]\s*,?\s*device_ids\s*=\s*\[\s*(\d+)\s*\]\s*>', body) or "maximal" in body:
            return Mesh(name, ())
        raise ShardingError(f"cannot read mesh @{name}: {body}")
    axes = tuple((a["n"], int(a["s"])) for a in _AXIS.finditer(m["axes"]))
    ids = None
    if m["ids"] is not None and m["ids"].strip():
        ids = tuple(int(x) for x in m["ids"].split(","))
    return Mesh(name, axes, ids)


def meshes_in(module_text: str) -> dict[str, Mesh]:
    return {m["name"]: parse_mesh_body(m["name"], m["body"]) for m in _MESH.finditer(module_text)}


def _axis_list(text: str) -> tuple[AxisRef, ...]:
    out = []
    for m in _AXREF.finditer(text):
        if m["pre"] is None:
            out.append(AxisRef(m["n"]))
        else:
            out.append(AxisRef(m["n"], int(m["pre"]), int(m["size"])))
    return tuple(out)


_SHARD = re.compile(r'^\s*(?:#sdy\.sharding<)?\s*@(?P<mesh>[\w.$-]+)\s*,\s*\[(?P<dims>.*?)\]'
                    r'(?P<rest>.*?)>?\s*$', re.S)


def parse_sharding(text: str) -> TensorSharding:
    """Parse '#sdy.sharding<@mesh, [{"x"}, {}]...>' (or the bare '<@mesh, ...>' body)."""
    t = text.strip()
    if t.startswith("<") and not t.startswith("<@"):
        t = t[1:]
    if t.startswith("<@"):
        t = t[1:]
    m = _SHARD.match(t)
    if not m:
        raise ShardingError(f"cannot read sharding {text}")
    dims, opens = [], []
    for d in re.findall(r"\{([^{}]*)\}", m["dims"]):
        dims.append(_axis_list(d))
        opens.append("?" in d)
    rest = m["rest"]
    rep = re.search(r"replicated\s*=\s*\{([^{}]*)\}", rest)
    unr = re.search(r"unreduced\s*=\s*\{([^{}]*)\}", rest)
    return TensorSharding(m["mesh"], tuple(dims), tuple(opens),
                          _axis_list(rep.group(1)) if rep else (),
                          _axis_list(unr.group(1)) if unr else ())


def parse_sharding_per_value(text: str) -> list[TensorSharding]:
    """'#sdy.sharding_per_value<[<@mesh, [...]>, <@mesh, [...]>]>'."""
    body = text.strip()
    body = body[body.index("[") + 1: body.rindex("]")]
    out, depth, start = [], 0, None
    for i, ch in enumerate(body):
        if ch == "<":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ">":
            depth -= 1
            if depth == 0:
                out.append(parse_sharding(body[start:i + 1]))
    return out


def per_value_text(shardings: Sequence[TensorSharding]) -> str:
    inner = ", ".join(s.to_text()[len("#sdy.sharding"):] for s in shardings)
    return f"#sdy.sharding_per_value<[{inner}]>"
