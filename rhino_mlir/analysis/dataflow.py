"""Region and data-flow ops: the values they tie together, for propagation and partitioning.

Shardy gives no factor rule to `while`, `case`, `optimization_barrier`,
`sdy.sharding_constraint` or `func.return`. Here each becomes identity ties:
    while:   operand i -> carry i;  carry i = result i = body arg i = cond arg i;
             body yield i -> carry i
    case:    branch k yield j -> result j
    barrier / sharding_constraint: operand i -> result i
so a scan over layers keeps one sharding for its carry inside and outside the loop.
A tie is a pair of same-shaped values whose dimensions correspond one to one.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import ir as I

LOOP_OPS = frozenset({"stablehlo.while"})
BRANCH_OPS = frozenset({"stablehlo.case", "stablehlo.if"})
# a sharding constraint passes its operand through and pins the sharding written on it
CONSTRAINT_OPS = frozenset({"sdy.sharding_constraint"})
IDENTITY_OPS = frozenset({"stablehlo.optimization_barrier"}) | CONSTRAINT_OPS
# calls tie arguments to parameters across functions: rhino-inline removes them first
CALL_OPS = frozenset({"func.call"})
TERMINATORS = frozenset({"stablehlo.return", "func.return", "sdy.return"})
# region ops whose regions hold program code (partitioned); other regions are scalar bodies
CONTROL_OPS = LOOP_OPS | BRANCH_OPS


@dataclass(frozen=True)
class Tie:
    a: object          # ir.Value
    b: object          # ir.Value


def ties(op) -> list[Tie]:
    """Identity ties contributed by one data-flow op."""
    name = op.name
    out: list[Tie] = []
    if name in LOOP_OPS:
        body = op.regions[1].blocks[0]
        cond = op.regions[0].blocks[0]
        yields = I.block_ops(body)[-1].operands
        for i, r in enumerate(op.results):
            out += [Tie(op.operands[i], r), Tie(r, body.arguments[i]), Tie(r, cond.arguments[i]),
                    Tie(yields[i], r)]
    elif name in BRANCH_OPS:
        for region in op.regions:
            yields = I.block_ops(region.blocks[0])[-1].operands
            out += [Tie(y, r) for y, r in zip(yields, op.results)]
    elif name in IDENTITY_OPS:
        out += [Tie(a, b) for a, b in zip(op.operands, op.results)]
    return [t for t in out if I.is_tensor(t.a.type) and I.is_tensor(t.b.type)]


def loop_carries(op) -> list[tuple]:
    """(result, body arg, cond arg) per carried value of a while loop."""
    body = op.regions[1].blocks[0]
    cond = op.regions[0].blocks[0]
    return [(r, body.arguments[i], cond.arguments[i]) for i, r in enumerate(op.results)]
