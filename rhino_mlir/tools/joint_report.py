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


def search(a, context, cluster):
    """joint.Search for a multi-node cluster and a training step with repeated layers, or None."""
    from ..partition.stages import joint
    if context is None or context.facts is None or getattr(a, "stages", None):
        return None
    if cluster.num_nodes < 2:
        return None
    s = joint.search(context.space, context.facts, context.roles, context.timer, cluster,
                     cluster.memory_per_device, remat=getattr(a, "remat", None) or "auto")
    return s if s.evaluated else None


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
    if single:
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
        if single is not None:
            print(f"a {s.best.stages}-stage pipeline is predicted faster than the best single-stage plan: "
                  "chosen", file=sys.stderr)
        print(text(s, cluster, single["step_time_s"] if single else None), end="")
    return 0
