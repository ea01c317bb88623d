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


def _dtype(op) -> str:
    for v in list(op.results) + list(op.operands):
        if I.is_tensor(v.type):
            return str(I.elem_of(v.type))
    return "f32"


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
    bodies are annotated op by op. With `device=NAME` (H100, A100, cpu-test, ...) each
    op also gets `rhino.time_s`, its roofline time on that device (collectives: their
    alpha-beta time on the device's intra-node link). Runs anywhere, usually after
    rhino-inline (one flat @main) or after rhino-spmd-partition (local sizes).
    """
    name: ClassVar[str] = "rhino-annotate-cost"
    device: str = ""

    def apply(self, pctx: PassContext, module) -> None:
        profile = link = None
        if self.device:
            from ..cluster import parse_cluster
            cl = parse_cluster(f"1x1x{self.device}")
            profile, link = cl.profile(0), cl.intra_link(cl.groups[0])
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
                if profile is not None:
                    t = cost.wire_time(op.name, comm, cost.group_size(op), link) if comm else \
                        cost.compute_time(flops, cost.op_bytes(op), _dtype(op), profile)
                    op.attributes["rhino.time_s"] = I.ir.FloatAttr.get(I.ir.F64Type.get(), t)
        pctx.remark(f"{self.name}: {total_flops} flops in total")
