"""The check of a plan with recomputation or micro-batches on the program it will become.

The planner prices such plans on the program as given (partition/search/training.py); this
applies them to a copy the way `rhino compile` does (shardings written, rhino-remat and
rhino-accumulate, rhino-propagate) and runs the memory model on it. The planner calls it
through `Request.check` for a chosen plan near the budget: the passes sit above the
partition layer, so the tools hand the function down.
"""
from __future__ import annotations

from .. import ir as I
from ..errors import RhinoError


def verify(module, g, cand, budget: float) -> bool:
    """Whether `cand` (with its recomputation and micro-batches) fits `budget` by the memory
    model on the rewritten program: a copy of `module` annotated with its shardings (`g`:
    graph.build's graph of `module`), rhino-remat and rhino-accumulate applied, rhino-propagate
    run. Sets cand.memory["model_peak"]."""
    from ..passes.auto_shard import apply_training
    from ..partition.search.apply import write
    from ..partition.spmd.memory import memory_report
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    ch = cand.train
    ctx = I.new_context()
    copy_ = I.parse_module(I.print_module(module), ctx)
    mine = {}
    for a, b in zip(I.walk_ops(I.main_func(module)), I.walk_ops(I.main_func(copy_))):
        mine.update(zip(a.results, b.results))
    sh = cand.shardings()
    results = cand.results or [sh[v] for v in g.outputs]
    write(copy_, cand.mesh, [sh[a] for a in g.args],
          {mine[g.values[v]]: s for v, s in enumerate(sh) if g.producer[v] >= 0 and g.values[v] in mine}, results)
    policies = {grp: p for grp, p in ch.policies.items() if p != "none"}
    try:
        apply_training(copy_, policies, ch.microbatches)
        run_pipeline_str(copy_, "builtin.module(rhino-propagate)", PassContext(ctx))
        rep = memory_report(copy_)
    except RhinoError:
        return False
    cand.memory["model_peak"] = max(rep.peak, rep.xla_comparable)
    return cand.memory["model_peak"] <= budget

