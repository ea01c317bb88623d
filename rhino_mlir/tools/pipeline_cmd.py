"""`rhino compile` of a pipelined program (`--stages` / `--microbatches`; flags in tools/flags.py).

With `--stages N` (or `--microbatches M` > 1) the program is compiled as a pipeline
(launch/build/pipelined.py): stages from `rhino.stage` annotations or the stage ILP for
`--cluster` (default: one CPU rank per device, `1x<N>xcpu`); with several devices per
stage, the sharding inside a stage comes from the planner (`--strategy`, `--level`;
`--strategy dp` = data parallel); then launched like any artifact (`rhino launch`
reads the stages from the manifest).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import RhinoError
from .flags import batch_args


def compile_cmd(a, text: str, src: Path) -> Path:
    """`rhino compile` of a pipelined program; prints one summary line on stderr."""
    from ..launch.artifact import read_artifact
    from ..launch.build.pipelined import compile_pipeline
    if a.local or getattr(a, "plan", None):
        raise RhinoError("--stages/--microbatches take a global program and plan the stages "
                         "themselves; drop --local/--plan")
    from .. import ir as I
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    from .plan_cmd import check_stages
    module = I.parse_module(text, I.new_context(), str(src))
    run_pipeline_str(module, "builtin.module(rhino-inline)", PassContext(module.context))
    check_stages(a, module)
    stages = a.stages or 1
    cluster = a.cluster or f"1x{stages}xcpu"
    schedule = a.schedule or "1f1b"     # a program without backward runs its forwards
    path = compile_pipeline(text, a.output, cluster, stages, a.microbatches or 1, schedule,
                            a.target, batch_args(a), a.iree_flag, not a.no_cache, a.debug,
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
