"""Corpus families that index: gather, scatter (add, overwrite, max), dynamic_slice,
dynamic_update_slice, sort (one operand, and key/value with ties, stable).

Index inputs are mostly in bounds; some draws put one index out of bounds on purpose
(gather clamps it, scatter skips the update: both defined by the spec), because a
partitioned program must not turn those into reads or writes of another shard.
Overwrite scatters get unique indices (with duplicates the result is unspecified).
"""
from __future__ import annotations

import numpy as np

from .hlo import Prog, dim, family, i64s, pick, shape
from .ops_elementwise import compare_attrs


def _indices(rng, count: int, bound: int, oob: bool, unique: bool = False) -> np.ndarray:
    if unique:
        idx = rng.permutation(bound)[:count]
    else:
        idx = rng.integers(0, max(bound, 1), count)
    if oob and count:
        idx[int(rng.integers(count))] = pick(rng, [-3, bound + 2, -1])
    return idx.astype(np.int32)


@family("gather")
def gather(rng) -> Prog:
    p = Prog(rng)
    kind = pick(rng, ["rows", "rows", "cols", "windows", "points", "batched", "implicit"])
    v, d, k = dim(rng, 2, 10), dim(rng, 1, 8), dim(rng, 1, 6)
    oob = rng.random() < 0.2
    dt = pick(rng, ["f32", "f32", "i32"])
    if kind == "windows":
        w = int(rng.integers(1, v + 1))
        x = p.arg((v, d), dt)
        idx = p.arg((k, 1), "i32", data=_indices(rng, k, v - w + 1, oob).reshape(k, 1))
        dn, sizes, out = "offset_dims = [1, 2], collapsed_slice_dims = [], start_index_map = [0], index_vector_dim = 1", [w, d], (k, w, d)
    elif kind == "points":
        x = p.arg((v, d), dt)
        pts = np.stack([_indices(rng, k, v, oob), _indices(rng, k, d, False)], 1)
        idx = p.arg((k, 2), "i32", data=pts)
        dn, sizes, out = "offset_dims = [], collapsed_slice_dims = [0, 1], start_index_map = [0, 1], index_vector_dim = 1", [1, 1], (k,)
    elif kind == "cols":
        x = p.arg((d, v), dt)
        idx = p.arg((k, 1), "i32", data=_indices(rng, k, v, oob).reshape(k, 1))
        dn, sizes, out = "offset_dims = [1], collapsed_slice_dims = [1], start_index_map = [1], index_vector_dim = 1", [d, 1], (k, d)
    elif kind == "batched":
        k2 = dim(rng, 1, 4)
        x = p.arg((v, d), dt)
        idx = p.arg((k, k2, 1), "i32", data=_indices(rng, k * k2, v, oob).reshape(k, k2, 1))
        dn, sizes, out = "offset_dims = [2], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 2", [1, d], (k, k2, d)
    elif kind == "implicit":                                 # index_vector_dim = rank
        x = p.arg((v, d), dt)
        idx = p.arg((k,), "i32", data=_indices(rng, k, v, oob))
        dn, sizes, out = "offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1", [1, d], (k, d)
    else:
        x = p.arg((v, d), dt)
        idx = p.arg((k, 1), "i32", data=_indices(rng, k, v, oob).reshape(k, 1))
        dn, sizes, out = "offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1", [1, d], (k, d)
    p.notes = f"gather {kind} {dt} operand {list(x.shape)} indices {list(idx.shape)}" + (" (one out of bounds)" if oob else "")
    return p.ret(p.op("gather", [x, idx], out, dt, f"dimension_numbers = #stablehlo.gather<{dn}>, "
                      f"slice_sizes = {i64s(sizes)}, indices_are_sorted = false"))


@family("scatter")
def scatter(rng) -> Prog:
    p = Prog(rng)
    mode = pick(rng, ["add", "add", "overwrite", "overwrite", "maximum"])
    kind = pick(rng, ["rows", "points", "cols", "batched"] + (["windows"] if mode != "overwrite" else []))
    v, d = dim(rng, 2, 10), dim(rng, 1, 8)
    k = int(rng.integers(1, v + 1)) if mode == "overwrite" else dim(rng, 1, 6)
    oob = mode != "overwrite" and rng.random() < 0.2
    uniq = mode == "overwrite"
    dt = pick(rng, ["f32", "f32", "i32"])
    if kind == "windows":
        w = int(rng.integers(1, v + 1))
        x = p.arg((v, d), dt)
        idx = p.arg((k, 1), "i32", data=_indices(rng, k, v - w + 1, oob).reshape(k, 1))
        upd, dn = (k, w, d), "update_window_dims = [1, 2], inserted_window_dims = [], scatter_dims_to_operand_dims = [0], index_vector_dim = 1"
    elif kind == "points":
        x = p.arg((v, d), dt)
        flat = _indices(rng, min(k, v * d), v * d, False, unique=uniq)
        pts = np.stack([flat // d, flat % d], 1).astype(np.int32)
        if oob:
            pts[0, 0] = v + 1
        k = len(flat)
        idx = p.arg((k, 2), "i32", data=pts)
        upd, dn = (k,), "update_window_dims = [], inserted_window_dims = [0, 1], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 1"
    elif kind == "cols":
        x = p.arg((d, v), dt)
        idx = p.arg((k, 1), "i32", data=_indices(rng, k, v, oob, uniq).reshape(k, 1))
        upd, dn = (k, d), "update_window_dims = [1], inserted_window_dims = [1], scatter_dims_to_operand_dims = [1], index_vector_dim = 1"
    elif kind == "batched":
        k2 = 1 if uniq else dim(rng, 1, 3)
        x = p.arg((v, d), dt)
        idx = p.arg((k, k2, 1), "i32", data=_indices(rng, k * k2, v, oob, uniq).reshape(k, k2, 1))
        upd, dn = (k, k2, d), "update_window_dims = [2], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 2"
    else:
        x = p.arg((v, d), dt)
        idx = p.arg((k, 1), "i32", data=_indices(rng, k, v, oob, uniq).reshape(k, 1))
        upd, dn = (k, d), "update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1"
    u = p.arg(upd, dt)
    a, b = p.block_args([((), dt), ((), dt)])
    if mode == "overwrite":
        body = p.region([a, b], [], [b])
    else:
        lines: list[str] = []
        body = p.region([a, b], lines, [p.op(mode, [a, b], (), dt, into=lines)])
    p.notes = (f"scatter {mode} {kind} {dt} operand {list(x.shape)} indices {list(idx.shape)}"
               + (" (one out of bounds)" if oob else ""))
    return p.ret(p.op("scatter", [x, idx, u], x.shape, dt,
                      f"scatter_dimension_numbers = #stablehlo.scatter<{dn}>, "
                      f"indices_are_sorted = false, unique_indices = false", [body]))


@family("dynamic_slice")
def dynamic_slice(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    dt = pick(rng, ["f32", "f32", "i32", "i1"])
    x = p.arg(s, dt)
    sizes = [int(rng.integers(1, n + 1)) for n in s]
    starts = [int(rng.integers(-2, n + 2)) for n in s]             # clamped when outside
    idx = [p.arg((), "i32", data=np.int32(v)) for v in starts]
    p.notes = f"dynamic_slice {dt}{list(s)} start {starts} sizes {sizes}"
    return p.ret(p.op("dynamic_slice", [x, *idx], sizes, dt, f"slice_sizes = {i64s(sizes)}"))


@family("dynamic_update_slice")
def dynamic_update_slice(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    dt = pick(rng, ["f32", "f32", "i32"])
    x = p.arg(s, dt)
    sizes = [int(rng.integers(1, n + 1)) for n in s]
    u = p.arg(sizes, dt)
    starts = [int(rng.integers(-2, n + 2)) for n in s]
    idx = [p.arg((), "i32", data=np.int32(v)) for v in starts]
    p.notes = f"dynamic_update_slice {dt}{list(s)} update {sizes} at {starts}"
    return p.ret(p.op("dynamic_update_slice", [x, u, *idx], s, dt))


@family("sort")
def sort(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 2, 3))
    d = int(rng.integers(len(s)))
    direction = pick(rng, ["LT", "GT"])
    pair = rng.random() < 0.4
    kdt = pick(rng, ["f32", "f32", "i32"])
    keys = p.arg(s, kdt, "small" if pair and kdt == "i32" else "normal")   # small: ties
    ops = [keys]
    if pair:
        ops.append(p.arg(s, "i32"))
    bargs = p.block_args([((), o.dt) for o in ops for _ in (0, 1)])
    body: list[str] = []
    less = p.op("compare", [bargs[0], bargs[1]], (), "i1", compare_attrs(direction, kdt), into=body)
    region = p.region(bargs, body, [less])
    outs = p.op_multi("sort", ops, [(s, o.dt) for o in ops],
                      f"dimension = {d} : i64, is_stable = true", [region])
    p.notes = f"sort {direction} {kdt}{list(s)} dim {d}" + (" with values" if pair else "")
    return p.ret(*outs)
