"""`rhino plan` on several nodes: the joint pipeline search next to the single-stage plan.

A training step with repeated layers on a multi-node cluster (`--stages auto`) also gets
partition/stages/joint.py's search (stages x tensor x data parallel x micro-batches x
recomputation); the faster of it and the single-stage plan that fit is chosen. The
report puts the Megatron-style 3-D baseline beside it, priced by the same model, with
each plan's model-FLOPs utilization.
"""
from __future__ import annotations

import json
import sys


def search(a, context, cluster, stages: int | None = None):
    """joint.Search for a training step with repeated layers, or None: on a multi-node cluster
    with `--stages auto`, or restricted to `stages` (then on any cluster). `--microbatches K`
    keeps only plans with K micro-batches, `--remat P` only policy P."""
    from ..partition.stages import joint
    if context is None or context.facts is None:
        return None
    if stages is None and (getattr(a, "stages", None) or cluster.num_nodes < 2):
        return None
    remat = getattr(a, "remat", None) or "auto"
    args = (context.space, context.facts, context.roles, context.timer, cluster, cluster.memory_per_device)
    K, B = getattr(a, "microbatches", None), context.facts.batch
    if not K:
        s = joint.search(*args, stages=stages, remat=remat)
        return s if s.evaluated else None
    # K micro-batches of m examples on each of d data-parallel devices: m = B / (K d)
    sizes = sorted({B // (K * d) for d in range(1, cluster.num_devices + 1) if B and B % (K * d) == 0})
    out = None
    for m in sizes:
        s = joint.search(*args, stages=stages, remat=remat, microbatch_sizes=(m,))
        if out is None:
            out = s
            out.best = None
        else:
            out.evaluated += s.evaluated
            out.seconds += s.seconds
        if s.best is not None and s.best.microbatches == K and \
                (out.best is None or s.best.step_time_s < out.best.step_time_s):
            out.best = s.best
    return out if out is not None and out.evaluated else None


def choose(a, module, cluster, run_planner, progress: bool = True):
    """The single-stage planner and, where it applies, the joint search (`--stages auto`):
    (planner Result or None, its NoPlanFits or None, planner context, joint.Search or None,
    whether the pipeline is chosen: it fits and is faster, or no single-stage plan fits)."""
    from ..partition.search.train_plan import NoPlanFits
    try:
        res = run_planner(a, module, progress)
        failed, context = None, getattr(res, "context", None)
    except NoPlanFits as e:
        res, failed, context = None, e, e.context
    s = search(a, context, cluster)
    ok = s is not None and s.best is not None
    chosen = ok and (res is None or s.best.step_time_s < res.plan.prediction.step_time_s)
    if res is None and not ok:
        raise failed
    return res, failed, context, s, chosen


def _repeated(an) -> bool:
    """A training step whose layer analysis has a group of at least two identical layers."""
    return an is not None and any(len(g.layers) >= 2 for g in an.groups)


def joint_for_stages(a, module, cluster, an, run_planner, progress: bool = False):
    """(joint.Search restricted to a.stages, planner context, single-stage Result or None) for a
    training step with repeated layers and neither shardings nor stages of its own, else None
    (the op-level pipeline then). `an`: plan_cmd.check_stages' layer analysis; `run_planner`: plan_cmd's."""
    import argparse
    from ..errors import RhinoError
    from ..partition.search.train_plan import NoPlanFits
    from ..partition.stages.joint_apply import has_stages
    from ..sharding import annotations as A
    if not _repeated(an) or A.module_mesh(module, "rhino compile") is not None or has_stages(module):
        return None
    b = argparse.Namespace(**{**vars(a), "cluster": a.cluster or cluster.spec})   # a cluster file keeps its links
    try:
        res = run_planner(b, module, progress)
        context = getattr(res, "context", None)
    except NoPlanFits as e:
        res, context = None, e.context
    except RhinoError:
        return None         # a request the planner refuses (--microbatches 3 of 8): the op-level path says why
    s = search(a, context, cluster, a.stages)
    if s is None:
        return None                          # more stages than repeated layers, ...: op-level
    if s.best is None:
        raise RhinoError(f"no {a.stages}-stage pipeline of the {s.evaluated} evaluated fits "
                         f"{cluster.memory_per_device / 2**20:.0f}MiB per device on {cluster.spec}; "
                         f"raise --memory or use more stages or devices")
    return s, context, res


def for_replan(a, module, cluster, run_planner, stages: int | None):
    """The joint plan `rhino train` re-plans a joint pipeline artifact to (tools/train_cmd.py):
    the fastest that fits `cluster`'s memory with `stages` stages, else (or without `stages`)
    with any stage count the search takes; None when none fits or the program is not a
    training step with repeated layers (the single-stage planner then)."""
    from ..errors import RhinoError
    from ..partition.search.train_plan import NoPlanFits
    from ..partition.stages import joint
    try:
        context = getattr(run_planner(a, module, False), "context", None)
    except NoPlanFits as e:
        context = e.context
    except RhinoError:
        return None
    if context is None or context.facts is None:
        return None
    args = (context.space, context.facts, context.roles, context.timer, cluster, cluster.memory_per_device)
    for s in ([stages] if stages else []) + [None]:
        best = joint.search(*args, stages=s, remat="auto").best
        if best is not None:
            return best
    return None


def _row(p, cluster) -> dict:
    d = p.to_json()
    n = cluster.num_devices // p.stages
    tps = p.tp_per_stage or [p.tp] * p.stages             # each stage's (n/t x t)
    d["meshes"] = [{"devices": list(range(s * n, (s + 1) * n)), "axes": [["x", n // tps[s]], ["y", tps[s]]]}
                   for s in range(p.stages)]
    d["memory_per_device_bytes"] = max(p.memory_per_stage)
    return d


def plan_json(s, context, cluster, single) -> dict:
    """The chosen pipeline as `rhino plan --json` prints it (`single`: the single-stage plan's
    JSON dict, or None when none fits)."""
    p = s.best
    fx = context.facts
    d = {"chosen": "pipeline", "cluster": cluster.spec, "pipeline": _row(p, cluster),
         "step_time_s": p.step_time_s, "memory_per_device_bytes": max(p.memory_per_stage),
         "mfu": p.mfu, "microbatches": p.microbatches, "stages": p.stages,
         # policy: every stage's when they agree, else "mixed"; stages: the policy of each stage
         "remat": [{"group": lg.group, "layers": lg.layers, "policy": p.remat, "stages": list(p.remat_per_stage)}
                   for lg in fx.groups],
         "remat_per_stage": list(p.remat_per_stage),
         "activation_bytes": int(p.activation_bytes), "memory_budget_bytes": cluster.memory_per_device,
         "single_stage_step_time_s": single["step_time_s"] if single else None,
         "baselines": (single or {}).get("baselines", []), "search": dict((single or {}).get("search", {}))}
    if s.baseline is not None:
        b = s.baseline
        d["baselines"] = d["baselines"] + [{"name": "megatron-3d", "mesh": [["pp", b.stages], ["dp", b.dp], ["tp", b.tp]],
                                           "step_time_s": b.step_time_s, "compute_s": None, "comm_s": None,
                                           "memory_per_device_bytes": max(b.memory_per_stage), "fits": b.fits,
                                           "microbatches": b.microbatches, "remat": b.remat, "mfu": b.mfu}]
    d["search"]["pipeline_s"] = s.seconds
    d["mesh"] = [["x", p.dp], ["y", p.tp]]                   # inside each stage
    d["search_time_s"] = (single or {}).get("search_time_s", 0.0) + s.seconds
    if single and single.get("step_time_s") is not None:
        d["single_stage"] = {k: single[k] for k in ("mesh", "step_time_s", "memory_per_device_bytes") if k in single}
    return d


def text(s, cluster, single_step: float | None) -> str:
    p, b = s.best, s.baseline
    lines = [f"pipeline on {cluster.spec}: {p.summary()}"]
    pols = p.remat_per_stage or [p.remat] * p.stages
    for i, (lay, t, mem, pol) in enumerate(zip(p.layers_per_stage, p.stage_time_s, p.memory_per_stage, pols)):
        lines.append(f"  stage {i}: {lay} layer(s), remat {pol}, {t * 1e3:.1f} ms per micro-batch, "
                     f"memory {mem / 2**30:.2f} GiB")
    if single_step is not None:
        lines.append(f"best single-stage plan: step {single_step:.3f} s predicted")
    else:
        lines.append("no single-stage plan fits")
    if b is not None:
        lines.append(f"megatron-3d baseline (TP within a node, PP across nodes, full recomputation): {b.summary()}"
                     + ("" if b.fits else " (does not fit)"))
        lines.append(f"auto is {b.step_time_s / p.step_time_s:.2f}x its speed (MFU {p.mfu:.1%} vs {b.mfu:.1%})")
    return "\n".join(lines) + "\n"


def emit(a, s, context, cluster, single) -> int:
    if a.json:
        print(json.dumps(plan_json(s, context, cluster, single)))
    else:
        if single is not None and single.get("step_time_s") is not None and not getattr(a, "stages", None):
            print(f"a {s.best.stages}-stage pipeline is predicted faster than the best single-stage plan: "
                  "chosen", file=sys.stderr)
        print(text(s, cluster, single["step_time_s"] if single else None), end="")
    return 0
