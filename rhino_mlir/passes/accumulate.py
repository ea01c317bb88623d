"""rhino-accumulate: gradient accumulation over K micro-batches in a loop inside @main.

A training step whose activations do not fit runs its forward and backward K times on 1/K
of the batch and applies the update once. The batch factor, the kind of every op (per
micro-batch, after the batch reduction, constant) and the accumulated values with their
combiners come from partition/stages/microbatch.py, the analysis rhino-pipeline-split uses;
partition/stages/accumulate.py builds the loop. Micro-batch k holds rows k, K+k, 2K+k, ... of
the batch, so a batch dimension sharded over devices stays sharded inside the loop. Sums of
bf16/f16 values accumulate in f32. The result is still one @main (a single-stage artifact stays
one executable) and goes through rhino-propagate and rhino-spmd-partition like any program
with a while loop. Values reduced over the whole batch and then mixed back into per-example
work (a batch-norm statistic) are refused, with the op named. K = 1 changes nothing. Runs
after rhino-inline, and after rhino-remat when both are used (recomputation works on the
top-level forward and backward, not inside the loop), before rhino-propagate (which gives the
new ops their shardings; shardings already on ops are kept: an sdy sharding does not depend
on dimension sizes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..analysis import dataflow, rules
from ..errors import PassError, RhinoError
from ..ir import ir
from ..partition.stages.accumulate import build_loop
from ..partition.stages.microbatch import analyze
from .base import ModulePass, PassContext, register
from .propagate import check_static

_CULPRIT = re.compile(r"^(%[\w#.-]+) \(([\w.]+)\)")


def _culprit(f, msg: str):
    """The op a microbatch error names ('%12 (stablehlo.subtract) ...'), for its source line."""
    m = _CULPRIT.match(msg)
    if not m:
        return None
    for op in I.block_ops(f.regions[0].blocks[0]):
        if op.name == m.group(2) and len(op.results) and I.value_name(op.results[0]) == m.group(1):
            return op
    return None


def accumulate(module, microbatches: int, batch_args: list[int] | None = None,
               who: str = "rhino-accumulate") -> dict:
    """The pass as a function: rewrites `module` in place; returns a summary (microbatches,
    batch, accumulators with their combiners and types, sliced arguments, cloned ops)."""
    if microbatches < 1:
        raise PassError(f"{who}: microbatches must be at least 1, got {microbatches}")
    f = I.main_func(module)
    if microbatches == 1:
        return {"microbatches": 1, "batch": None, "accumulators": [], "sliced_args": [], "cloned_ops": 0}
    check_static(f)
    for op in I.walk_ops(f):
        if op.name in dataflow.CALL_OPS:
            raise PassError(f"{who}: @main calls a function; run rhino-inline first", op=op)
    rules.populate(module)
    try:
        info = analyze(module, microbatches, batch_args)
        if not any(k == "micro" for k in info.kind):
            raise RhinoError("found no per-micro-batch work in @main; name the batch with batch-args")
        out = build_loop(f, info, who)
    except PassError:
        raise
    except RhinoError as e:
        # an error about an op points at its line; one about the batch, at @main's
        raise PassError(f"{who}: {e}", op=_culprit(f, str(e)) or f.operation) from None
    finally:
        rules.strip(module.operation)
    return out


@register
@dataclass(frozen=True)
class Accumulate(ModulePass):
    """Run @main's forward and backward over K micro-batches in a loop, accumulating gradients."""
    name: ClassVar[str] = "rhino-accumulate"
    microbatches: int = 1
    batch_args: tuple[int, ...] = ()

    def apply(self, pctx: PassContext, module) -> None:
        with module.context, ir.Location.unknown():
            summary = accumulate(module, self.microbatches, list(self.batch_args) or None, self.name)
        pctx.stats[self.name] = summary
        if self.microbatches > 1:
            pctx.remark(f"{self.name}: {self.microbatches} micro-batches of {summary['batch']} rows / "
                        f"{self.microbatches}; {len(summary['accumulators'])} accumulated values")
