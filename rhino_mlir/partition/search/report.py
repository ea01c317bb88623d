"""The human-readable plan report (`rhino plan`), from a Plan."""
from __future__ import annotations

from .plan import Plan


def _t(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 10 else f"{s:.2f} s"


def _b(n: float) -> str:
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:.2f} {unit}"
    return f"{n:.0f} B"


def _policy(remat: list) -> str:
    """One word for a plan's recomputation: none, selective, full, or mixed."""
    ps = {r.get("policy", "none") for r in remat} - {"none"}
    return "none" if not ps else ps.pop() if len(ps) == 1 else "mixed"


def text(plan: Plan) -> str:
    p = plan.prediction
    mesh = " x ".join(f"{n}={s}" for n, s in plan.mesh)
    lines = [f"cluster {plan.cluster}  mesh [{mesh}]  strategy {plan.strategy}  level {plan.level}",
             f"predicted step time {_t(p.step_time_s)}  (compute {_t(p.compute_s)}, "
             f"communication {_t(p.comm_s)})",
             f"memory per device {_b(p.memory_per_device_bytes)}"
             + (f" of {_b(plan.memory_budget_bytes)}" if plan.memory_budget_bytes else "")
             + "  (" + ", ".join(f"{k} {_b(v)}" for k, v in p.memory.items()) + ")"]
    groups = [r for r in plan.remat if r.get("policy", "none") != "none"]
    lines.append(f"micro-batches {plan.microbatches}"
                 + (" (gradients accumulated in one program)" if plan.microbatches > 1 else "")
                 + "  recomputation " + (", ".join(f"group {r['group']} ({r['layers']} layer(s)) {r['policy']}"
                                                   for r in groups) or "none")
                 + f"  activations kept {_b(plan.activation_bytes)} per device")
    if p.bytes_per_axis:
        lines.append("bytes per device by mesh axes: " + ", ".join(
            f"{{{k}}} {_b(v)}" for k, v in sorted(p.bytes_per_axis.items())))
    s = plan.search
    lines.append("search " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in s.items()
                                      if isinstance(v, (int, float))))
    if plan.groups:
        lines += ["", "decisions (largest groups of tied dimensions; 'layers' = identical layers sharing one):",
                  f"  {'group':>5} {'layers':>6} {'axes':<10} {'bytes':>11}  example"]
        for g in plan.groups:
            lines.append(f"  {g['group']:>5} {g['layers']:>6} {','.join(g['axes']) or '-':<10} "
                         f"{_b(g['bytes']):>11}  {g['example']}")
    if plan.baselines:
        lines += ["", f"  {'plan':<16} {'mesh':<12} {'mb':>3} {'remat':<9} {'step time':>12} {'compute':>12} "
                  f"{'comm':>12} {'memory':>11}  fits"]
        rows = [{"name": "auto" if plan.strategy == "auto" else plan.strategy,
                 "mesh": plan.mesh, "step_time_s": p.step_time_s, "compute_s": p.compute_s,
                 "comm_s": p.comm_s, "memory_per_device_bytes": p.memory_per_device_bytes, "fits": True,
                 "microbatches": plan.microbatches, "remat": _policy(plan.remat)}]
        rows += [b for b in plan.baselines if b["name"] != plan.strategy]
        for b in rows:
            m = "x".join(str(sz) for _, sz in b["mesh"])
            lines.append(f"  {b['name']:<16} {m:<12} {b.get('microbatches', 1):>3} {b.get('remat', 'none'):<9} "
                         f"{_t(b['step_time_s']):>12} {_t(b['compute_s']):>12} "
                         f"{_t(b['comm_s']):>12} {_b(b['memory_per_device_bytes']):>11}  "
                         f"{'yes' if b['fits'] else 'no'}")
    return "\n".join(lines) + "\n"
