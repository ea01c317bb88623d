"""Corpus families: elementwise unary / binary (float, integer, bool), compare + select,
clamp, convert, bitcast_convert, broadcast_in_dim feeding a binary op.

Each generator draws one op (sometimes two chained) on random small shapes; the inputs
are kept inside each op's domain (positive for log/sqrt/pow, non-zero integer divisors,
shift amounts 0..32) so XLA's result is defined and comparable.
"""
from __future__ import annotations

import numpy as np

from .hlo import Prog, Val, family, i64s, pick, shape

# op -> input kind for values(); float ops run on f32 (some f64), integer ops on i32
FLOAT_UNARY = {"abs": "normal", "negate": "normal", "exponential": "normal", "tanh": "normal",
               "sine": "normal", "cosine": "normal", "floor": "scaled", "ceil": "scaled",
               "sign": "normal", "logistic": "normal", "exponential_minus_one": "normal",
               "round_nearest_even": "scaled", "round_nearest_afz": "scaled", "cbrt": "normal",
               "sqrt": "positive", "rsqrt": "positive", "log": "positive",
               "log_plus_one": "positive"}
INT_UNARY = {"abs": "normal", "negate": "normal", "not": "normal", "popcnt": "normal",
             "count_leading_zeros": "positive", "sign": "normal"}
FLOAT_BINARY = {"add": "normal", "subtract": "normal", "multiply": "normal",
                "divide": "nonzero", "maximum": "normal", "minimum": "normal",
                "power": "positive", "remainder": "nonzero", "atan2": "normal"}
INT_BINARY = {"add": "normal", "subtract": "normal", "multiply": "normal",
              "divide": "nonzero", "remainder": "nonzero", "maximum": "normal",
              "minimum": "normal", "and": "normal", "or": "normal", "xor": "normal",
              "shift_left": "shift", "shift_right_arithmetic": "shift",
              "shift_right_logical": "shift"}
BOOL_BINARY = ("and", "or", "xor")
DIRECTIONS = ("EQ", "NE", "LT", "LE", "GT", "GE")


def float_dt(rng) -> str:
    return "f64" if rng.random() < 0.15 else "f32"


def compare_attrs(direction: str, dt: str) -> str:
    kind = {"f32": "FLOAT", "f64": "FLOAT", "i32": "SIGNED", "i1": "UNSIGNED"}[dt]
    return (f"comparison_direction = #stablehlo<comparison_direction {direction}>, "
            f"compare_type = #stablehlo<comparison_type {kind}>")


@family("unary")
def unary(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng)
    dt = pick(rng, ["f32", "f32", "f32", "f64", "i32", "i32", "i1"])
    table = FLOAT_UNARY if dt in ("f32", "f64") else INT_UNARY if dt == "i32" else {"not": "normal"}
    op = pick(rng, sorted(table))
    x = p.arg(s, dt, table[op])
    y = p.op(op, [x], s, dt)
    p.notes = f"{op} {dt}{list(s)}"
    if dt in ("f32", "f64") and rng.random() < 0.3:        # few-op: a second unary
        op2 = pick(rng, ["negate", "abs", "tanh", "floor"])
        y = p.op(op2, [y], s, dt)
        p.notes += f" then {op2}"
    if dt in ("f32", "f64") and rng.random() < 0.3:
        return p.ret(y, p.op("is_finite", [x], s, "i1"))
    return p.ret(y)


@family("binary")
def binary(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng)
    dt = pick(rng, ["f32", "f32", "f64", "i32", "i32", "i1"])
    table = (FLOAT_BINARY if dt in ("f32", "f64") else INT_BINARY if dt == "i32"
             else {k: "normal" for k in BOOL_BINARY})
    op = pick(rng, sorted(table))
    a = p.arg(s, dt, "positive" if table[op] == "positive" else "normal")
    b = p.arg(s, dt, "normal" if table[op] == "positive" else table[op])
    p.notes = f"{op} {dt}{list(s)}"
    return p.ret(p.op(op, [a, b], s, dt))


@family("broadcast_binary")
def broadcast_binary(rng) -> Prog:
    """broadcast_in_dim of a lower-rank (or size-1) operand, then a binary op."""
    p = Prog(rng)
    out = shape(rng, ranks=(2, 3))
    r = int(rng.integers(0, len(out) + 1))
    dims = sorted(rng.choice(len(out), r, replace=False).tolist())
    small = [out[d] if rng.random() < 0.75 else 1 for d in dims]       # 1: size expansion
    dt = pick(rng, ["f32", "f32", "i32"])
    x = p.arg(out, dt)
    b = p.arg(small, dt)
    bb = p.op("broadcast_in_dim", [b], out, dt, f"broadcast_dimensions = {i64s(dims)}")
    op = pick(rng, ["add", "multiply", "maximum", "subtract"])
    p.notes = f"broadcast {list(small)} dims {dims} -> {list(out)}, {op}"
    return p.ret(p.op(op, [x, bb], out, dt), bb) if rng.random() < 0.3 else p.ret(p.op(op, [x, bb], out, dt))


@family("compare_select")
def compare_select(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng)
    dt = pick(rng, ["f32", "f32", "i32", "f64"])
    a, b = p.arg(s, dt), p.arg(s, dt)
    d = pick(rng, DIRECTIONS)
    pred = p.op("compare", [a, b], s, "i1", compare_attrs(d, dt))
    if rng.random() < 0.25:                      # a scalar predicate selects whole tensors
        pred = p.arg((), "i1")
    sel = p.op("select", [pred, a, b], s, dt)
    p.notes = f"compare {d} {dt}{list(s)} + select" + (" (scalar pred)" if pred.shape == () else "")
    return p.ret(sel, pred) if pred.shape else p.ret(sel)


@family("clamp")
def clamp(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng)
    dt = pick(rng, ["f32", "i32"])
    scalar = rng.random() < 0.5
    lo = p.arg(() if scalar else s, dt, data=(np.full((), -0.5 if dt == "f32" else -5) if scalar
                                             else None))
    x = p.arg(s, dt)
    hi = p.arg(() if scalar else s, dt, data=np.full((), 0.7 if dt == "f32" else 6) if scalar else None)
    p.notes = f"clamp {dt}{list(s)} {'scalar' if scalar else 'tensor'} bounds"
    return p.ret(p.op("clamp", [lo, x, hi], s, dt))


CONVERSIONS = [("f32", "i32", "scaled"), ("i32", "f32", "normal"), ("i1", "f32", "normal"),
               ("f32", "i1", "normal"), ("f32", "f64", "normal"), ("f64", "f32", "normal"),
               ("i32", "i1", "small"), ("i1", "i32", "normal"), ("f64", "i32", "scaled")]


@family("convert")
def convert(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng)
    src, dst, kind = CONVERSIONS[int(rng.integers(len(CONVERSIONS)))]
    x = p.arg(s, src, kind)
    y = p.op("convert", [x], s, dst)
    p.notes = f"convert {src}->{dst} {list(s)}"
    if dst in ("f32", "f64", "i32") and rng.random() < 0.4:      # few-op: use it
        y = p.op("add", [y, y], s, dst)
    return p.ret(y)


@family("bitcast_convert")
def bitcast_convert(rng) -> Prog:
    p = Prog(rng)
    s = shape(rng)
    src, dst = pick(rng, [("f32", "i32"), ("i32", "f32")])
    x = p.arg(s, src, "normal")
    y = p.op("bitcast_convert", [x], s, dst)
    if dst == "f32":                                  # keep the i32 bits of normal floats
        x2 = p.op("bitcast_convert", [y], s, "i32")
        p.notes = f"bitcast {src}->{dst}->i32 {list(s)}"
        return p.ret(x2)
    p.notes = f"bitcast {src}->{dst} {list(s)}"
    return p.ret(p.op("xor", [y, p.op("shift_right_logical", [y, _splat(p, 3, s)], s, "i32")], s, "i32"))


def _splat(p: Prog, value: int, s) -> Val:
    c = p.const(value, "i32")
    return p.op("broadcast_in_dim", [c], s, "i32", "broadcast_dimensions = array<i64>")
