"""stablehlo.sort -> a sort IREE 3.13 compiles, in XLA's order.

In place. IREE sorts in place (iree_linalg_ext.sort writes its operands' buffers) and
fuses a sort's producers and consumers into its dispatch: with a slice before it (the
partitioner's all_gather -> slice of an uneven dim), a pad after it (gathered, then cut
to a sharded result) or two iota operands, the sorted tensor is no longer the buffer the
dispatch stores, the dispatch needs a copy, and iree-compile fails ("'linalg.generic' op
write affecting operations on global resources are restricted to workgroup distributed
contexts"; IREE alone fails on sort(slice(arg)) too). So every sort's operands pass
through one stablehlo.optimization_barrier and its used results through another: the
dispatch then loads, sorts and stores one buffer. A sort along a dimension of size 1
(or of no elements) is the identity and is dropped.

Stable. IREE converts stablehlo.sort to iree_linalg_ext.sort, which has no notion of
stability (is_stable is dropped), and raises a sort followed by a slice to
iree_linalg_ext.topk; measured on llvm-cpu: equal int keys come out in another order than
XLA's (and the spec's) stable order, jax.lax.top_k returns another index among equal
values, and on floats the top-k ignores the comparator's total order (-0.0 ties +0.0,
NaN is dropped). A stable sort's result is the unique sort under (comparator, original
position). So the position joins the comparison (an operand that is already an iota
along the sort dimension, as argsort's and top_k's are, or one more i32 iota operand,
dropped afterwards) and the comparator becomes

    less(a, b) or (not less(b, a) and pos_a < pos_b)

a strict total order: any correct sort returns the stable order (so the new sort is
marked is_stable = false, and a second run of the pass leaves it as it is). Behind the
barrier IREE sees no iota: it neither raises the sort (+ slice) to its topk, which drops
the position from the comparison, nor fuses the iota into the sort's dispatch.
A top-k (every result only sliced) is left to IREE's topk: fast, but ties and NaN/-0.0
come out in its order (docs/launch.md, "What IREE itself gets wrong").
"""
from __future__ import annotations

from ... import ir as I
from ...ir import ir
from .builder import Builder, static


def _clone_body(b: Builder, block, args):
    """The comparator's ops re-created before b's anchor on scalar `args`; its i1 result."""
    env = {block.arguments[i]: a for i, a in enumerate(args)}
    for op in I.block_ops(block):
        if op.name == "stablehlo.return":
            return env.get(op.operands[0], op.operands[0])
        new = op.clone(ip=ir.InsertionPoint(b.anchor))
        for k, v in enumerate(op.operands):
            if v in env:
                new.operands[k] = env[v]
        for r, n in zip(op.results, new.results):
            env[r] = n
    return None


def _top_k(op) -> bool:
    """Every result only sliced: jax.lax.top_k's legalized form, which IREE raises to its
    topk (O(n) per row) where the tie-broken sort runs IREE's O(n^2) CPU sort (measured
    8 x 8192, k=4: 15 ms vs 9 s)."""
    users = [u.owner for r in op.results for u in r.uses]
    return bool(users) and all(getattr(u, "name", None) == "stablehlo.slice" for u in users)


def _position_operand(op, dim: int) -> int | None:
    """The operand that already holds each element's position along `dim` (an iota there,
    maybe broadcast: argsort and the legalized top_k carry one), else None."""
    for k, v in enumerate(op.operands):
        owner = getattr(v.owner, "operation", v.owner)
        if not isinstance(owner, ir.Operation) or not isinstance(I.elem_of(v.type), ir.IntegerType):
            continue
        if owner.name == "stablehlo.broadcast_in_dim":
            src = owner.operands[0]
            dims = list(ir.DenseI64ArrayAttr(owner.attributes["broadcast_dimensions"]))
            inner = getattr(src.owner, "operation", src.owner)
            if (isinstance(inner, ir.Operation) and inner.name == "stablehlo.iota"
                    and dims[ir.IntegerAttr(inner.attributes["iota_dimension"]).value] == dim):
                return k
        elif owner.name == "stablehlo.iota" and ir.IntegerAttr(owner.attributes["iota_dimension"]).value == dim:
            return k
    return None


def _producer(v):
    """The op defining `v` (None for a block argument: nothing for IREE to fuse)."""
    owner = getattr(v.owner, "operation", v.owner)
    return owner if isinstance(owner, ir.Operation) else None


def _is_barrier(op) -> bool:
    return getattr(op, "name", None) == "stablehlo.optimization_barrier"


def _barrier(b: Builder, values: list) -> list:
    """`values` through one optimization_barrier (IREE: a buffer of their own)."""
    return list(b.create("stablehlo.optimization_barrier", [v.type for v in values], values).results)


def _isolate(op, b: Builder, operands: list[int], results: bool) -> bool:
    """Put the sort's `operands` (those an op produces) and, if `results`, its used
    results behind barriers (the module docstring); whether anything changed."""
    fed = [i for i in operands if _producer(op.operands[i]) is not None
           and not _is_barrier(_producer(op.operands[i]))]
    if fed:
        for i, v in zip(fed, _barrier(b.at(op), [op.operands[i] for i in fed])):
            op.operands[i] = v
    used = [r for r in op.results if any(not _is_barrier(u.owner) for u in r.uses)] if results else []
    if used:
        ops = I.block_ops(op.block)
        for old, new in zip(used, _barrier(b.at(ops[ops.index(op) + 1]), used)):
            old.replace_all_uses_except(new, _producer(new))
    return bool(fed or used)


def _tie_break(op, b: Builder, dim: int):
    """The sort with the position as its last key (the module docstring); the new op."""
    block = op.regions[0].blocks[0]
    have = _position_operand(op, dim)
    operands = list(op.operands)
    if have is None:                           # a position operand of our own (dropped after)
        operands.append(b.iota(I.shape_of(op.operands[0].type), dim, ir.IntegerType.get_signless(32)))
    k = len(operands) - 1 if have is None else have
    attrs = {key: op.attributes[key] for key in op.attributes}
    attrs["is_stable"] = ir.BoolAttr.get(False)          # the comparator is a total order now
    new = b.create("stablehlo.sort", [v.type for v in operands], operands, attrs, regions=1)
    scalars = [I.make_tensor([], I.elem_of(v.type)) for v in operands]
    body = new.regions[0].blocks.append(*[t for t in scalars for _ in (0, 1)])
    with ir.InsertionPoint(body), op.location:
        anchor = ir.Operation.create("stablehlo.return", operands=[])   # placeholder, replaced below
    inner = b.at(anchor)
    args = list(body.arguments)
    lhs, rhs = args[0::2], args[1::2]
    n = len(op.operands)
    ab = _clone_body(inner, block, [x for pair in zip(lhs[:n], rhs[:n]) for x in pair])
    ba = _clone_body(inner, block, [x for pair in zip(rhs[:n], lhs[:n]) for x in pair])
    earlier = inner.compare(lhs[k], rhs[k], "LT")
    tie = inner.op("stablehlo.and", earlier.type, [inner.negation(ba), earlier])
    less = inner.either(ab, tie)
    anchor.erase()
    with ir.InsertionPoint(body), op.location:
        ir.Operation.create("stablehlo.return", operands=[less])
    for old, res in zip(op.results, new.results):
        old.replace_all_uses_with(res)
    op.erase()
    return new


def rewrite(op, b: Builder) -> str | None:
    if not static(*op.operands):
        return "dynamic shapes"
    shape = I.shape_of(op.operands[0].type)
    dim = ir.IntegerAttr(op.attributes["dimension"]).value
    if shape[dim] <= 1 or 0 in shape:          # nothing to reorder
        for old, v in zip(op.results, op.operands):
            old.replace_all_uses_with(v)
        op.erase()
        return None
    stable = "is_stable" in op.attributes and ir.BoolAttr(op.attributes["is_stable"]).value
    everything = list(range(len(op.operands)))
    if _top_k(op):
        # IREE's topk needs to see the position iota; results go only into slices
        _isolate(op, b, [i for i in everything if i != _position_operand(op, dim)], results=False)
        return ("a top-k (sort + slice) stays for IREE's topk: exact ties would cost a full "
                "sort, O(n^2) on llvm-cpu (docs/launch.md)") if stable else "legal"
    if stable:
        if any(len(o.regions) for o in I.block_ops(op.regions[0].blocks[0])):
            _isolate(op, b, everything, results=True)
            return "not stable on IREE: its comparator has regions"
        op = _tie_break(op, b, dim)
        everything = list(range(len(op.operands)))
    return None if _isolate(op, b, everything, results=True) or stable else "legal"
