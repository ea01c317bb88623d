"""rhino-legalize-for-iree: rewrite ops IREE 3.13 refuses or gets wrong into equivalent ones."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from .base import ModulePass, PassContext, register
from .legalize import gather, scatter, select_and_scatter, sort
from .legalize.builder import Builder

# op name -> rewrite(op, builder) returning None when replaced, else why the op stays
_REWRITES = {
    "stablehlo.select_and_scatter": select_and_scatter.rewrite,
    "stablehlo.scatter": scatter.rewrite,
    "stablehlo.sort": sort.rewrite,
    "stablehlo.gather": gather.rewrite,
}


def _targets(root) -> list:
    """Ops with a rewrite, in program order; none from inside another one's regions."""
    out = []
    for region in root.regions:
        for block in region.blocks:
            for op in I.block_ops(block):
                if op.name in _REWRITES:
                    out.append(op)
                else:
                    out += _targets(op)
    return out


@register
@dataclass(frozen=True)
class LegalizeForIree(ModulePass):
    """Rewrite select_and_scatter, scatters, sorts and gathers into forms IREE compiles and gets right.

    IREE 3.13 (llvm-cpu) has no lowering for `stablehlo.select_and_scatter` (the max-pool
    gradient): each window position becomes one strided slice, the select region runs
    elementwise over them in row-major window order (ties pick what the spec and XLA
    pick), and the chosen elements' coordinates feed one scatter of the source values
    (window order, so sums match XLA's bits).
    IREE converts only scatters of one canonical shape, and the code it generates has no
    bounds check (an index one past the end wrote past the buffer and aborted the
    process): every scatter becomes one batch dimension of index vectors (index vector
    last, batching dims as iota components, operand transposed so the indexed dims lead,
    wider windows on indexed dims unrolled), and an update whose window lies outside the
    operand (XLA skips it) gets the combiner's identity at index 0, or, when the
    combiner has none, goes to a padding row cut off afterwards.
    IREE drops `is_stable` from sorts: a stable sort gets the element's position as the
    last key (comparator `less(a, b) or (not less(b, a) and pos_a < pos_b)`), except a
    top-k (results only sliced), left to IREE's fast topk (ties in its own order).
    IREE sorts in place and fails when a producer (a slice: the partitioner's gather of an
    uneven dim) or a consumer (a pad) is fused into the sort's dispatch: every sort's
    operands and used results pass through optimization barriers (a top-k's position iota
    stays in sight), and a sort along a dimension of size 1 is dropped (the identity).
    IREE's gather does not always clamp an out-of-range start index (f32[3] with an
    explicit index vector returned garbage for -1 and 5): every gather's start indices are
    clamped explicitly into [0, operand_dim - slice_size], the spec's (and XLA's) rule.
    An op that cannot be rewritten (variadic scatter, dynamic shapes, regions that are not
    elementwise) stays as it is with a remark, and IREE's refusal names it.
    Runs on local programs just before IREE: after rhino-lower-collectives, before
    rhino-strip-sharding.
    """
    name: ClassVar[str] = "rhino-legalize-for-iree"

    def apply(self, pctx: PassContext, module) -> None:
        done, kept = Counter(), []
        # names are read before anything is erased: a rewrite erases the regions of the
        # op it replaces, and an erased op must not be touched again
        for op in _targets(module.operation):
            rewrite = _REWRITES[op.name]
            name, line = op.name, I.op_line(op)
            with module.context:
                why = rewrite(op, Builder(op))
            if why is None:
                done[name] += 1
            elif why != "legal":
                kept.append(f"{name}{f' (line {line})' if line else ''}: {why}")
        for text in kept:
            pctx.remark(f"{self.name}: left {text}")
        if done:
            pctx.remark(f"{self.name}: rewrote " + ", ".join(f"{n} {k}" for k, n in sorted(done.items())))
        pctx.stats[self.name] = {"rewritten": dict(done), "kept": kept}
