"""`rhino plan`, and the plan flags shared by `compile` and `run` (DESIGN.md "CLI").

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


def add_plan_flags(p: argparse.ArgumentParser, with_plan: bool = True) -> None:
    p.add_argument("--cluster", metavar="SPEC", help="cluster: 1x4xcpu, 2x8xH100, 1x8xA100+1x8xV100, "
                   "or a JSON cluster file; without it the shardings in the IR are used")
    p.add_argument("--memory", metavar="SIZE", help="memory per device (80GiB, 512MiB, bytes); "
                   "default: the device profile's")
    p.add_argument("--level", choices=("O2", "O3"), default="O2", help="O2 fast search, O3 adds the ILP")
    p.add_argument("--strategy", default="auto", choices=("auto", "dp", "zero1", "zero2", "zero3", "megatron", "dp-tp"),
                   help="auto: search; otherwise that baseline plan")
    p.add_argument("--batch-args", metavar="I,J", help="argument indices whose dim 0 is the batch")
    if with_plan:
        p.add_argument("--plan", metavar="FILE", help="apply this plan.json (made by rhino plan)")


def _batch_args(a) -> list[int] | None:
    if not getattr(a, "batch_args", None):
        return None
    try:
        return [int(x) for x in a.batch_args.split(",") if x.strip()]
    except ValueError:
        raise RhinoError(f"--batch-args expects comma-separated argument indices, got '{a.batch_args}'") from None


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


def plan_text(a, text: str, filename: str, progress: bool = True):
    """The annotated global program to partition, and the Plan (None without planner)."""
    from .. import ir as I
    from ..passes import PassContext
    from ..pipeline import run_pipeline_str
    plan_file = getattr(a, "plan", None)
    if not plan_file and not getattr(a, "cluster", None):
        return text, None
    ctx = I.new_context()
    module = I.parse_module(text, ctx, filename)
    run_pipeline_str(module, "builtin.module(rhino-inline)", PassContext(ctx))
    if plan_file:
        from ..partition.apply import write_plan
        from ..partition.plan import Plan
        if not Path(plan_file).is_file():
            raise RhinoError(f"plan file '{plan_file}' does not exist")
        plan = Plan.from_json(Path(plan_file).read_text(), f"plan file '{plan_file}'")
        write_plan(module, plan)
        return I.print_module(module), plan
    res = run_planner(a, module, progress)
    from ..partition.apply import write_result
    write_result(module, res)
    return I.print_module(module), res.plan


def run_planner(a, module, progress: bool = True):
    from ..cluster import load_cluster
    from ..partition.planner import Request, plan_module
    cl = load_cluster(a.cluster)
    if a.memory:
        cl = cl.with_memory(a.memory)
    say = _progress(progress)
    try:
        return plan_module(module, Request(cl, a.level, a.strategy, _batch_args(a), progress=say))
    finally:
        if say is not None:
            say.stop()


# Without --stages, a cluster of several nodes (or device types) also gets a pipeline
# with one stage per node (at most 4 nodes, else 2 stages) weighed against the
# single-stage plan; at O2 only for programs up to this many ops (O3: always).
AUTO_PIPELINE_OPS = 60_000


def auto_pipeline(a, module, res):
    """(PipelinePlan, seconds) for a multi-node cluster, or None."""
    import time
    from ..partition.pipeline import plan_pipeline
    from ..cluster import load_cluster
    cl = load_cluster(a.cluster)
    if a.memory:
        cl = cl.with_memory(a.memory)
    if getattr(a, "stages", None) or (cl.num_nodes < 2 and cl.homogeneous):
        return None
    if a.level != "O3" and len(res.graph.nodes) > AUTO_PIPELINE_OPS:
        return None
    stages = cl.num_nodes if 2 <= cl.num_nodes <= 4 else 2
    t0 = time.perf_counter()
    try:
        pp = plan_pipeline(module, cl, stages, None, "1f1b", _batch_args(a))
    except RhinoError:
        return None                        # not pipelinable (no batch, loops over it, ...)
    return pp, time.perf_counter() - t0


def _plan_json(plan) -> dict:
    d = asdict(plan)
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
    from .pipeline_cmd import add_pipeline_flags         # --stages --microbatches --schedule
    add_pipeline_flags(p)


def cmd_plan(a) -> int:
    from .. import ir as I
    from ..partition import report
    from ..passes import PassContext
    from ..pipeline import run_pipeline_str
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
    from . import pipeline_cmd
    if pipeline_cmd.wanted(a):
        return pipeline_cmd.plan_cmd(a, module)
    res = run_planner(a, module, progress=not a.json)
    plan = res.plan
    plan.search["parse_and_inline_s"] = parse_s
    plan.search["total_s"] = (plan.search.get("total_s") or 0.0) + parse_s
    pipe = auto_pipeline(a, module, res)
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
            return pipeline_cmd.plan_cmd(a, module, pipe[0], plan.prediction.step_time_s)
    if a.output:
        tmp = Path(a.output + ".tmp")
        tmp.write_text(plan.to_json())
        tmp.replace(a.output)
    if a.json:
        print(json.dumps(_plan_json(plan)))
    else:
        print(report.text(plan), end="")
    return 0
