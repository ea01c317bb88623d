"""Corpus families with regions and plumbing: cumsum-style while loops (a row or column
carried through dynamic_slice / dynamic_update_slice), a fixed-count iteration, case
(index out of range included: the last branch runs), and pass-through results (an
argument returned as is, or twice).
"""
from __future__ import annotations

import numpy as np

from .hlo import Prog, Val, dim, family, i64s, pick, shape
from .ops_elementwise import compare_attrs


def _loop(p: Prog, n: int, carries: list[Val], step) -> list[Val]:
    """while i < n: carries = step(i, carries, body_lines); returns the final carries
    (without the counter). `step` writes its ops into the body list it is given."""
    i0 = p.const(0, "i32")
    types = [((), "i32")] + [(c.shape, c.dt) for c in carries]
    cargs = p.block_args(types)
    cbody: list[str] = []
    lim = p.const(n, "i32", into=cbody)
    pred = p.op("compare", [cargs[0], lim], (), "i1", compare_attrs("LT", "i32"), into=cbody)
    cond = p.region(cargs, cbody, [pred])
    bargs = p.block_args(types)
    body: list[str] = []
    new = step(bargs[0], bargs[1:], body)
    one = p.const(1, "i32", into=body)
    nxt = p.op("add", [bargs[0], one], (), "i32", into=body)
    region = p.region(bargs, body, [nxt, *new])
    outs = p.op_multi("while", [i0, *carries], types, "", [cond, region])
    return outs[1:]


@family("while_cumsum")
def while_cumsum(rng) -> Prog:
    p = Prog(rng)
    n, d = dim(rng, 2, 8), dim(rng, 1, 8)
    axis = int(rng.integers(2))
    s = (n, d) if axis == 0 else (d, n)
    x = p.arg(s, pick(rng, ["f32", "f32", "i32"]))
    dt = x.dt
    row = (1, d) if axis == 0 else (d, 1)
    carry_x = rng.random() < 0.5                   # x as a loop carry (as JAX does) or captured
    zero = p.const(0, dt)
    acc0 = p.op("broadcast_in_dim", [zero], row, dt, "broadcast_dimensions = array<i64>")
    out0 = p.op("broadcast_in_dim", [zero], s, dt, "broadcast_dimensions = array<i64>")

    def step(i, c, body):
        xs = c[2] if carry_x else x
        z = p.const(0, "i32", into=body)
        starts = [i, z] if axis == 0 else [z, i]
        r = p.op("dynamic_slice", [xs, *starts], row, dt, f"slice_sizes = {i64s(row)}", into=body)
        acc = p.op("add", [c[0], r], row, dt, into=body)
        out = p.op("dynamic_update_slice", [c[1], acc, *starts], s, dt, into=body)
        return [acc, out] + ([xs] if carry_x else [])

    res = _loop(p, n, [acc0, out0] + ([x] if carry_x else []), step)
    p.notes = f"while cumsum {dt}{list(s)} axis {axis}" + (" (x carried)" if carry_x else "")
    return p.ret(res[1], res[0])


@family("while_iterate")
def while_iterate(rng) -> Prog:
    """h = tanh(h * 0.5 + b) a fixed number of times; b is captured from above."""
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    h0, b = p.arg(s, "f32"), p.arg(s, "f32")
    k = int(rng.integers(1, 5))

    def step(i, c, body):
        half = p.const(0.5, "f32", into=body)
        hb = p.op("broadcast_in_dim", [half], s, "f32", "broadcast_dimensions = array<i64>", into=body)
        y = p.op("add", [p.op("multiply", [c[0], hb], s, "f32", into=body), b], s, "f32", into=body)
        return [p.op("tanh", [y], s, "f32", into=body)]

    (h,) = _loop(p, k, [h0], step)
    p.notes = f"while iterate tanh f32{list(s)} x{k}"
    return p.ret(h)


@family("case")
def case(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    nb = int(pick(rng, [2, 3]))
    which = int(rng.integers(-1, nb + 1))               # -1 and nb select the last branch
    idx = p.arg((), "i32", data=np.int32(which))
    x = p.arg(s, "f32")
    y = p.arg(s, "f32")
    regions = []
    for j in range(nb):
        body: list[str] = []
        kind = ["sine", "multiply", "reverse"][j % 3]
        if kind == "sine":
            r = p.op("sine", [x], s, "f32", into=body)
        elif kind == "multiply":
            r = p.op("multiply", [x, y], s, "f32", into=body)
        else:
            r = p.op("reverse", [y], s, "f32", f"dimensions = {i64s([0])}", into=body)
        regions.append(p.region([], body, [r]))
    out = p.op("case", [idx], s, "f32", "", regions)
    p.notes = f"case {nb} branches index {which} f32{list(s)}"
    return p.ret(out)


@family("passthrough")
def passthrough(rng) -> Prog:
    """An argument returned unchanged (beside a computed value), or returned twice."""
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    x, y = p.arg(s, "f32"), p.arg(s, "f32")
    kind = pick(rng, ["arg_and_value", "value_and_arg", "twice"])
    z = p.op("add", [x, y], s, "f32")
    p.notes = f"passthrough {kind} f32{list(s)}"
    if kind == "arg_and_value":
        return p.ret(x, z)
    if kind == "value_and_arg":
        return p.ret(z, y)
    return p.ret(x, z, x)
