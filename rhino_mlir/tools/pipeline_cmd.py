"""Pipeline flags of `rhino compile` / `rhino run`: --stages, --microbatches, --schedule.

With `--stages N` (or `--microbatches M` > 1) the program is compiled as a pipeline
(launch/build_pipeline.py): stages from `rhino.stage` annotations or the stage ILP for
`--cluster` (default: one CPU rank per device, `1x<N>xcpu`); with several devices per
stage, the sharding inside a stage comes from the planner (`--strategy`, `--level`;
`--strategy dp` = data parallel); then launched like any artifact (`rhino launch`
reads the stages from the manifest).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import RhinoError


def add_pipeline_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stages", type=int, metavar="N",
                   help="pipeline stages (each on devices/N of the cluster); default: no pipeline")
    p.add_argument("--microbatches", type=int, metavar="M",
                   help="micro-batches per step (must divide the batch); default 1")
    p.add_argument("--schedule", choices=("1f1b", "gpipe", "inference"), default=None,
                   help="pipeline schedule (default 1f1b; a forward-only program just streams)")


def wanted(a) -> bool:
    """A pipeline was asked for (`--stages 1` asks for one stage: no pipeline)."""
    return (getattr(a, "stages", None) or 1) > 1 or (getattr(a, "microbatches", None) or 1) > 1


def compile_cmd(a, text: str, src: Path) -> Path:
    """`rhino compile` of a pipelined program; prints one summary line on stderr."""
    from ..launch.artifact import read_artifact
    from ..launch.build_pipeline import compile_pipeline
    from .plan_cmd import _batch_args
    if a.local or getattr(a, "plan", None):
        raise RhinoError("--stages/--microbatches take a global program and plan the stages "
                         "themselves; drop --local/--plan")
    stages = a.stages or 1
    cluster = a.cluster or f"1x{stages}xcpu"
    schedule = a.schedule or "1f1b"     # a program without backward runs its forwards
    path = compile_pipeline(text, a.output, cluster, stages, a.microbatches or 1, schedule,
                            a.target, _batch_args(a), a.iree_flag, not a.no_cache, a.debug,
                            str(src), a.memory, a.strategy, a.level)
    m = read_artifact(path, verify=False).manifest
    s = m["schedule"]
    pred = s.get("predicted")
    print(f"wrote {path}: {s['stages']} stage(s) x {m['num_devices'] // s['stages']} device(s), "
          f"{s['microbatches']} micro-batch(es), {s['kind']}, {len(m['programs'])} program(s), "
          f"compile {m['compile']['seconds']:.2f} s"
          + (f"; predicted step {pred['step_time_s'] * 1e3:.3f} ms, bubble {pred['bubble']:.0%}"
             if pred else ""), file=sys.stderr)
    return path


def plan_cmd(a, module, pp=None, single=None) -> int:
    """`rhino plan --stages N`: the pipeline plan next to the best single-stage plan
    (`pp`/`single`: already computed by the caller)."""
    import json

    from ..cluster import load_cluster
    from ..partition.pipeline import plan_pipeline
    from .plan_cmd import _batch_args, run_planner
    cl = load_cluster(a.cluster)
    if a.memory:
        cl = cl.with_memory(a.memory)
    if pp is None:
        pp = plan_pipeline(module, cl, a.stages, a.microbatches, a.schedule or "1f1b", _batch_args(a))
    if single is None:
        try:
            single = run_planner(a, module, progress=False).plan.prediction.step_time_s
        except RhinoError as e:               # e.g. no single-stage plan fits the memory
            single = str(e)
    if a.json:
        d = pp.to_json()
        d["single_stage_step_time_s"] = single
        print(json.dumps(d))
        return 0
    print(f"pipeline on {cl.spec}: {pp.summary()}")
    for s, (busy, mem, mesh) in enumerate(zip(pp.stage_busy_s, pp.memory_per_stage, pp.meshes)):
        ops = sum(1 for v in pp.stage_of.values() if v == s)
        print(f"  stage {s}: devices {mesh['devices']} ({mesh['device']}), {ops} op(s), busy "
              f"{busy * 1e3:.3f} ms per step, memory {mem / 2**20:.1f} MiB")
    if isinstance(single, float):
        print(f"best single-stage plan (rhino planner): step {single * 1e3:.3f} ms predicted; "
              f"pipeline is {single / pp.step_time_s:.2f}x its speed")
    else:
        print(f"single-stage plan: {single}")
    if len(pp.candidates) > 1:
        print("candidates: " + ", ".join(f"S={c['stages']} M={c['microbatches']} "
                                          f"{c['step_time_s'] * 1e3:.3f} ms" for c in pp.candidates))
    return 0
