"""StableHLO text builder for the product corpus: typed SSA values, generic-form ops.

A family generator (ops_*.py) draws shapes and attributes from a numpy Generator and
writes one small `@main` in the style of the StableHLO interpreter's testdata: one op
family, a few ops at most. Ops are written in generic form ("stablehlo.add"(...)) so
one `op()` call covers every op; region ops take their body as text from `region()`.
`Prog` also draws each argument's deterministic input, so program and inputs travel
together. Registry: `@family(name)` records a generator in FAMILIES (read by corpus.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

# MLIR element type -> numpy dtype
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i1": np.bool_}
FAMILIES: dict[str, Callable[[np.random.Generator], "Prog"]] = {}


def family(name: str):
    def deco(fn):
        if name in FAMILIES:
            raise ValueError(f"corpus family '{name}' registered twice")
        FAMILIES[name] = fn
        return fn
    return deco


def ty(shape: Sequence[int], dt: str) -> str:
    """([3, 4], 'f32') -> 'tensor<3x4xf32>'."""
    return "tensor<" + "".join(f"{d}x" for d in shape) + dt + ">"


@dataclass(frozen=True)
class Val:
    name: str                       # '%3'
    shape: tuple[int, ...]
    dt: str                         # 'f32' | 'f64' | 'i32' | 'i1'

    @property
    def ty(self) -> str:
        return ty(self.shape, self.dt)

    def __str__(self) -> str:
        return self.name


def values(rng: np.random.Generator, shape, dt: str, kind: str = "normal") -> np.ndarray:
    """Deterministic inputs; kind 'positive' for log/sqrt/pow bases, 'small' for ints
    that must not overflow (products), 'nonzero' for divisors."""
    shape = tuple(shape)
    if dt == "i1":
        return rng.random(shape) < 0.5
    if dt == "i32":
        lo, hi = {"small": (-3, 4), "nonzero": (1, 9), "shift": (0, 33),
                  "positive": (0, 20)}.get(kind, (-20, 21))
        x = rng.integers(lo, hi, shape).astype(np.int32)
        return np.where(rng.random(shape) < 0.5, x, -x).astype(np.int32) if kind == "nonzero" else x
    x = rng.standard_normal(shape)
    if kind == "positive":
        x = np.abs(x) + 0.25
    elif kind == "nonzero":
        x = np.sign(x) * (np.abs(x) + 0.5)
    elif kind == "scaled":
        x = x * 10.0
    return x.astype(NP[dt])


@dataclass
class Prog:
    """One program under construction: arguments (+ inputs), body lines, results."""
    rng: np.random.Generator
    args: list[Val] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    results: list[Val] = field(default_factory=list)
    notes: str = ""                 # one line: what was drawn (shown in reports)
    n: int = 0

    def arg(self, shape, dt: str, kind: str = "normal", data: np.ndarray | None = None) -> Val:
        v = Val(f"%arg{len(self.args)}", tuple(shape), dt)
        self.args.append(v)
        x = values(self.rng, shape, dt, kind) if data is None else np.asarray(data, NP[dt])
        assert x.shape == tuple(shape), (x.shape, shape)
        self.inputs.append(x)
        return v

    def fresh(self) -> str:
        self.n += 1
        return f"%v{self.n}"

    def op(self, name: str, operands: Sequence[Val], shape, dt: str, attrs: str = "",
           regions: Sequence[str] = (), into: list[str] | None = None) -> Val:
        """`%vN = "stablehlo.<name>"(operands) ({regions}) {attrs} : (types) -> type`."""
        return self.op_multi(name, operands, [(shape, dt)], attrs, regions, into)[0]

    def op_multi(self, name: str, operands: Sequence[Val], outs: Sequence[tuple], attrs: str = "",
                 regions: Sequence[str] = (), into: list[str] | None = None) -> list[Val]:
        res = self.fresh()
        vals = [Val(res if len(outs) == 1 else f"{res}#{i}", tuple(s), d)
                for i, (s, d) in enumerate(outs)]
        lhs = res if len(outs) == 1 else f"{res}:{len(outs)}"
        ops = ", ".join(o.name for o in operands)
        reg = (" (" + ", ".join(regions) + ")") if regions else ""
        at = f" {{{attrs}}}" if attrs else ""
        rtys = ", ".join(v.ty for v in vals)
        sig = f"({', '.join(o.ty for o in operands)}) -> " + (rtys if len(vals) == 1 else f"({rtys})")
        (self.lines if into is None else into).append(
            f'{lhs} = "stablehlo.{name}"({ops}){reg}{at} : {sig}')
        return vals

    def const(self, value, dt: str, shape=(), into: list[str] | None = None) -> Val:
        name = self.fresh()
        lit = _literal(value, dt)
        (self.lines if into is None else into).append(
            f"{name} = stablehlo.constant dense<{lit}> : {ty(shape, dt)}")
        return Val(name, tuple(shape), dt)

    def block_args(self, types: Sequence[tuple]) -> list[Val]:
        return [Val(self.fresh(), tuple(s), d) for s, d in types]

    def region(self, bargs: Sequence[Val], body: list[str], ret: Sequence[Val]) -> str:
        head = ", ".join(f"{a.name}: {a.ty}" for a in bargs)
        rtys = ", ".join(r.ty for r in ret)
        lines = ([f"^bb0({head}):"] if bargs else []) + ["  " + b for b in body]
        lines.append(f'  "stablehlo.return"({", ".join(r.name for r in ret)}) : ({rtys}) -> ()')
        return "{\n" + "\n".join("    " + ln for ln in lines) + "\n  }"

    def scalar_body(self, op: str, dt: str) -> str:
        """Reducer region `(a, b) -> op(a, b)` on scalars of type dt."""
        a, b = self.block_args([((), dt), ((), dt)])
        body: list[str] = []
        r = self.op(op, [a, b], (), dt, into=body)
        return self.region([a, b], body, [r])

    def ret(self, *vals: Val) -> "Prog":
        self.results = list(vals)
        return self

    def text(self) -> str:
        head = ", ".join(f"{a.name}: {a.ty}" for a in self.args)
        rt = ", ".join(r.ty for r in self.results)
        out = [f"func.func @main({head}) -> ({rt}) {{"]
        out += ["  " + ln for ln in self.lines]
        out.append(f"  return {', '.join(r.name for r in self.results)} : {rt}")
        out.append("}")
        return "module {\n" + "\n".join("  " + ln for ln in out) + "\n}\n"


def _literal(value, dt: str) -> str:
    if dt == "i1":
        return "true" if value else "false"
    if dt in ("f32", "f64"):
        if value == float("-inf"):
            return "0xFF800000" if dt == "f32" else "0xFFF0000000000000"
        if value == float("inf"):
            return "0x7F800000" if dt == "f32" else "0x7FF0000000000000"
        return f"{float(value):e}"
    return str(int(value))


# ----------------------------------------------------------------------------- drawing

def dim(rng: np.random.Generator, lo: int = 1, hi: int = 10) -> int:
    """A dimension size; uneven sizes (3, 5, 6, 7, 10) drawn as often as even ones."""
    choices = [d for d in (1, 2, 3, 4, 5, 6, 7, 8, 10) if lo <= d <= hi]
    return int(rng.choice(choices))


def shape(rng: np.random.Generator, rank: int | None = None, lo: int = 1, hi: int = 10,
          ranks: Sequence[int] = (1, 2, 2, 3)) -> tuple[int, ...]:
    r = int(rng.choice(ranks)) if rank is None else rank
    return tuple(dim(rng, lo, hi) for _ in range(r))


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def i64s(xs) -> str:
    """[1, 2] -> 'array<i64: 1, 2>' (dense i64 array attribute)."""
    return "array<i64: " + ", ".join(str(int(x)) for x in xs) + ">" if len(xs) else "array<i64>"
