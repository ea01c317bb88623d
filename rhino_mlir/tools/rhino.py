"""`rhino`: compile, launch and run partitioned StableHLO programs.

    rhino compile IN.mlir [--target llvm-cpu|cuda|rocm|vulkan-spirv] [--plan F] -o DIR
    rhino launch DIR -n N [--inputs in.npz] [--outputs out.npz] [--hostfile F]
                 [--timeout S] [--check]
    rhino run IN.mlir [compile flags] [launch flags]
    rhino demo [--model M] [--fn forward|train_step_sgd|train_step] [--repeat K]
    rhino train DIR -n N --init init.npz --data DIR --steps K [...]   (docs/train.md)
    rhino monitor metrics.jsonl [-o plot.png]

Errors are one line on stderr and a non-zero exit; `--debug` shows the traceback.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

from ..errors import RhinoError, one_line_warnings
from . import bench_cmd, calibrate, export_cmd, flags, monitor_cmd, pipeline_cmd, plan_cmd, train_cmd

TARGETS = ("llvm-cpu", "cuda", "rocm", "vulkan-spirv")

EPILOG = """\
examples:
  rhino plan model.mlir --cluster 2x8xH100    # choose shardings, report vs baselines
  rhino compile model.mlir -o art            # shardings from the IR's sdy annotations
  rhino compile model.mlir --cluster 1x4xcpu -o art   # plan first, then compile
  rhino launch art -n 4 --inputs in.npz --outputs out.npz --check
  rhino run model.mlir -n 4 --check          # compile into a temp dir, then launch
  rhino launch art -n 4 --hostfile hosts     # several hosts (MPICH hostfile: host:slots)

npz files: inputs arg0, arg1, ... outputs out0, out1, ...; bf16 travels as uint16 bits.
"""


def _compile_flags(p: argparse.ArgumentParser, need_out: bool) -> None:
    p.add_argument("input", help="StableHLO program (.mlir text or bytecode) whose @main "
                   "arguments carry sdy shardings")
    p.add_argument("-o", "--output", required=need_out, metavar="DIR",
                   help="artifact directory to write (replaced atomically)")
    p.add_argument("--target", default="llvm-cpu", metavar="|".join(TARGETS),
                   help="IREE target (default llvm-cpu: this host's CPU)")
    flags.add_plan_flags(p)
    flags.add_pipeline_flags(p)
    p.add_argument("--local", action="store_true",
                   help="the input is already a local per-device program (skip partitioning)")
    p.add_argument("--global-program", metavar="FILE",
                   help="with --local: the single-device program, kept for --check")
    p.add_argument("--mode", choices=("import", "native"), default="import",
                   help="collectives: 'import' = rhino runtime module over MPI (default); "
                   "'native' = IREE's own channels (CUDA/NCCL, not runnable from Python yet)")
    p.add_argument("--iree-flag", action="append", default=[], metavar="FLAG",
                   help="extra iree-compile flag (repeatable)")
    p.add_argument("--no-cache", action="store_true", help="ignore the compile cache")


def _launch_flags(p: argparse.ArgumentParser, need_n: bool) -> None:
    p.add_argument("-n", type=int, required=need_n, metavar="N",
                   help="number of ranks (must equal the artifact's device count)")
    p.add_argument("--inputs", metavar="F.npz", help="inputs arg0...; default: random")
    p.add_argument("--outputs", metavar="F.npz", help="write outputs out0... here")
    p.add_argument("--hostfile", metavar="F", help="MPICH hostfile (host:slots per line), "
                   "passed to mpiexec as -f")
    p.add_argument("--timeout", type=float, default=600, metavar="S",
                   help="end the job (naming the stuck ranks) after S seconds (default 600)")
    p.add_argument("--check", action="store_true",
                   help="also run the original program on one device and print the max error")
    p.add_argument("--mpiexec-args", default="", metavar="ARGS",
                   help="extra mpiexec arguments, e.g. '-launcher fork'")
    p.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="run the step K times and report the median (first is warm-up)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rhino", description=__doc__.split("\n\n")[0],
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show tracebacks and pass remarks")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    c = sub.add_parser("compile", help="partition, lower and IREE-compile into an artifact dir")
    _compile_flags(c, need_out=True)
    la = sub.add_parser("launch", help="run an artifact directory on N MPI ranks")
    la.add_argument("artifact", metavar="DIR")
    _launch_flags(la, need_n=True)
    plan_cmd.register(sub)
    calibrate.register(sub)
    export_cmd.register(sub)
    bench_cmd.register(sub)
    train_cmd.register(sub)
    monitor_cmd.register(sub)
    r = sub.add_parser("run", help="compile + launch in one step")
    _compile_flags(r, need_out=False)
    _launch_flags(r, need_n=False)
    from . import demo
    demo.add_arguments(sub.add_parser("demo", help="GPT-style model from the zoo, partitioned "
                                      "data x model, on 4 MPI ranks, checked vs one device"))
    for p in (c, la, r):
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and pass remarks")
    return ap


def cmd_compile(a) -> Path:
    from ..launch.build.single_stage import compile_global, compile_local
    src = Path(a.input)
    if not src.is_file():
        raise RhinoError(f"input '{src}' does not exist")
    text = src.read_text()
    if flags.wanted(a):
        return pipeline_cmd.compile_cmd(a, text, src)
    path, planned = pipeline_cmd.auto_compile(a, text, src)      # --stages auto: the joint plan
    if path is not None:
        return path
    plan = None
    if not a.local:
        text, p = plan_cmd.plan_text(a, text, str(src), planned=planned)
        plan = p.to_json() if p is not None else None
        if p is None and ((a.microbatches or 1) > 1 or a.remat in ("selective", "full")):
            raise RhinoError("--microbatches / --remat are planner choices: add --cluster (or --plan with a "
                             "plan made with them)")
    out = a.output
    common = dict(target=a.target, extra_flags=a.iree_flag, mode=a.mode,
                  use_cache=not a.no_cache, debug=a.debug, filename=str(src))
    if a.local:
        gtext = Path(a.global_program).read_text() if a.global_program else None
        path = compile_local(text, out, global_text=gtext, plan_text=plan, **common)
    else:
        if a.global_program:
            raise RhinoError("--global-program only applies with --local")
        path = compile_global(text, out, plan_text=plan, batch_args=flags.batch_args(a), **common)
    from ..launch.artifact import read_artifact
    m = read_artifact(path, verify=False).manifest
    c = m["compile"]
    print(f"wrote {path}: {m['num_devices']} device(s), target {m['iree']['target']}, "
          f"{len(m['programs']['main']['imports'])} rhino import(s), compile "
          f"{c['seconds']:.2f} s{' (cache hit)' if c['cache_hit'] else ''}", file=sys.stderr)
    return path


def cmd_launch(a, artifact) -> int:
    from ..launch.artifact import read_artifact
    from ..launch.rank.launcher import launch
    art = read_artifact(artifact, verify=False)
    n = a.n if a.n is not None else art.num_devices
    # with carried state (tf.aliasing_output) the repeats are steps: the serving loop of a
    # step-wise program (a decode step's KV cache), one step's results feeding the next
    carry = (train_cmd.artifact_carry(str(artifact))
             if a.repeat > 1 and not (art.manifest.get("schedule") or {}).get("pipeline") else [])
    res = launch(artifact, n, inputs=a.inputs, outputs=a.outputs, hostfile=a.hostfile,
                 timeout=a.timeout, mpiexec_args=a.mpiexec_args.split(), repeat=a.repeat, carry=carry)
    print(f"ran on {n} rank(s): step {res.step_seconds * 1e3:.2f} ms, "
          f"{res.collective_calls // max(1, len(res.steps))} collective call(s) per step, "
          f"wall {res.wall_seconds:.2f} s"
          + (f", {a.repeat} steps with {len(carry)} carried value(s)" if carry else "")
          + (f"; outputs in {a.outputs}" if a.outputs else ""))
    if a.check:
        from ..launch.build.check import compare, reference_outputs
        xs = list(res.inputs)
        for _ in range(a.repeat if carry else 1):
            refs = reference_outputs(art, xs)
            for i, j in carry:
                xs[j] = refs[i]
        cr = compare(res.outputs, refs, art.outputs)
        print(cr.line())
        return 0 if cr.ok else 1
    return 0


def cmd_demo(a) -> int:
    from .demo import main as demo_main
    return demo_main(a)


def main(argv=None) -> int:
    one_line_warnings()
    ap = build_parser()
    a = ap.parse_args(argv)
    if not a.cmd:
        ap.print_help()
        return 2
    try:
        flags.normalize(a)
        if a.cmd == "compile":
            cmd_compile(a)
            return 0
        if a.cmd == "launch":
            return cmd_launch(a, a.artifact)
        if a.cmd == "plan":
            return plan_cmd.cmd_plan(a)
        if a.cmd == "calibrate":
            return calibrate.run(a)
        if a.cmd == "export":
            return export_cmd.run(a)
        if a.cmd == "bench":
            return bench_cmd.run(a)
        if a.cmd == "train":
            return train_cmd.run(a)
        if a.cmd == "monitor":
            return monitor_cmd.run(a)
        if a.cmd == "run":
            if a.output:
                return cmd_launch(a, cmd_compile(a))
            with tempfile.TemporaryDirectory(prefix="rhino-run-art-") as tmp:
                a.output = str(Path(tmp) / "artifact")
                return cmd_launch(a, cmd_compile(a))
        return cmd_demo(a)
    except RhinoError as e:
        if a.debug:
            traceback.print_exc()
        print(f"rhino {a.cmd}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rhino {a.cmd}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if a.debug:
            traceback.print_exc()
        print(f"rhino {a.cmd}: internal error: {type(e).__name__}: {e} (rerun with --debug "
              "and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
