"""Which while-loop carries may stay partial: accumulators of partial contributions.

A carry c that starts at the identity e of a combiner (+) (a splat; rhino-accumulate makes
these), is updated in the body only as c' = c (+) x and is read nowhere else (not by the
condition, not by another body op) holds after K trips e (+) x_1 (+) ... (+) x_K. When every
x_k is partial over mesh axes P with that combiner (device p holds x_k^p, x_k = (+)_p x_k^p:
a gradient of a batch-sharded micro-batch), device p may carry c^p = e (+) x_1^p (+) ... from
c^p = e, because (+) is associative and commutative: (+)_p c^p = (+)_k (+)_p x_k^p = c, and e
on every device is a valid partial value of e. So the body needs no collective for c; the
loop's result is partial over P and its consumers after the loop complete it once (an
all_reduce, or a reduce_scatter where the plan wants it sharded, ZeRO-2): K collectives of
the full gradient become one. The carry then has the contribution's sharding, which can be
coarser than the one the plan gave the loop result (a ZeRO-2 gradient is carried whole, not
as its shard): that trades memory for communication, and the memory model counts it
(memory.py; the planner's search/accumulate_price.py `carry_bytes`).
A contribution widened before it is added (rhino-accumulate sums bf16 gradients in f32:
c' = c + convert(x)) passes its partial layout through the convert (analysis/local_rules.py
`passes_partial`): each device widens its own partial value and the sum happens in f32.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import ir as I
from ...analysis import dataflow
from ...analysis.local_rules import elementwise_combiner, identity, passes_partial
from .emit import Emitter
from .strategy import Layout


@dataclass(frozen=True)
class Accumulator:
    index: int            # carry number of the while op
    kind: str             # add|mul|min|max: the combiner of the update
    update: object        # the body's op c (+) x, whose result the body yields for the carry
    other: int            # operand number of x in `update`
    through: object = None  # x's producer when it may run on partial values (a widening convert)


def _op(owner):
    return owner.operation if hasattr(owner, "operation") else owner


def accumulators(loop) -> dict[int, Accumulator]:
    """Carries of `loop` (a stablehlo.while, still global) that may stay partial, by carry number.
    Structure only; whether the contribution is partial is known once the body is partitioned
    (`carry_layout`)."""
    body, cond = loop.regions[1].blocks[0], loop.regions[0].blocks[0]
    yields = list(I.block_ops(body)[-1].operands)
    out = {}
    for i, (b, c) in enumerate(zip(body.arguments, cond.arguments)):
        if not I.is_tensor(b.type) or list(c.uses):
            continue
        uses = list(b.uses)
        if len(uses) != 1:
            continue
        upd = _op(uses[0].owner)
        kind = elementwise_combiner(upd)
        # the yield must be the update itself: then it is a top-level op of the body
        if kind is None or yields[i] != upd.results[0] or upd.results[0].type != b.type:
            continue
        ops = list(upd.operands)
        if ops.count(b) != 1:
            continue
        if I.splat_value(loop.operands[i]) != identity(kind, I.elem_of(b.type)):
            continue
        x = ops[1 - ops.index(b)]
        through = _op(x.owner) if isinstance(_op(x.owner), I.ir.Operation) else None
        if through is not None and not (len(through.results) == 1 and len(list(x.uses)) == 1
                                        and passes_partial(through)):
            through = None
        out[i] = Accumulator(i, kind, upd, 1 - ops.index(b), through)
    return out


def carry_layout(contribution: Layout, kind: str) -> Layout | None:
    """The layout an accumulator carry keeps when what it adds each trip has `contribution`:
    the same when that is partial with the carry's combiner; None: complete it in the body."""
    if contribution.partial and contribution.combiner == kind:
        return contribution
    return None


# ----------------------------------------------------------------------------- partitioning
# `p` is rhino-spmd-partition's Partitioner (passes/spmd_partition.py): layouts, local types.

def update(p, op, loop, a: Accumulator, targets: list) -> bool:
    """Partition the update c (+) x of accumulator `a` of `loop`: when x is partial with that
    combiner, c keeps x's layout (no collective in the body; the loop's consumers complete it
    once; `targets[a.index]` tells the body's yield to keep it). False: partition it as usual."""
    lay = carry_layout(p.lay(op.operands[a.other]), a.kind)
    if lay is None:
        return False
    r, b, c = dataflow.loop_carries(loop)[a.index]
    for v in (r, b, c, op.results[0]):
        p.localize(v, lay.sharding)
        p.layout[v] = lay
    # the identity on every device is a partial identity (in the carry's local type)
    init = Emitter(loop, p.counter).splat(identity(a.kind, I.elem_of(b.type)), b.type)
    p.gshape[init], p.layout[init] = p.shape(r), lay
    old = loop.operands[a.index]
    loop.operands[a.index] = init
    if I.splat_value(old) is not None and not list(old.uses):
        _op(old.owner).erase()
    targets[a.index] = lay
    return True


def widen(p, op, kind: str) -> bool:
    """Partition the widening convert of an accumulator's contribution: on an operand partial
    with the carry's combiner, it converts each device's partial value. False: as usual."""
    lay = p.lay(op.operands[0])
    if not lay.partial or lay.combiner != kind:
        return False
    p.localize(op.results[0], lay.sharding)
    p.layout[op.results[0]] = lay
    return True
