"""rhino-remat: activation recomputation, per layer group (none | selective | full).

A training step keeps every forward value the backward reads (the residuals) alive from
the forward into the backward; with long sequences or large batches these dominate the
memory. This pass recomputes some of them in the backward instead, per layer
(partition/remat/plan.py finds the loss, the forward/backward split, the layers and their
groups): `selective` keeps each layer's input and weight-matmul outputs and recomputes the
element-wise, norm, softmax and attention-score work; `full` keeps only each layer's input.
The last layer (whose backward starts at the loss) is never recomputed. The clones sit behind
`stablehlo.optimization_barrier` with a value of the backward computed just before they are
needed, plus a -0.0 derived from that value added to their inputs (partition/remat/apply.py):
no backend hoists them into the forward or merges them with the originals, including XLA's
CPU pipeline, which drops barriers before it schedules. `groups` selects layer groups
(default: all; the planner's API is plan_remat / apply_remat); the module attribute
`rhino.remat` reports what was cloned and which values are no longer live across
forward -> backward. Policy none changes nothing. Runs after rhino-inline, before
rhino-accumulate (when both are used) and before rhino-propagate (which gives the barrier
and its anchor their shardings).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..errors import PassError, RhinoError
from ..partition.remat.apply import apply_remat
from ..partition.remat.plan import POLICIES
from .base import ModulePass, PassContext, register


@register
@dataclass(frozen=True)
class Remat(ModulePass):
    """Recompute forward activations in the backward, per layer group (selective or full)."""
    name: ClassVar[str] = "rhino-remat"
    policy: str = "full"
    groups: tuple[int, ...] = ()

    def apply(self, pctx: PassContext, module) -> None:
        if self.policy not in POLICIES:
            raise self.fail(f"unknown policy '{self.policy}'; use one of {', '.join(POLICIES)}")
        if self.policy == "none":
            return
        try:
            # no groups named: every group gets the policy
            report = apply_remat(module, {g: self.policy for g in self.groups},
                                 "none" if self.groups else self.policy, self.name)
        except PassError:
            raise
        except RhinoError as e:                 # about the program as a whole: @main's line
            msg = str(e)
            raise PassError(msg if msg.startswith(self.name) else f"{self.name}: {msg}",
                            op=I.main_func(module).operation) from None
        pctx.stats[self.name] = report
        pctx.remark(f"{self.name}: {report['cloned_ops']} ops cloned in {report['barriers']} layers; "
                    f"{len(report['dropped'])} values ({report['dropped_bytes']} bytes) no longer live "
                    f"across forward -> backward")
