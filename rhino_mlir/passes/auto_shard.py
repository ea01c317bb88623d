"""rhino-auto-shard: choose every value's sharding for a cluster and write it as sdy.

Runs the planner (partition/search/planner.py) on the global program and writes its plan
as `sdy.mesh` + `sdy.sharding` annotations, so rhino-spmd-partition can follow. The
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
from .base import ModulePass, PassContext, register


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

    def apply(self, pctx: PassContext, module) -> None:
        try:
            cl = load_cluster(self.cluster)
            if self.memory:
                cl = cl.with_memory(self.memory)
            res = plan_module(module, Request(cl, self.level, self.strategy,
                                              list(self.batch_args) or None))
        except RhinoError as e:
            raise self.fail(str(e)) from None
        write_result(module, res)
        pctx.stats[self.name] = res.plan
