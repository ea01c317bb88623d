"""rhino-auto-shard: choose every value's sharding for a cluster and write it as sdy.

Runs the planner (partition/search/planner.py) on the global program and writes its plan
as `sdy.mesh` + `sdy.sharding` annotations, so rhino-spmd-partition can follow. A training
step's plan may also recompute activations and accumulate micro-batches: those choices are
applied here through rhino-remat and rhino-accumulate (after the shardings are written, as
`rhino compile` does), so the program that follows is the one the plan was priced for.
`remat` and `microbatches` (0: the planner's choice) restrict them as the CLI flags do. The
plan itself (predictions, baselines) is left in the pass context's stats. Runs after
rhino-inline; shardings already on @main's arguments (and their mesh) are kept fixed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..cluster import load_cluster
from ..errors import RhinoError
from ..partition.search.apply import write_result
from ..partition.search.planner import Request, plan_module
from ..partition.remat.apply import apply_remat
from .accumulate import accumulate
from .base import ModulePass, PassContext, register


def training_choices(plan) -> tuple[dict, int]:
    """({layer group: policy} other than none, micro-batch count) of a Plan or its JSON dict."""
    d = plan if isinstance(plan, dict) else {"remat": plan.remat, "microbatches": plan.microbatches}
    policies = {int(r["group"]): r["policy"] for r in d.get("remat") or [] if r.get("policy", "none") != "none"}
    return policies, int(d.get("microbatches") or 1)


def apply_training(module, policies: dict, microbatches: int, batch_args: list[int] | None = None) -> None:
    """rhino-remat then rhino-accumulate, as a plan chose them (shardings already written)."""
    from .. import ir as I
    if policies:
        apply_remat(module, policies)
    if microbatches > 1:
        with module.context, I.ir.Location.unknown():
            accumulate(module, microbatches, batch_args)


@register
@dataclass(frozen=True)
class AutoShard(ModulePass):
    """Choose every value's sharding for a cluster (the planner) and write it as sdy."""
    name: ClassVar[str] = "rhino-auto-shard"
    cluster: str = "1x4xcpu"
    memory: str = ""
    level: str = "O2"
    strategy: str = "auto"
    batch_args: tuple[int, ...] = ()
    remat: str = "auto"
    microbatches: int = 0

    def apply(self, pctx: PassContext, module) -> None:
        try:
            cl = load_cluster(self.cluster)
            if self.memory:
                cl = cl.with_memory(self.memory)
            res = plan_module(module, Request(cl, self.level, self.strategy, list(self.batch_args) or None,
                                              remat=self.remat, microbatches=self.microbatches or None))
            write_result(module, res)
            apply_training(module, *training_choices(res.plan), list(self.batch_args) or None)
        except RhinoError as e:
            raise self.fail(str(e)) from None
        pctx.stats[self.name] = res.plan
