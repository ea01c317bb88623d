"""`rhino plan`: the plan report, its JSON, and the pipeline it weighs against it (DESIGN.md "CLI").

Where the plan comes from: `--plan FILE`; else, without `--cluster`, the shardings
already written in the IR; else the planner (progress on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ..errors import RhinoError
from .flags import add_pipeline_flags, add_plan_flags, batch_args, wanted


def _progress(enabled: bool):
    """A transient status line on a terminal (nothing when stderr is a file or pipe)."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.console import Console
    status = Console(stderr=True).status("planning")
    status.start()
    import atexit
    atexit.register(status.stop)

    def say(msg: str) -> None:
        status.update(f"planning: {msg}")
    say.stop = status.stop
    return say


def plan_text(a, text: str, filename: str, progress: bool = True, planned=None):
    """The annotated global program to partition, and the Plan (None without planner).
    `planned`: (inlined module, planner Result) already made for this program."""
    from .. import ir as I
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    if planned is not None:
        from ..partition.search.apply import write_result
        write_result(planned[0], planned[1])
        return I.print_module(planned[0]), planned[1].plan
    plan_file = getattr(a, "plan", None)
    if not plan_file and not getattr(a, "cluster", None):
        return text, None
    ctx = I.new_context()
    module = I.parse_module(text, ctx, filename)
    run_pipeline_str(module, "builtin.module(rhino-inline)", PassContext(ctx))
    if plan_file:
        from ..partition.search.apply import write_plan
        from ..partition.search.plan import Plan
        if not Path(plan_file).is_file():
            raise RhinoError(f"plan file '{plan_file}' does not exist")
        plan = Plan.from_json(Path(plan_file).read_text(), f"plan file '{plan_file}'")
        write_plan(module, plan)
        return I.print_module(module), plan
    res = run_planner(a, module, progress)
    from ..partition.search.apply import write_result
    write_result(module, res)
    return I.print_module(module), res.plan


def run_planner(a, module, progress: bool = True):
    from ..cluster import load_cluster
    from ..partition.search.planner import Request, plan_module
    from .train_check import verify
    cl = load_cluster(a.cluster)
    if a.memory:
        cl = cl.with_memory(a.memory)
    say = _progress(progress)
    try:
        return plan_module(module, Request(cl, a.level, a.strategy, batch_args(a), progress=say,
                                           remat=getattr(a, "remat", None) or "auto",
                                           microbatches=getattr(a, "microbatches", None), check=verify))
    finally:
        if say is not None:
            say.stop()


# Without --stages, a cluster of several nodes (or device types) also gets a pipeline
# with one stage per node (at most 4 nodes, else 2 stages) weighed against the
# single-stage plan; at O2 only for programs up to this many ops (O3: always).
AUTO_PIPELINE_OPS = 60_000


def _cluster(a):
    from ..cluster import load_cluster
    cl = load_cluster(a.cluster)
    return cl.with_memory(a.memory) if a.memory else cl


def check_stages(a, module):
    """--stages S larger than the training step's layer count: one line (after the device
    count's own checks, which plan_pipeline makes). Returns the layer analysis of a training
    step (partition/remat/plan.py), else None."""
    from ..cluster import load_cluster
    from ..partition.remat.plan import analyze
    n = load_cluster(a.cluster or f"1x{a.stages}xcpu").num_devices
    if a.stages > n or n % a.stages:
        return None
    try:
        with module.context:
            an = analyze(module, "rhino", batch_args(a))
    except RhinoError:
        return None                          # not a training step: the stage ILP decides
    layers = len(an.layers)
    if layers < 2:                           # no repeated layers (an MLP of distinct widths): the
        from ..partition.remat.plan import cut_pieces   # op-level split cuts between pieces
        pieces = len(cut_pieces(an))
        if a.stages > pieces:
            raise RhinoError(f"--stages {a.stages} is more than the {pieces} pieces the forward of @main "
                             f"can be cut into; use at most {pieces}")
        return an
    if a.stages > layers:
        raise RhinoError(f"--stages {a.stages} is more than the {layers} layers of @main; use at most {layers}")
    return an


def auto_pipeline(a, module, res):
    """(PipelinePlan, seconds) for a multi-node cluster, or None (programs the joint search
    of joint_report.py does not take: no training step or no repeated layers)."""
    import time
    from ..partition.stages.pipeline import plan_pipeline
    cl = _cluster(a)
    if getattr(a, "stages", None) or (cl.num_nodes < 2 and cl.homogeneous):
        return None
    if a.level != "O3" and res.n_nodes > AUTO_PIPELINE_OPS:
        return None
    stages = cl.num_nodes if 2 <= cl.num_nodes <= 4 else 2
    t0 = time.perf_counter()
    try:
        pp = plan_pipeline(module, cl, stages, None, "1f1b", batch_args(a))
    except RhinoError:
        return None                        # not pipelinable (no batch, loops over it, ...)
    return pp, time.perf_counter() - t0


def _plan_json(plan) -> dict:
    values, plan.values = plan.values, {}    # one per value (100k on a 96-layer step): not
    try:                                     # printed, so not deep-copied by asdict either
        d = asdict(plan)                     # microbatches, remat, activation_bytes included
    finally:
        plan.values = values
    d["step_time_s"] = plan.prediction.step_time_s
    d["memory_per_device_bytes"] = plan.prediction.memory_per_device_bytes
    d["search_time_s"] = plan.search["total_s"]
    d["chosen"] = "single-stage"
    d.pop("values", None)
    return d


def register(sub) -> None:
    p = sub.add_parser("plan", help="choose the sharding of every tensor for a cluster and report it")
    p.add_argument("input", help="StableHLO program (.mlir text or bytecode)")
    add_plan_flags(p, with_plan=False)
    p.add_argument("-o", "--output", metavar="PLAN.json", help="write the plan here")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON document on stdout")
    add_pipeline_flags(p)


def cmd_plan(a) -> int:
    from .. import ir as I
    from ..partition.search import report
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    if not a.cluster:
        raise RhinoError("rhino plan needs --cluster (e.g. --cluster 1x4xcpu)")
    src = Path(a.input)
    if not src.is_file():
        raise RhinoError(f"input '{src}' does not exist")
    ctx = I.new_context()
    import time
    t0 = time.perf_counter()
    module = I.parse_module(src.read_bytes(), ctx, str(src))
    run_pipeline_str(module, "builtin.module(rhino-inline)", PassContext(ctx))
    parse_s = time.perf_counter() - t0
    if wanted(a):
        from . import joint_report
        found = joint_report.joint_for_stages(a, module, _cluster(a), check_stages(a, module), run_planner,
                                              progress=not a.json)
        if found is not None:
            s, context, res = found
            return joint_report.emit(a, s, context, _cluster(a), _plan_json(res.plan) if res else None)
        return pipeline_report(a, module)
    from . import joint_report
    cl = _cluster(a)
    res, failed, context, joint, chosen = joint_report.choose(a, module, cl, run_planner, progress=not a.json)
    if res is None:                           # the baselines still shown beside the pipeline
        return joint_report.emit(a, joint, context, cl, {"step_time_s": None, "baselines": failed.baselines})
    plan = res.plan
    plan.search["parse_and_inline_s"] = parse_s
    plan.search["total_s"] = (plan.search.get("total_s") or 0.0) + parse_s
    if chosen:
        return joint_report.emit(a, joint, context, cl, _plan_json(plan))
    pipe = auto_pipeline(a, module, res) if joint is None else None
    if pipe is not None:
        plan.search["pipeline_s"] = pipe[1]
        if pipe[0].fits and pipe[0].step_time_s < plan.prediction.step_time_s:
            if a.json:                        # the single-stage keys, plus the chosen pipeline
                d = _plan_json(plan)
                d["chosen"] = "pipeline"
                d["pipeline"] = pipe[0].to_json()
                d["single_stage_step_time_s"] = d["step_time_s"]
                d["step_time_s"] = pipe[0].step_time_s
                print(json.dumps(d))
                return 0
            print(f"a {pipe[0].stages}-stage pipeline is predicted faster than the best "
                  f"single-stage plan ({pipe[0].step_time_s * 1e3:.3f} ms vs "
                  f"{plan.prediction.step_time_s * 1e3:.3f} ms): chosen", file=sys.stderr)
            return pipeline_report(a, module, pipe[0], plan.prediction.step_time_s)
    if a.output:
        tmp = Path(a.output + ".tmp")
        tmp.write_text(plan.to_json())
        tmp.replace(a.output)
    if a.json:
        print(json.dumps(_plan_json(plan)))
    else:
        print(report.text(plan), end="")
    return 0


def pipeline_report(a, module, pp=None, single=None) -> int:
    """`rhino plan --stages N`: the pipeline plan next to the best single-stage plan
    (`pp`/`single`: already computed by the caller)."""
    from ..cluster import load_cluster
    from ..partition.stages.pipeline import plan_pipeline
    cl = load_cluster(a.cluster)
    if a.memory:
        cl = cl.with_memory(a.memory)
    if pp is None:
        pp = plan_pipeline(module, cl, a.stages, a.microbatches, a.schedule or "1f1b", batch_args(a))
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
