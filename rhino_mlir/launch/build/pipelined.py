"""Global program -> pipelined artifact directory: stages, split, partition, compile.

    compile_pipeline(text, out, cluster="1x4xcpu", stages=2, microbatches=4)

1. rhino-inline; stage of every op: `rhino.stage` annotations when the program has them,
   else partition/stages/pipeline.py's plan (the ILP) for the cluster;
2. the sub-mesh of each stage: the program's own mesh when it has one (its size must be
   devices / stages); else, with more than one device per stage, `strategy="dp"`: data
   parallel over `"d"` (the batch arguments' batch dimension sharded over it), or any
   other strategy: the single-stage planner (partition/search/planner.py) run for one stage's
   devices, its shardings kept by every stage;
   with `joint` (a JointPlan of partition/stages/joint.py, as JSON) instead: the planner's
   shardings restricted to the plan's mesh shape ["x"=dp, "y"=tp] (no memory budget: it
   would be the whole program's, which one stage never holds), then rhino-remat with each
   stage's policy on its repeated layers, then `rhino.stage` from the plan's layers per
   stage (partition/stages/joint_apply.py); stages and micro-batches are the plan's;
3. rhino-pipeline-split; then each stage function alone, as `@main` with its stage's
   mesh: rhino-propagate + rhino-spmd-partition (when the mesh has more than one
   device), rhino-lower-collectives, rhino-legalize-for-iree, rhino-strip-sharding,
   IREE (iree_compile.py, cached);
4. the manifest: `stages` (devices, mesh, programs per function), `ranks`, one program
   entry per stage function with its local value specs, the global `inputs`/`outputs`
   of @main (replicated: rank 0 slices), and `schedule` = {kind, stages, microbatches,
   pipeline table, prediction, joint: the joint plan and what was applied, or None}.
Compile side only (imports jaxlib through rhino_mlir.ir).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from ... import ir as rir
from ...cluster import load_cluster
from ...errors import RhinoError
from ...sharding import annotations as A
from ...partition.stages.schedule import SCHEDULES
from ...passes import PassContext
from ...passes.pass_pipeline import run_pipeline_str
from ..artifact import package_version, write_artifact
from .single_stage import LOWER_PIPELINE, local_signature
from .iree_compile import compile_many, driver_of, iree_version, target_flags


def _main_specs(module) -> tuple[list[dict], list[dict]]:
    """Global value specs of @main (replicated: rank 0 reads and writes whole arrays)."""
    sig = local_signature(module)
    for v in sig["inputs"] + sig["outputs"]:
        v["sharding"], v["local_shape"] = None, v["shape"]
    return sig["inputs"], sig["outputs"]


def _has_stages(module) -> bool:
    f = rir.main_func(module)
    return any("rhino.stage" in op.attributes for op in rir.walk_ops(f))


def _data_parallel(module, n: int, microbatches: int, batch_args) -> str:
    """The program with mesh ["d"=n] and its batch arguments sharded over "d"."""
    from ...analysis import rules
    from ...frontend import annotate
    from ...partition.stages.microbatch import analyze
    from ...sharding import Mesh
    with module.context, rir.ir.Location.unknown():
        rules.populate(module)
        info = analyze(module, microbatches, batch_args)
    specs = {}
    for i, d in info.arg_views.items():
        rank = len(rir.shape_of(rir.main_func(module).regions[0].blocks[0].arguments[i].type))
        specs[i] = tuple("d" if k == d else None for k in range(rank))
    return annotate(str(module), Mesh("mesh", (("d", n),)), specs)


def _planned(module, cl, n: int, strategy: str, level: str, batch_args) -> None:
    """Shardings inside a stage from the single-stage planner, for one stage's n devices."""
    from ...partition.search.apply import write_result
    from ...partition.search.planner import Request, plan_module
    g = cl.groups[0]
    sub = load_cluster(f"1x{n}x{g.profile.name}")
    if cl.memory is not None:
        sub = sub.with_memory(cl.memory)
    write_result(module, plan_module(module, Request(sub, level, strategy, batch_args)))


def _joint_mesh(d: int, t: int) -> tuple:
    """The in-stage mesh of a joint plan: "x" data parallel, "y" tensor parallel (joint_report's names)."""
    return tuple((n, k) for n, k in (("x", d), ("y", t)) if k > 1)


def _prepare_joint(module, cl, joint, ba, strategy: str, level: str) -> dict:
    """Shardings on the joint plan's (d, t) mesh, its recomputation, `rhino.stage` from its
    layers per stage; returns what was applied (for the manifest)."""
    from ...partition.search.apply import write_result
    from ...partition.search.planner import Request, plan_module
    from ...partition.remat.apply import apply_remat
    from ...partition.stages.joint_apply import layer_map, layers_of, remat_layers, write_stages
    tps = joint.get("tp_per_stage") or [joint["tp"]]
    if len(set(tps)) > 1:
        raise RhinoError(f"the joint plan gives its stages different tensor-parallel ways {tps}; the pipeline "
                         f"compile builds one mesh shape for all stages: plan with one tp for every stage")
    axes = _joint_mesh(joint["dp"], joint["tp"])
    if axes:
        # the planner restricted to the stage's mesh shape, by default its baseline that the
        # joint search priced (layer_costs.py: Megatron over "y", data parallel over "x"), so
        # the compiled stage is the predicted one; its budget is the whole program's on one
        # stage's devices, which a stage (some layers, one micro-batch) never needs
        if strategy == "auto":
            strategy = "dp-tp" if len(axes) == 2 else "megatron" if axes[0][0] == "y" else "dp"
        sub = load_cluster(f"1x{joint['dp'] * joint['tp']}x{cl.groups[0].profile.name}").with_memory(1 << 60)
        res = plan_module(module, Request(sub, level, strategy, ba, mesh=axes,
                                          remat="none", microbatches=1))
        write_result(module, res)
    per_stage = joint.get("remat_per_stage") or [joint["remat"]] * joint["stages"]
    lm = layer_map(layers_of(module, ba), joint["layers_per_stage"])     # before rhino-remat changes them
    layers, applied = remat_layers(lm, per_stage)
    if layers:
        apply_remat(module, {}, "none", "rhino compile", layers=layers)
    write_stages(module, lm, ba)
    return {"mesh": [list(a) for a in axes], "strategy": strategy if axes else None,
            "remat_applied": applied, "remat_per_stage": per_stage}


def prepare(text: str, cluster: str, stages: int, microbatches: int, schedule: str = "1f1b",
            batch_args: Sequence[int] | None = None, filename: str = "<input>", debug: bool = False,
            memory: str | None = None, strategy: str = "dp", level: str = "O2", joint: dict | None = None):
    """(pipelined module, stage plan or None, devices per stage, what a joint plan applied or None)."""
    cl = load_cluster(cluster)
    if memory:
        cl = cl.with_memory(memory)
    if stages < 1:
        raise RhinoError(f"--stages must be at least 1, got {stages}")
    if stages > cl.num_devices:
        raise RhinoError(f"{stages} stages need at least {stages} devices but cluster '{cl.spec}' has "
                         f"{cl.num_devices}")
    if cl.num_devices % stages:
        raise RhinoError(f"{stages} stages do not divide the {cl.num_devices} devices of '{cl.spec}'")
    n = cl.num_devices // stages
    ctx = rir.new_context()
    module = rir.parse_module(text, ctx, filename)
    pctx = PassContext(ctx, debug=debug)
    run_pipeline_str(module, "rhino-inline", pctx)
    mesh = A.module_mesh(module, "rhino compile")
    if mesh is not None and mesh.size != n:
        raise RhinoError(f"the program's mesh @{mesh.name} has {mesh.size} devices but each of "
                         f"{stages} stages gets {n} of the cluster's {cl.num_devices}; annotate it "
                         f"for a {n}-device sub-mesh")
    ba = list(batch_args) if batch_args else None
    applied = None
    if joint is not None:
        if mesh is not None:
            raise RhinoError(f"the program already has mesh @{mesh.name}; a joint pipeline plan chooses the "
                             f"shardings inside its stages: drop the annotations or pass --stages 1")
        applied = _prepare_joint(module, cl, joint, ba, strategy, level)
    elif mesh is None and n > 1 and strategy == "dp":
        module = rir.parse_module(_data_parallel(module, n, microbatches, ba), ctx, filename)
    elif mesh is None and n > 1:
        _planned(module, cl, n, strategy, level, ba)
    plan = None
    if applied is None and not _has_stages(module):
        from ...partition.stages.pipeline import annotate, plan_pipeline
        plan = plan_pipeline(module, cl, stages, microbatches, schedule, ba)
        annotate(module, plan)
    opts = f"stages={stages} microbatches={microbatches}"
    if ba:
        opts += " batch-args=" + ",".join(map(str, ba))
    run_pipeline_str(module, f"rhino-pipeline-split{{{opts}}}", pctx)
    return module, plan, n, applied


def compile_pipeline(text: str, out: str | Path, cluster: str = "1x4xcpu", stages: int = 2,
                     microbatches: int = 1, schedule: str = "1f1b", target: str = "llvm-cpu",
                     batch_args: Sequence[int] | None = None, extra_flags: Sequence[str] = (),
                     use_cache: bool = True, debug: bool = False, filename: str = "<input>",
                     memory: str | None = None, strategy: str = "dp", level: str = "O2",
                     joint: dict | None = None) -> Path:
    """Partition, split and compile a global program into a pipelined artifact. `joint`: a
    joint pipeline plan (partition/stages/joint.py's JointPlan.to_json()), whose stages,
    micro-batches, in-stage mesh, recomputation and layers per stage are compiled."""
    from ...passes.pipeline_split import function_text, read_table
    if schedule not in SCHEDULES:
        raise RhinoError(f"unknown schedule '{schedule}' (choose from {', '.join(SCHEDULES)})")
    flags = target_flags(target, extra_flags)
    t0 = time.perf_counter()
    gctx = rir.new_context()
    gmod = rir.parse_module(text, gctx, filename)
    run_pipeline_str(gmod, "rhino-inline", PassContext(gctx))
    inputs, outputs = _main_specs(gmod)
    if joint is not None:
        stages, microbatches, schedule = joint["stages"], joint["microbatches"], joint.get("schedule", schedule)
    module, plan, n, applied = prepare(text, cluster, stages, microbatches, schedule, batch_args, filename,
                                       debug, memory, strategy, level, joint)
    table = read_table(module)
    if schedule == "inference" and any(f["name"] == "bwd" for f in table["functions"]):
        raise RhinoError("schedule 'inference' but the program has backward functions; "
                         "use --schedule gpipe or 1f1b")
    locals_, lowered, sigs = {}, {}, {}
    for fn in table["functions"]:
        name = f"stage{fn['stage']}.{fn['name']}"
        ctx = rir.new_context()
        m = rir.parse_module(function_text(module, fn["stage"], fn["name"]), ctx, name)
        pctx = PassContext(ctx, debug=debug)
        if A.module_mesh(m, name) is not None:
            run_pipeline_str(m, "rhino-propagate,rhino-spmd-partition", pctx)
        locals_[name] = str(m)
        sigs[name] = local_signature(m)
        run_pipeline_str(m, LOWER_PIPELINE % "import", pctx)
        sigs[name]["imports"] = sorted({f.attributes["sym_name"].value for f in rir.funcs(m)
                                        if f.attributes["sym_name"].value.startswith("rhino.")})
        lowered[name] = str(m)
    part_s = time.perf_counter() - t0
    res = compile_many(lowered, target, extra_flags, use_cache=use_cache)
    tname = target.replace("-", "_")
    files: dict[str, bytes | str] = {"programs/global.mlir": text}
    programs = {}
    for name, r in res.items():
        files[f"programs/{name}.mlir"] = locals_[name]
        files[f"executables/{name}.{tname}.vmfb"] = r.vmfb
        programs[name] = {"mlir": f"programs/{name}.mlir", "vmfb": f"executables/{name}.{tname}.vmfb",
                          "entry": "main", "imports": sigs[name]["imports"],
                          "inputs": sigs[name]["inputs"], "outputs": sigs[name]["outputs"]}
    mesh = table["mesh"] or {"name": "mesh", "axes": [["d", 1]]}
    st = [{"stage": s, "devices": list(range(s * n, (s + 1) * n)), "mesh": mesh,
           "programs": {f["name"]: f"stage{s}.{f['name']}" for f in table["functions"] if f["stage"] == s}}
          for s in range(stages)]
    prediction = plan.to_json() if plan is not None else None
    if prediction is not None:
        files["plan.json"] = json.dumps({"pipeline": prediction}, indent=1)
    if joint is not None:
        joint = dict(joint, **applied)
        files["plan.json"] = json.dumps({"joint": joint}, indent=1)
    manifest = {
        "rhino_mlir": package_version(),
        "iree": {"version": iree_version(), "target": target, "driver": driver_of(target),
                 "flags": flags, "mode": "import"},
        "num_devices": stages * n,
        "meshes": {},
        "stages": st,
        "ranks": [{"rank": r, "stage": r // n, "device": r % n,
                   "program": next(iter(st[r // n]["programs"].values()))} for r in range(stages * n)],
        "programs": programs,
        "inputs": inputs, "outputs": outputs,
        "schedule": {"kind": schedule, "stages": stages, "microbatches": table["microbatches"],
                     "cluster": cluster, "pipeline": table, "joint": joint,
                     "predicted": _predicted(plan, joint)},
        "compile": {"seconds": round(sum(r.seconds for r in res.values()), 3),
                    "cache_hit": all(r.cache_hit for r in res.values()),
                    "partition_seconds": round(part_s, 3)},
    }
    files["report.md"] = _report(manifest, filename, plan, joint)
    return write_artifact(out, manifest, files)


def _predicted(plan, joint: dict | None) -> dict | None:
    if joint is not None:
        return {"step_time_s": joint["step_time_s"], "bubble": None, "memory_per_stage": joint["memory_per_stage"],
                "stage_time_s": joint["stage_time_s"], "mfu": joint.get("mfu")}
    if plan is None:
        return None
    return {"step_time_s": plan.step_time_s, "bubble": plan.bubble, "memory_per_stage": plan.memory_per_stage,
            "gantt": plan.gantt}


def _joint_lines(j: dict) -> list[str]:
    mesh = " x ".join(f"{a}={k}" for a, k in j["mesh"]) or "one device"
    return [f"- joint pipeline plan: {j['stages']} stage(s) x (tp {j['tp']} x dp {j['dp']}), "
            f"{j['microbatches']} micro-batch(es) of {j['micro_batch_per_device']}/device, layers per stage "
            f"{j['layers_per_stage']}, recomputation {j['remat']} (applied: {j['remat_applied']})",
            f"- in-stage mesh {mesh}" + (f", shardings: the planner's {j['strategy']} plan on that mesh "
                                         f"shape" if j["mesh"] else ""),
            f"- predicted: step {j['step_time_s'] * 1e3:.3f} ms, MFU {j.get('mfu', 0):.1%}, memory per stage "
            + ", ".join(f"{b / 2**20:.1f}" for b in j["memory_per_stage"]) + " MiB"]


def _report(m: dict, source: str, plan, joint: dict | None = None) -> str:
    s = m["schedule"]
    lines = [f"# rhino pipelined artifact: {source}", "",
             f"- {s['stages']} stage(s) x {m['num_devices'] // s['stages']} device(s), "
             f"{s['microbatches']} micro-batch(es), schedule {s['kind']}",
             f"- target: {m['iree']['target']} (IREE {m['iree']['version']})"]
    if plan is not None:
        lines.append(f"- predicted: {plan.summary()}")
    if joint is not None:
        lines += _joint_lines(joint)
    lines += ["", "| stage | devices | functions |", "|---|---|---|"]
    for st in m["stages"]:
        lines.append(f"| {st['stage']} | {st['devices']} | {', '.join(st['programs'])} |")
    return "\n".join(lines) + "\n"
