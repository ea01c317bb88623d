"""Corpus families with contractions and reductions: dot_general (batch + contracting
dims in several positions), convolution (strides, padding, dilations, feature groups),
reduce (add / max / min / multiply / and / or, argmax-style variadic), reduce_window,
and two few-op blocks (softmax, a dense layer) where sharding must flow between ops.
"""
from __future__ import annotations

from .hlo import Prog, dim, family, i64s, pick, shape
from .ops_elementwise import compare_attrs


@family("dot_general")
def dot_general(rng) -> Prog:
    p = Prog(rng)
    dt = pick(rng, ["f32", "f32", "f32", "i32", "f64"])
    kind = pick(rng, ["matmul", "batched", "transposed", "two_contracting", "vector",
                      "batch_middle"])
    b, m, n, k, k2 = (dim(rng, 1, 6), dim(rng, 1, 10), dim(rng, 1, 10), dim(rng, 1, 10),
                      dim(rng, 1, 4))
    # (lhs shape, rhs shape, lhs batch, rhs batch, lhs contract, rhs contract, result)
    spec = {"matmul": ((m, k), (k, n), [], [], [1], [0], (m, n)),
            "batched": ((b, m, k), (b, k, n), [0], [0], [2], [1], (b, m, n)),
            "transposed": ((k, m), (n, k), [], [], [0], [1], (m, n)),
            "two_contracting": ((m, k, k2), (k2, k, n), [], [], [1, 2], [1, 0], (m, n)),
            "vector": ((k,), (k,), [], [], [0], [0], ()),
            "batch_middle": ((m, b, k), (k, b, n), [1], [1], [2], [0], (b, m, n))}[kind]
    ls, rs, lb, rb, lc, rc, out = spec
    kind_in = "small" if dt == "i32" else "normal"
    x, w = p.arg(ls, dt, kind_in), p.arg(rs, dt, kind_in)
    attrs = (f"dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = {list(lb)}, "
             f"rhs_batching_dimensions = {list(rb)}, lhs_contracting_dimensions = {list(lc)}, "
             f"rhs_contracting_dimensions = {list(rc)}>")
    p.notes = f"dot_general {kind} {dt} {list(ls)} x {list(rs)}"
    return p.ret(p.op("dot_general", [x, w], out, dt, attrs))


def _conv_out(size: int, k: int, stride: int, lo: int, hi: int, ld: int, rd: int) -> int:
    padded = (size - 1) * ld + 1 + lo + hi
    eff = (k - 1) * rd + 1
    return (padded - eff) // stride + 1 if padded >= eff else 0


@family("convolution")
def convolution(rng) -> Prog:
    p = Prog(rng)
    nsp = int(pick(rng, [1, 2, 2]))
    groups = int(pick(rng, [1, 1, 2, 3]))
    batch = dim(rng, 1, 4)
    cin, cout = groups * dim(rng, 1, 3), groups * dim(rng, 1, 3)
    for _ in range(50):
        sp = [dim(rng, 3, 10) for _ in range(nsp)]
        ks = [int(pick(rng, [1, 2, 3])) for _ in range(nsp)]
        st = [int(pick(rng, [1, 1, 2, 3])) for _ in range(nsp)]
        pads = [(int(pick(rng, [0, 0, 1, 2])), int(pick(rng, [0, 0, 1, 2]))) for _ in range(nsp)]
        ld = [int(pick(rng, [1, 1, 1, 2])) for _ in range(nsp)]
        rd = [int(pick(rng, [1, 1, 2])) for _ in range(nsp)]
        osp = [_conv_out(*a) for a in zip(sp, ks, st, [q[0] for q in pads], [q[1] for q in pads], ld, rd)]
        if min(osp) >= 1:
            break
    channels_last = rng.random() < 0.7
    sd = ", ".join(str(i) for i in range(nsp))
    if channels_last:                                     # NHWC x HWIO -> NHWC
        xs, ws, os_ = [batch, *sp, cin], [*ks, cin // groups, cout], [batch, *osp, cout]
        dn = f"[b, {sd}, f]x[{sd}, i, o]->[b, {sd}, f]"
    else:                                                 # NCHW x OIHW -> NCHW
        xs, ws, os_ = [batch, cin, *sp], [cout, cin // groups, *ks], [batch, cout, *osp]
        dn = f"[b, f, {sd}]x[o, i, {sd}]->[b, f, {sd}]"
    dt = "f64" if rng.random() < 0.1 else "f32"
    x, w = p.arg(xs, dt), p.arg(ws, dt)
    pad_txt = ", ".join(f"[{a}, {b}]" for a, b in pads)
    attrs = (f"dimension_numbers = #stablehlo.conv<{dn}>, window_strides = {i64s(st)}, "
             f"padding = dense<[{pad_txt}]> : tensor<{nsp}x2xi64>, lhs_dilation = {i64s(ld)}, "
             f"rhs_dilation = {i64s(rd)}, feature_group_count = {groups} : i64, "
             f"batch_group_count = 1 : i64")
    p.notes = (f"conv {dt} x{xs} w{ws} stride {st} pad {pads} lhs_dil {ld} rhs_dil {rd} "
               f"groups {groups} {'NHWC' if channels_last else 'NCHW'}")
    return p.ret(p.op("convolution", [x, w], os_, dt, attrs))


REDUCERS = {  # op -> (init, dtypes)
    "add": (0, ("f32", "i32", "f64")), "maximum": ("-inf", ("f32", "i32")),
    "minimum": ("inf", ("f32", "i32")), "multiply": (1, ("f32", "i32")),
    "and": (True, ("i1",)), "or": (False, ("i1",))}


def _init(op: str, dt: str):
    v = REDUCERS[op][0]
    if v in ("-inf", "inf") and dt == "i32":
        return -2**31 if v == "-inf" else 2**31 - 1
    return float(v) if v in ("-inf", "inf") else v


@family("reduce")
def reduce(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 3))
    k = int(rng.integers(1, len(s) + 1))
    dims = sorted(rng.choice(len(s), k, replace=False).tolist())
    out = [d for i, d in enumerate(s) if i not in dims]
    if rng.random() < 0.25:
        return _argmax(p, s, dims[:1])
    op = pick(rng, sorted(REDUCERS))
    dt = pick(rng, list(REDUCERS[op][1]))
    x = p.arg(s, dt, "small" if op == "multiply" else "normal")
    init = p.const(_init(op, dt), dt)
    body = p.scalar_body(op, dt)
    p.notes = f"reduce {op} {dt}{list(s)} dims {dims}"
    return p.ret(p.op("reduce", [x, init], out, dt, f"dimensions = {i64s(dims)}", [body]))


def _argmax(p: Prog, s, dims) -> Prog:
    """(max, index of first max) along one dim: a variadic reduce with a custom body."""
    d = dims[0]
    out = [n for i, n in enumerate(s) if i != d]
    x = p.arg(s, "f32")
    idx = p.op("iota", [], s, "i32", f"iota_dimension = {d} : i64")
    iv, ii = p.const(float("-inf"), "f32"), p.const(0, "i32")
    a, ai, b, bi = p.block_args([((), "f32"), ((), "i32"), ((), "f32"), ((), "i32")])
    body: list[str] = []
    gt = p.op("compare", [a, b], (), "i1", compare_attrs("GT", "f32"), into=body)
    eq = p.op("compare", [a, b], (), "i1", compare_attrs("EQ", "f32"), into=body)
    lt = p.op("compare", [ai, bi], (), "i1", compare_attrs("LT", "i32"), into=body)
    first = p.op("or", [gt, p.op("and", [eq, lt], (), "i1", into=body)], (), "i1", into=body)
    v = p.op("select", [gt, a, b], (), "f32", into=body)
    i = p.op("select", [first, ai, bi], (), "i32", into=body)
    region = p.region([a, ai, b, bi], body, [v, i])
    mx, am = p.op_multi("reduce", [x, idx, iv, ii], [(out, "f32"), (out, "i32")],
                        f"dimensions = {i64s([d])}", [region])
    p.notes = f"argmax f32{list(s)} dim {d}"
    return p.ret(mx, am)


@family("reduce_window")
def reduce_window(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng, ranks=(1, 2, 2, 3), lo=2)
    for _ in range(50):
        win = [int(pick(rng, [1, 2, 3])) for _ in s]
        st = [int(pick(rng, [1, 1, 2, 3])) for _ in s]
        pads = [(int(pick(rng, [0, 0, 1, 2])), int(pick(rng, [0, 0, 1]))) for _ in s]
        bd = [int(pick(rng, [1, 1, 1, 1, 2])) for _ in s]
        wd = [int(pick(rng, [1, 1, 1, 2])) for _ in s]
        out = [_conv_out(*a) for a in zip(s, win, st, [q[0] for q in pads], [q[1] for q in pads], bd, wd)]
        if min(out) >= 1:
            break
    op = pick(rng, ["add", "maximum", "maximum", "minimum"])
    dt = pick(rng, ["f32", "f32", "i32"])
    x = p.arg(s, dt)
    init = p.const(_init(op, dt), dt)
    body = p.scalar_body(op, dt)
    pad_txt = ", ".join(f"[{a}, {b}]" for a, b in pads)
    attrs = (f"window_dimensions = {i64s(win)}, window_strides = {i64s(st)}, "
             f"base_dilations = {i64s(bd)}, window_dilations = {i64s(wd)}, "
             f"padding = dense<[{pad_txt}]> : tensor<{len(s)}x2xi64>")
    p.notes = f"reduce_window {op} {dt}{list(s)} win {win} stride {st} pad {pads} bdil {bd} wdil {wd}"
    return p.ret(p.op("reduce_window", [x, init], out, dt, attrs, [body]))


@family("select_and_scatter")
def select_and_scatter(rng) -> Prog:
    """The max-pool gradient: each source value goes to the max of its window (added)."""
    p = Prog(rng)
    s = shape(rng, ranks=(2, 2, 3), lo=2)
    for _ in range(50):
        win = [int(pick(rng, [1, 2, 3])) for _ in s]
        st = [int(pick(rng, [1, 2, 2, 3])) for _ in s]
        pads = [(int(pick(rng, [0, 0, 1])), int(pick(rng, [0, 0, 1]))) for _ in s]
        out = [_conv_out(d, w, t, a, b, 1, 1) for d, w, t, (a, b) in zip(s, win, st, pads)]
        if min(out) >= 1:
            break
    x, src = p.arg(s, "f32"), p.arg(out, "f32")
    init = p.const(0.0, "f32")
    a, b = p.block_args([((), "f32"), ((), "f32")])
    body: list[str] = []
    ge = p.op("compare", [a, b], (), "i1", compare_attrs("GE", "f32"), into=body)
    select = p.region([a, b], body, [ge])
    pad_txt = ", ".join(f"[{lo}, {hi}]" for lo, hi in pads)
    attrs = (f"window_dimensions = {i64s(win)}, window_strides = {i64s(st)}, "
             f"padding = dense<[{pad_txt}]> : tensor<{len(s)}x2xi64>")
    p.notes = f"select_and_scatter f32{list(s)} win {win} stride {st} pad {pads}"
    return p.ret(p.op("select_and_scatter", [x, src, init], s, "f32", attrs,
                      [select, p.scalar_body("add", "f32")]))


@family("softmax")
def softmax(rng) -> Prog:
    """max-reduce, subtract, exp, add-reduce, divide along the last dim (few ops)."""
    p = Prog(rng)
    s = shape(rng, ranks=(2, 3))
    last = len(s) - 1
    keep = list(range(last))
    x = p.arg(s, "f32")
    mx = p.op("reduce", [x, p.const(float("-inf"), "f32")], s[:-1], "f32",
              f"dimensions = {i64s([last])}", [p.scalar_body("maximum", "f32")])
    e = p.op("exponential", [p.op("subtract", [x, p.op("broadcast_in_dim", [mx], s, "f32",
             f"broadcast_dimensions = {i64s(keep)}")], s, "f32")], s, "f32")
    sm = p.op("reduce", [e, p.const(0.0, "f32")], s[:-1], "f32", f"dimensions = {i64s([last])}",
              [p.scalar_body("add", "f32")])
    y = p.op("divide", [e, p.op("broadcast_in_dim", [sm], s, "f32",
                                f"broadcast_dimensions = {i64s(keep)}")], s, "f32")
    p.notes = f"softmax f32{list(s)}"
    return p.ret(y)


@family("dense")
def dense(rng) -> Prog:
    """tanh(x @ w + b), then a sum over the features: sharding flows through 4 ops."""
    p = Prog(rng)
    m, k, n = dim(rng), dim(rng), dim(rng)
    x, w, b = p.arg((m, k), "f32"), p.arg((k, n), "f32"), p.arg((n,), "f32")
    y = p.op("dot_general", [x, w], (m, n), "f32", "dot_dimension_numbers = #stablehlo.dot<"
             "lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>")
    y = p.op("tanh", [p.op("add", [y, p.op("broadcast_in_dim", [b], (m, n), "f32",
                                           "broadcast_dimensions = array<i64: 1>")], (m, n), "f32")],
             (m, n), "f32")
    r = p.op("reduce", [y, p.const(0.0, "f32")], (m,), "f32", "dimensions = array<i64: 1>",
             [p.scalar_body("add", "f32")])
    p.notes = f"dense x({m},{k}) w({k},{n})"
    return p.ret(y, r)
