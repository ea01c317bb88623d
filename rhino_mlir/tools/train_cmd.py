"""`rhino train`: run a train-step artifact for K steps (docs/train.md is the contract).

    rhino train ART -n N --init init.npz --data DIR --steps K [--checkpoint-dir D]
                [--checkpoint-every E] [--keep 3] [--resume D] [--metrics F.jsonl]
                [--outputs final.npz] [--max-restarts R] [--elastic] [--hostfile F]
                [--timeout S] [--carry i:j,...]

This layer does what the rank side must not: it reads the artifact's global program
(jaxlib's MLIR bindings) for the carried arguments (`tf.aliasing_output = i`, what
`jax.jit(..., donate_argnums=...)` emits) and, when the controller
(launch/rank/controller.py) needs a new plan (out of memory, or `--elastic` leaving a
device out), re-plans and recompiles the global program for the ranks left through the
build side (launch/build/*).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import RhinoError


def register(sub) -> None:
    p = sub.add_parser("train", help="run a train-step artifact for K steps: carried state on "
                       "the ranks, checkpoints, metrics, restarts")
    p.add_argument("artifact", metavar="ART", help="artifact directory (rhino compile -o)")
    p.add_argument("-n", type=int, metavar="N", help="ranks (default: the artifact's device count)")
    p.add_argument("--init", metavar="F.npz", help="global starting values of the carried arguments, keyed argJ")
    p.add_argument("--data", metavar="DIR", help="DIR/argJ.npy per data argument: (steps, ...), step k "
                   "uses index k mod length")
    p.add_argument("--steps", type=int, required=True, metavar="K", help="run steps 0..K-1")
    p.add_argument("--carry", metavar="I:J,...", help="result I becomes argument J of the next step "
                   "(default: the program's tf.aliasing_output marks)")
    p.add_argument("--checkpoint-dir", metavar="D", help="write checkpoints under D/step_<k>/")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="E",
                   help="checkpoint every E steps (default: only at the end)")
    p.add_argument("--keep", type=int, default=3, metavar="N", help="keep the N newest checkpoints (default 3)")
    p.add_argument("--resume", metavar="D", help="start from the newest complete checkpoint in D")
    p.add_argument("--metrics", metavar="F.jsonl", help="one JSON record per step (and per restart)")
    p.add_argument("--outputs", metavar="F.npz", help="write the final carried values here, keyed argJ")
    p.add_argument("--max-restarts", type=int, default=3, metavar="R",
                   help="restart a failed job from its newest checkpoint at most R times (default 3)")
    p.add_argument("--elastic", action="store_true",
                   help="leave out a rank that fails twice: re-plan and recompile for the ranks left")
    p.add_argument("--hostfile", metavar="F", help="MPICH hostfile (host:slots per line)")
    p.add_argument("--timeout", type=float, default=600, metavar="S",
                   help="a job with no progress on any rank for S seconds is hung (default 600)")
    p.add_argument("--mpiexec-args", default="", metavar="ARGS", help="extra mpiexec arguments")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def parse_carry(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        i, sep, j = part.partition(":")
        try:
            if not sep:
                raise ValueError
            out.append((int(i), int(j)))
        except ValueError:
            raise RhinoError(f"--carry expects I:J pairs (result I -> argument J), got '{part}'") from None
    return out


def aliasing(text: str, filename: str = "<program>") -> list[tuple[int, int]]:
    """(result i, argument j) for every @main argument j marked `tf.aliasing_output = i`."""
    from .. import ir as I
    ctx = I.new_context()
    mod = I.parse_module(text, ctx, filename)
    with ctx:
        main = I.main_func(mod)
        if "arg_attrs" not in main.attributes:
            return []
        out = []
        for j, d in enumerate(I.ir.ArrayAttr(main.attributes["arg_attrs"])):
            entries = {na.name: na.attr for na in I.ir.DictAttr(d)}
            if "tf.aliasing_output" in entries:
                out.append((I.ir.IntegerAttr(entries["tf.aliasing_output"]).value, j))
        return out


def artifact_carry(art_dir: str) -> list[tuple[int, int]]:
    from ..launch.artifact import read_artifact
    art = read_artifact(art_dir, verify=False)
    for rel in ("programs/global.mlir", "programs/main.mlir"):
        p = art.root / rel
        if rel in art.manifest.get("files", {}) and p.is_file():
            return aliasing(p.read_text(), str(p))
    return []


def program_id(art_dir: str) -> str | None:
    """sha256 of the artifact's global program, inlined and without shardings: the same for
    every plan, device count and pipeline of one program (what checkpoints are tied to)."""
    import hashlib
    from ..launch.artifact import read_artifact
    from .. import ir as I
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    gp = read_artifact(art_dir, verify=False).global_program()
    if gp is None:
        return None
    ctx = I.new_context()
    mod = I.parse_module(gp.read_text(), ctx, str(gp))
    run_pipeline_str(mod, "rhino-inline,rhino-strip-sharding", PassContext(ctx))
    return hashlib.sha256(I.print_module(mod).encode()).hexdigest()


def unsharded(text: str, filename: str) -> str:
    """The global program without its shardings: the artifact's global.mlir may hold the
    old plan's (fixed constraints for the planner, and for the old device count). The
    donation marks (which rhino-strip-sharding drops too, for IREE) are put back: the
    re-planned artifact still says what it carries."""
    from .. import ir as I
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    marks = aliasing(text, filename)
    ctx = I.new_context()
    mod = I.parse_module(text, ctx, filename)
    run_pipeline_str(mod, "rhino-strip-sharding", PassContext(ctx))
    with ctx:
        main = I.main_func(mod)
        n = len(I.ir.FunctionType(I.ir.TypeAttr(main.attributes["function_type"]).value).inputs)
        old = list(I.ir.ArrayAttr(main.attributes["arg_attrs"])) if "arg_attrs" in main.attributes else None
        dicts = [{na.name: na.attr for na in I.ir.DictAttr(old[j])} if old else {} for j in range(n)]
        for i, j in marks:
            dicts[j]["tf.aliasing_output"] = I.ir.IntegerAttr.get(I.ir.IntegerType.get_signless(32), i)
        main.attributes["arg_attrs"] = I.ir.ArrayAttr.get([I.ir.DictAttr.get(d) for d in dicts])
    return I.print_module(mod)


def replan_cluster(spec: str, n: int) -> str:
    """The cluster a re-plan for n ranks plans on: the artifact's when n is its device count,
    whole nodes of it when a node's devices divide n, else one node of n devices."""
    from ..cluster import load_cluster
    cl = load_cluster(spec)
    if cl.num_devices == n:
        return spec
    g = cl.groups[0]
    if len(cl.groups) == 1 and n % g.devices_per_node == 0:
        return f"{n // g.devices_per_node}x{g.devices_per_node}x{g.profile.name}"
    return f"1x{n}x{g.profile.name}"


def joint_target(sched: dict, num_devices: int, n: int, scale: float) -> dict:
    """What the re-plan of a joint pipeline artifact (manifest `schedule` with `joint`)
    searches on n ranks at `scale` of its memory budget: {cluster, memory (the scaled
    budget in bytes: the recorded one of an earlier re-plan, else the device profile's),
    stages (the artifact's count when it divides n and is at most the layers; None: the
    joint search's own choice)}."""
    from ..cluster import load_cluster
    joint = sched["joint"]
    spec = sched.get("cluster") or f"1x{num_devices}xcpu"
    base = joint.get("memory_budget_bytes") or load_cluster(spec).memory_per_device
    S, layers = sched["stages"], sum(joint["layers_per_stage"])
    return {"cluster": replan_cluster(spec, n), "memory": int(int(base) * scale),
            "stages": S if S > 1 and n % S == 0 and S <= layers else None}


def _replan_joint(art, text: str, filename: str, out: Path, t: dict, plan: dict, debug: bool) -> str:
    """The joint search run again for the new ranks and budget, and its plan compiled; the
    single-stage planner when no pipeline fits. The artifact's extra IREE flags are kept."""
    from ..cluster import load_cluster
    from ..launch.build.iree_compile import target_flags
    from .joint_report import for_replan
    from .plan_cmd import run_planner
    from .. import ir as I
    from ..passes import PassContext
    from ..passes.pass_pipeline import run_pipeline_str
    cl = load_cluster(t["cluster"]).with_memory(str(t["memory"]))
    a = argparse.Namespace(cluster=t["cluster"], memory=str(t["memory"]), level=plan.get("level", "O2"),
                           strategy="auto", batch_args=None, plan=None, remat=None, microbatches=None)
    module = I.parse_module(text, I.new_context(), filename)
    run_pipeline_str(module, "rhino-inline", PassContext(module.context))
    best = for_replan(a, module, cl, run_planner, t["stages"])
    if best is None:
        return _single_stage(art, a, text, filename, out, debug)
    from ..launch.build.pipelined import compile_pipeline
    sched = art.manifest["schedule"]
    flags, base = art.manifest.get("iree", {}).get("flags") or [], target_flags(art.target)
    extra = flags[len(base):] if flags[:len(base)] == base else []     # what --iree-flag added
    joint = dict(best.to_json(), memory_budget_bytes=t["memory"])
    return str(compile_pipeline(text, out, t["cluster"], best.stages, best.microbatches, sched["kind"],
                                art.target, extra_flags=extra, debug=debug, filename=filename,
                                memory=str(t["memory"]), strategy="auto", level=a.level, joint=joint))


def make_replan(art_dir: str, debug: bool = False):
    """(ranks, memory scale, reason) -> a new artifact for the same global program."""
    from ..launch.artifact import read_artifact
    art = read_artifact(art_dir, verify=False)
    gp = art.global_program()
    plan = json.loads((art.root / "plan.json").read_text()) if (art.root / "plan.json").is_file() else {}
    sched = art.manifest.get("schedule") or {}

    def replan(n: int, scale: float, reason: str) -> str:
        from ..cluster import load_cluster
        if gp is None:
            raise RhinoError(f"{art.root} has no programs/global.mlir to re-plan from")
        text = unsharded(gp.read_text(), str(gp))
        spec = sched.get("cluster") or plan.get("cluster") or f"1x{art.num_devices}xcpu"
        device = spec.rsplit("x", 1)[-1] if "+" not in spec else "cpu"
        cluster = f"1x{n}x{device}"
        base = plan.get("memory_budget_bytes") or load_cluster(spec).memory_per_device
        memory = str(int(int(base) * scale)) if scale < 1 else None
        out = Path(art_dir).resolve().parent / f"{Path(art_dir).name}.replan-n{n}-m{round(scale * 100)}"
        if sched.get("joint"):
            return _replan_joint(art, text, str(gp), out, joint_target(sched, art.num_devices, n, scale), plan, debug)
        if sched.get("pipeline"):
            from ..launch.build.pipelined import compile_pipeline
            stages = sched["stages"] if n % sched["stages"] == 0 else 1
            return str(compile_pipeline(text, out, cluster, stages, sched["microbatches"], sched["kind"],
                                        art.target, debug=debug, memory=memory))
        strategy = plan.get("strategy", "auto") if scale == 1 else "auto"
        a = argparse.Namespace(cluster=cluster, memory=memory, level=plan.get("level", "O2"),
                               strategy=strategy, batch_args=None, plan=None)
        return _single_stage(art, a, text, str(gp), out, debug)
    return replan


def _single_stage(art, a, text: str, filename: str, out: Path, debug: bool) -> str:
    """The single-stage planner's plan for `a` (cluster, memory, strategy), compiled to `out`."""
    from ..launch.build.single_stage import compile_global
    from .plan_cmd import plan_text
    planned, p = plan_text(a, text, filename, progress=False)
    return str(compile_global(planned, out, art.target, plan_text=p.to_json() if p else None,
                              debug=debug, filename=filename))


def run(a) -> int:
    from ..launch.artifact import read_artifact
    from ..launch.rank.controller import TrainJob, train
    art = read_artifact(a.artifact)
    carry = parse_carry(a.carry) if a.carry else artifact_carry(a.artifact)
    if not carry:
        raise RhinoError(f"{a.artifact}: no carried state (no @main argument has tf.aliasing_output; "
                         "lower with donate_argnums or pass --carry I:J)")
    job = TrainJob(artifact=a.artifact, n=a.n or art.num_devices, steps=a.steps, carry=carry,
                   init=a.init, data=a.data, checkpoint_dir=a.checkpoint_dir,
                   checkpoint_every=a.checkpoint_every, keep=a.keep, resume=a.resume,
                   metrics=a.metrics, outputs=a.outputs, max_restarts=a.max_restarts,
                   elastic=a.elastic, hostfile=a.hostfile, timeout=a.timeout,
                   mpiexec_args=a.mpiexec_args.split(), program_sha256=program_id(a.artifact))
    res = train(job, make_replan(a.artifact, getattr(a, "debug", False)))
    steps = sorted(res.step_seconds)
    med = steps[len(steps) // 2] * 1e3 if steps else 0.0
    print(f"trained to step {res.steps} on {res.ranks} rank(s): median step {med:.2f} ms, "
          f"{res.restarts} restart(s), wall {res.wall_seconds:.1f} s"
          + (f"; final values in {a.outputs}" if a.outputs else "")
          + (f"; last checkpoint {res.last_checkpoint}" if res.last_checkpoint else ""))
    return 0

