"""Corpus families that move data without arithmetic: reshape, transpose, reverse, slice,
pad (negative and interior included), concatenate, iota.

Shapes are drawn so that uneven splits are common (sizes 3, 5, 6, 7, 10 on 2 or 4
devices); where the op alone would leave nothing to compute, one elementwise op is
added so the result is not just a copy of an argument.
"""
from __future__ import annotations

import math

from .hlo import Prog, family, i64s, pick, shape


def _dt(rng) -> str:
    return pick(rng, ["f32", "f32", "f32", "i32", "i1", "f64"])


def _factor(rng, n: int, rank: int) -> list[int]:
    """A random shape of `rank` dims whose product is n."""
    dims = []
    for _ in range(rank - 1):
        divs = [d for d in range(1, n + 1) if n % d == 0]
        d = pick(rng, divs)
        dims.append(d)
        n //= d
    return dims + [n]


@family("reshape")
def reshape(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3), lo=2)
    dt = _dt(rng)
    total = math.prod(s)
    for _ in range(8):
        t = _factor(rng, total, int(rng.integers(1, 4)))
        if list(t) != list(s):
            break
    x = p.arg(s, dt)
    p.notes = f"reshape {dt}{list(s)} -> {t}"
    return p.ret(p.op("reshape", [x], t, dt))


@family("transpose")
def transpose(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(2, 3, 3))
    perm = list(range(len(s)))
    while perm == sorted(perm):
        perm = rng.permutation(len(s)).tolist()
    dt = _dt(rng)
    x = p.arg(s, dt)
    out = [s[i] for i in perm]
    p.notes = f"transpose {dt}{list(s)} perm {perm}"
    return p.ret(p.op("transpose", [x], out, dt, f"permutation = {i64s(perm)}"))


@family("reverse")
def reverse(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    k = int(rng.integers(1, len(s) + 1))
    dims = sorted(rng.choice(len(s), k, replace=False).tolist())
    dt = _dt(rng)
    x = p.arg(s, dt)
    p.notes = f"reverse {dt}{list(s)} dims {dims}"
    y = p.op("reverse", [x], s, dt, f"dimensions = {i64s(dims)}")
    if dt in ("f32", "f64") and rng.random() < 0.5:            # reverse feeding arithmetic
        y = p.op("add", [y, x], s, dt)
    return p.ret(y)


def _slice_attrs(rng, s) -> tuple[str, list[int]]:
    starts, limits, strides, out = [], [], [], []
    for d in s:
        a = int(rng.integers(0, d))
        b = int(rng.integers(a + 1, d + 1))
        st = int(pick(rng, [1, 1, 2, 3]))
        starts.append(a), limits.append(b), strides.append(st)
        out.append(-(-(b - a) // st))
    return (f"start_indices = {i64s(starts)}, limit_indices = {i64s(limits)}, "
            f"strides = {i64s(strides)}"), out


def _pad_attrs(rng, s) -> tuple[str, list[int]]:
    lo, hi, it, out = [], [], [], []
    for d in s:
        while True:
            a, b, i = int(rng.integers(-2, 4)), int(rng.integers(-2, 4)), int(pick(rng, [0, 0, 1, 2]))
            size = a + b + d + max(d - 1, 0) * i
            if size >= 1:
                break
        lo.append(a), hi.append(b), it.append(i), out.append(size)
    return (f"edge_padding_low = {i64s(lo)}, edge_padding_high = {i64s(hi)}, "
            f"interior_padding = {i64s(it)}"), out


@family("slice")
def slice_(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3), lo=2)
    attrs, out = _slice_attrs(rng, s)
    dt = _dt(rng)
    x = p.arg(s, dt)
    p.notes = f"slice {dt}{list(s)} {attrs}"
    return p.ret(p.op("slice", [x], out, dt, attrs))


@family("pad")
def pad(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    attrs, out = _pad_attrs(rng, s)
    dt = pick(rng, ["f32", "f32", "i32", "f64"])
    x = p.arg(s, dt)
    pv = p.arg((), dt) if rng.random() < 0.3 else p.const(1.5 if dt != "i32" else 7, dt)
    p.notes = f"pad {dt}{list(s)} {attrs}"
    return p.ret(p.op("pad", [x, pv], out, dt, attrs))


@family("layout_chain")
def layout_chain(rng) -> Prog:
    """2-3 of transpose / reverse / slice / pad, times a second argument, then a sum:
    each op hands the next a sharding it has to keep, move or undo."""
    p = Prog(rng)
    s = shape(rng, ranks=(2, 3), lo=2)
    x = p.arg(s, "f32")
    y, steps = x, []
    for _ in range(int(rng.integers(2, 4))):
        kind = pick(rng, ["transpose", "reverse", "slice", "pad"])
        cur = list(y.shape)
        if kind == "transpose":
            perm = rng.permutation(len(cur)).tolist()
            y = p.op("transpose", [y], [cur[i] for i in perm], "f32", f"permutation = {i64s(perm)}")
            steps.append(f"transpose {perm}")
        elif kind == "reverse":
            d = int(rng.integers(len(cur)))
            y = p.op("reverse", [y], cur, "f32", f"dimensions = {i64s([d])}")
            steps.append(f"reverse [{d}]")
        elif kind == "slice":
            attrs, out = _slice_attrs(rng, cur)
            y = p.op("slice", [y], out, "f32", attrs)
            steps.append(f"slice -> {out}")
        else:
            attrs, out = _pad_attrs(rng, cur)
            y = p.op("pad", [y, p.const(0.5, "f32")], out, "f32", attrs)
            steps.append(f"pad -> {out}")
    w = p.arg(y.shape, "f32")
    z = p.op("multiply", [y, w], y.shape, "f32")
    d = int(rng.integers(len(y.shape)))
    r = p.op("reduce", [z, p.const(0.0, "f32")], [n for i, n in enumerate(y.shape) if i != d],
             "f32", f"dimensions = {i64s([d])}", [p.scalar_body("add", "f32")])
    p.notes = f"f32{list(s)}: " + ", ".join(steps) + f", * arg, sum dim {d}"
    return p.ret(z, r)


@family("concatenate")
def concatenate(rng) -> Prog:
    p = Prog(rng)
    s = list(shape(rng, ranks=(1, 2, 3)))
    d = int(rng.integers(len(s)))
    k = int(pick(rng, [2, 2, 3]))
    dt = _dt(rng)
    parts = []
    for _ in range(k):
        t = list(s)
        t[d] = int(pick(rng, [1, 2, 3, 5]))
        parts.append(p.arg(t, dt))
    out = list(s)
    out[d] = sum(a.shape[d] for a in parts)
    p.notes = f"concatenate {k}x {dt} dim {d} -> {out}"
    return p.ret(p.op("concatenate", parts, out, dt, f"dimension = {d} : i64"))


@family("iota")
def iota(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    d = int(rng.integers(len(s)))
    dt = pick(rng, ["f32", "i32"])
    x = p.arg(s, dt)
    io = p.op("iota", [], s, dt, f"iota_dimension = {d} : i64")
    p.notes = f"iota {dt}{list(s)} dim {d} + arg"
    return p.ret(p.op("multiply" if rng.random() < 0.5 else "add", [x, io], s, dt))
