"""rhino-annotate-cost: attach `rhino.flops` and `rhino.bytes` to every op."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..analysis import cost
from .base import ModulePass, PassContext, register

_I64_MAX = 2**63 - 1


def _count_attr(n: float):
    """i64 when it fits (the common case, exact), f64 beyond (huge models)."""
    if float(n).is_integer() and n <= _I64_MAX:
        return I.ir.IntegerAttr.get(I.ir.IntegerType.get_signless(64), int(n))
    return I.ir.FloatAttr.get(I.ir.F64Type.get(), float(n))


@register
@dataclass(frozen=True)
class AnnotateCost(ModulePass):
    """Annotate each op with rhino.flops and rhino.bytes (read + written).

    Makes the cost model visible in the IR: the numbers the planner uses for an op
    (analysis/cost.py) can be read off the printed program, diffed and tested with
    FileCheck. Collectives also get `rhino.comm_bytes`, the per-device bytes on the
    wire by the ring formulas the partitioner prices with. Terminators and the
    combiner bodies of reduce/sort/scatter are skipped (their parent's formula
    covers them); while/case count only their own operands and results and their
    bodies are annotated op by op. Runs anywhere,
    usually after rhino-inline (one flat @main) or after rhino-spmd-partition (local
    sizes).
    """
    name: ClassVar[str] = "rhino-annotate-cost"

    def apply(self, pctx: PassContext, module) -> None:
        total_flops = 0
        for f in I.funcs(module):
            for op in cost.costed_ops(f.operation):
                flops = cost.op_flops(op)
                total_flops += flops
                op.attributes["rhino.flops"] = _count_attr(flops)
                op.attributes["rhino.bytes"] = _count_attr(cost.op_bytes(op))
                comm = cost.collective_bytes(op)
                if comm:
                    op.attributes["rhino.comm_bytes"] = I.ir.FloatAttr.get(
                        I.ir.F64Type.get(), comm)
        pctx.remark(f"{self.name}: {total_flops} flops in total")
