"""Read XLA's `mhlo.sharding` strings into our Mesh + TensorSharding.

Forms (HloSharding::ToString):
    {replicated}                      {maximal device=3}
    {devices=[2,1]0,1}                explicit tile assignment, row-major over tile dims
    {devices=[2,2]<=[4]}              iota: arange(4).reshape(2, 2)
    {devices=[2,2]<=[2,2]T(1,0)}      arange(4).reshape(2, 2).transpose(1, 0).reshape(2, 2)
    {devices=[2,1,2]<=[4] last_tile_dim_replicate}
    {devices=[2,2]<=[4] last_tile_dims={replicated}}
    {{devices=...}, {replicated}}     a tuple (one per result)
An iota tile assignment becomes a mesh whose axes are the reshape dims R, split where
a tile dim boundary falls inside one ("axis_1_0", "axis_1_1"): device numbering stays
row-major over R, so no device_ids are needed and every tile dim is a list of whole
axes (major->minor). An explicit non-iota list becomes one axis per tile dim plus
`device_ids` (Shardy: mesh position p holds device device_ids[p]).
"""
from __future__ import annotations

import math
import re

from ..errors import ShardingError
from .model import AxisRef, Mesh, TensorSharding

_DEVICES = re.compile(r"devices=\[(?P<dims>[\d,\s]*)\]\s*(?:<=\[(?P<iota>[\d,\s]*)\]"
                      r"(?:T\((?P<perm>[\d,\s]*)\))?|(?P<list>\d[\d,\s]*))")


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.replace(" ", "").split(",") if x]


def _split_tuple(body: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(body[start:i].strip())
            start = i + 1
    out.append(body[start:].strip())
    return [x for x in out if x]


def parse_mhlo_shardings(text: str, ranks: list[int] | None = None,
                         mesh_name: str = "mesh") -> list[tuple[Mesh, TensorSharding]]:
    """A tuple sharding `{{...}, {...}}` (or a single one) -> one pair per element."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ShardingError(f"cannot read mhlo.sharding '{text}': expected '{{...}}'")
    inner = body[1:-1].strip()
    if not inner.startswith("{"):
        return [parse_mhlo_sharding(body, ranks[0] if ranks else None, mesh_name)]
    parts = _split_tuple(inner)
    if ranks is not None and len(ranks) != len(parts):
        raise ShardingError(f"mhlo.sharding tuple has {len(parts)} elements but {len(ranks)} values")
    return [parse_mhlo_sharding(p, ranks[i] if ranks else None, mesh_name)
            for i, p in enumerate(parts)]


def parse_mhlo_sharding(text: str, rank: int | None = None,
                        mesh_name: str = "mesh") -> tuple[Mesh, TensorSharding]:
    """One `mhlo.sharding` string -> (mesh, sharding). `rank` is needed for
    {replicated} and {maximal}; for tiled forms it is checked if given."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    body = re.sub(r"metadata=\{[^{}]*\}", "", body).strip()
    if body.startswith("{"):
        raise ShardingError(f"mhlo.sharding '{text}' is a tuple; use parse_mhlo_shardings")
    if body == "replicated" or body == "":
        return Mesh(mesh_name, ()), TensorSharding.replicated_of(mesh_name, _need(rank, text))
    m = re.fullmatch(r"maximal\s+device\s*=\s*(\d+)", body)
    if m:
        return (Mesh(mesh_name, (), (int(m.group(1)),)),
                TensorSharding.replicated_of(mesh_name, _need(rank, text)))
    m = _DEVICES.search(body)
    if not m:
        raise ShardingError(f"cannot read mhlo.sharding '{text}'; expected replicated, "
                            f"maximal or devices=[...]")
    rest = (body[:m.start()] + body[m.end():]).strip()
    dims = _ints(m["dims"])
    n_rep = 0
    if re.search(r"\blast_tile_dim_replicate\b", rest):
        n_rep = 1
        rest = re.sub(r"\blast_tile_dim_replicate\b", "", rest)
    lt = re.search(r"last_tile_dims\s*=\s*\{([^{}]*)\}", rest)
    if lt:
        kinds = [k.strip() for k in lt.group(1).split(",") if k.strip()]
        bad = [k for k in kinds if k != "replicated"]
        if bad:
            raise ShardingError(f"mhlo.sharding '{text}': last_tile_dims '{bad[0]}' is not "
                                f"supported; only replicated")
        n_rep += len(kinds)
        rest = rest[:lt.start()] + rest[lt.end():]
    if rest.strip(" ,"):
        raise ShardingError(f"mhlo.sharding '{text}': cannot read '{rest.strip(' ,')}'")
    tensor_rank = len(dims) - n_rep
    if rank is not None and rank != tensor_rank:
        raise ShardingError(f"mhlo.sharding '{text}' has rank {tensor_rank} but the value has rank {rank}")
    n = math.prod(dims)
    if m["list"] is not None:
        devs = _ints(m["list"])
        if len(devs) != n:
            raise ShardingError(f"mhlo.sharding '{text}' lists {len(devs)} devices but tiles {n}")
        if devs != list(range(n)):
            return _explicit(dims, devs, tensor_rank, mesh_name)
        reshape, perm = [n], [0]
    else:
        reshape = _ints(m["iota"])
        perm = _ints(m["perm"]) if m["perm"] is not None else list(range(len(reshape)))
        if math.prod(reshape) != n or sorted(perm) != list(range(len(reshape))):
            raise ShardingError(f"mhlo.sharding '{text}': iota {reshape} T{perm} does not "
                                f"match tile dims {dims}")
    return _iota(dims, reshape, perm, tensor_rank, mesh_name, text)


def _need(rank: int | None, text: str) -> int:
    if rank is None:
        raise ShardingError(f"mhlo.sharding '{text}' needs the value's rank")
    return rank


def _explicit(dims, devs, rank, mesh_name):
    axes, per_dim = [], []
    for i, d in enumerate(dims):
        if d > 1:
            axes.append((f"axis_{i}", d))
        per_dim.append((AxisRef(f"axis_{i}"),) if d > 1 else ())
    return Mesh(mesh_name, tuple(axes), tuple(devs)), TensorSharding(mesh_name, tuple(per_dim[:rank]))


def _iota(dims, reshape, perm, rank, mesh_name, text):
    # pieces of the transposed reshape dims, consumed major->minor by the tile dims
    queue = [[p, reshape[p]] for p in perm if reshape[p] > 1]
    count = {p: 0 for p in range(len(reshape))}
    pieces: list[tuple[int, int, int]] = []              # (reshape dim, order, size)
    per_tile: list[list[int]] = []
    for t in dims:
        mine, left = [], t
        while left > 1:
            if not queue:
                raise ShardingError(f"mhlo.sharding '{text}': tile dims do not factor the iota")
            p, size = queue[0]
            take = math.gcd(size, left)
            if take == 1:
                raise ShardingError(f"mhlo.sharding '{text}': tile dim {t} straddles iota dims")
            pieces.append((p, count[p], take))
            count[p] += 1
            mine.append(len(pieces) - 1)
            left //= take
            queue[0][1] //= take
            if queue[0][1] == 1:
                queue.pop(0)
        per_tile.append(mine)
    order = sorted(range(len(pieces)), key=lambda i: pieces[i][:2])   # row-major over R
    name = {i: (f"axis_{pieces[i][0]}" if count[pieces[i][0]] == 1
                else f"axis_{pieces[i][0]}_{pieces[i][1]}") for i in order}
    mesh = Mesh(mesh_name, tuple((name[i], pieces[i][2]) for i in order))
    sharding = TensorSharding(mesh_name, tuple(tuple(AxisRef(name[i]) for i in mine)
                                               for mine in per_tile[:rank]))
    return mesh, sharding
