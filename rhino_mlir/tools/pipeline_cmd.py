"""`rhino compile` of a pipelined program (`--stages` / `--microbatches`; flags in tools/flags.py).

A training step with repeated layers is compiled from the joint pipeline plan
(partition/stages/joint.py, reported by tools/joint_report.py): with `--stages S` the joint
search restricted to S stages, with `--stages auto` on a multi-node cluster when the planner
chooses the pipeline over the single-stage plan (`auto_compile`). Its stages (layers per
stage), in-stage mesh (data x tensor parallel), micro-batches and recomputation are what
launch/build/pipelined.py compiles. Other programs with `--stages S` (or
`--microbatches M` > 1) take the op-level pipeline: stages from `rhino.stage` annotations
or the stage ILP for `--cluster` (default: one CPU rank per device, `1x<N>xcpu`); with
several devices per stage, the sharding inside a stage comes from the planner
(`--strategy`, `--level`; `--strategy dp` = data parallel). Either is launched like any
artifact (`rhino launch` reads the stages from the manifest).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import RhinoError
from .flags import batch_args


def _cluster(a, stages: int):
    from ..cluster import load_cluster
    cl = load_cluster(a.cluster or f"1x{stages}xcpu")
    return cl.with_memory(a.memory) if a.memory else cl


def _parse(text: str, src: Path):
    from .. import ir as I
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    module = I.parse_module(text, I.new_context(), str(src))
    run_pipeline_str(module, "builtin.module(rhino-inline)", PassContext(module.context))
    return module


def auto_compile(a, text: str, src: Path):
    """`rhino compile --stages auto` on a multi-node cluster: (artifact path, None) when the
    planner chooses the joint pipeline, else (None, (module, planner Result)) for the
    single-stage compile; (None, None) where the joint search does not apply."""
    from ..sharding import annotations as A
    from . import joint_report
    from .plan_cmd import run_planner
    if a.local or getattr(a, "plan", None) or not a.cluster or a.stages is not None:
        return None, None
    cl = _cluster(a, 1)
    if cl.num_nodes < 2:
        return None, None
    module = _parse(text, src)
    from ..partition.stages.joint_apply import has_stages
    if A.module_mesh(module, "rhino compile") is not None or has_stages(module):
        return None, None
    res, _, _, s, chosen = joint_report.choose(a, module, cl, run_planner)
    if not chosen:
        return None, (module, res)
    single = res.plan.prediction.step_time_s if res is not None else None
    print(f"a {s.best.stages}-stage pipeline is predicted faster than the best single-stage plan"
          + (f" ({s.best.step_time_s * 1e3:.3f} ms vs {single * 1e3:.3f} ms)" if single else
             " (no single-stage plan fits)") + ": compiled", file=sys.stderr)
    return _compile(a, text, src, s.best.stages, cl.spec, s.best.to_json()), None


def compile_cmd(a, text: str, src: Path) -> Path:
    """`rhino compile --stages S` (S > 1) of a global program."""
    if a.local or getattr(a, "plan", None):
        raise RhinoError("--stages/--microbatches take a global program and plan the stages "
                         "themselves; drop --local/--plan")
    from .joint_report import joint_for_stages
    from .plan_cmd import check_stages, run_planner
    module = _parse(text, src)
    an = check_stages(a, module)
    stages = a.stages or 1
    cluster = a.cluster or f"1x{stages}xcpu"
    found = joint_for_stages(a, module, _cluster(a, stages), an, run_planner) if stages > 1 else None
    return _compile(a, text, src, stages, cluster, found[0].best.to_json() if found else None)


def _compile(a, text: str, src: Path, stages: int, cluster: str, joint: dict | None) -> Path:
    from ..launch.artifact import read_artifact
    from ..launch.build.pipelined import compile_pipeline
    schedule = a.schedule or "1f1b"     # a program without backward runs its forwards
    if joint is not None:               # the budget it was planned under, for rhino train's re-plans
        joint = dict(joint, memory_budget_bytes=_cluster(a, stages).memory_per_device)
    path = compile_pipeline(text, a.output, cluster, stages, a.microbatches or 1, schedule,
                            a.target, batch_args(a), a.iree_flag, not a.no_cache, a.debug,
                            str(src), a.memory, a.strategy, a.level, joint=joint)
    m = read_artifact(path, verify=False).manifest
    s = m["schedule"]
    pred = s.get("predicted")
    j = s.get("joint")
    print(f"wrote {path}: {s['stages']} stage(s) x {m['num_devices'] // s['stages']} device(s), "
          f"{s['microbatches']} micro-batch(es), {s['kind']}, {len(m['programs'])} program(s), "
          f"compile {m['compile']['seconds']:.2f} s"
          + (f"; joint plan: layers {j['layers_per_stage']}, tp {j['tp']} x dp {j['dp']}, recomputation "
             f"{j['remat_applied']}" if j else "")
          + (f"; predicted step {pred['step_time_s'] * 1e3:.3f} ms" if pred else "")
          + (f", bubble {pred['bubble']:.0%}" if pred and pred.get("bubble") is not None else ""),
          file=sys.stderr)
    return path
