"""Partitioner speed: rhino-opt inline + propagate + spmd-partition on a GPT-2-small train step.

    .venv/bin/python benchmarks/bench_partition.py [--layers 12] [--repeat 3] [--profile]

Lowers zoo "gpt2-small" `train_step` (forward + backward + Adam; 12 layers, d=768,
vocab 50257, batch 8 x 1024; jax.ShapeDtypeStruct inputs, so no weights are allocated),
annotates a 2x4 mesh — tokens and targets batch-sharded on "x", Megatron on "y": w_qkv
and w_fc (and their biases) column-sharded, w_o and w_proj row-sharded, the same for
their Adam moments; everything else replicated — writes it to
benchmarks/results/gpt2_train_step_2x4.mlir, then times the WHOLE PROCESS

    .venv/bin/rhino-opt FILE --pass-pipeline='builtin.module(rhino-inline,rhino-propagate,rhino-spmd-partition)' -o OUT

(interpreter start, parsing and printing included), median of --repeat runs. Reports
op counts (input, and local program), the collectives emitted and their bytes per
device (analysis/cost.collective_bytes), to benchmarks/results/partition.json and the
`bench:partition` section of docs/benchmarks.md. --profile adds one run under cProfile
and lists the hot spots (cumulative share of the run per function).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

ROOT = report.ROOT
PIPELINE = "builtin.module(rhino-inline,rhino-propagate,rhino-spmd-partition)"
TARGET_S = 10.0
# path suffix -> PartitionSpec-like spec (Megatron on "y"); applies to params and Adam m/v
MEGATRON = {"['w_qkv']": (None, "y"), "['b_qkv']": ("y",), "['w_fc']": (None, "y"),
            "['b_fc']": ("y",), "['w_o']": ("y", None), "['w_proj']": ("y", None)}
BATCH_ARGS = ("[2][0]", "[2][1]")          # tokens, targets: (B, T) int32


def spec_for(path: str):
    if path in BATCH_ARGS:
        return ("x", None)
    for suffix, spec in MEGATRON.items():
        if path.endswith(suffix):
            return spec
    return None


def build_input(layers: int, path: Path) -> dict:
    """Lower and annotate the train step; returns facts about the input program."""
    from rhino_mlir import zoo
    from rhino_mlir.frontend import annotate
    from rhino_mlir.sharding import Mesh

    t0 = time.perf_counter()
    model = zoo.get("gpt2-small", n_layer=layers)
    text, info = model.lower("train_step")
    lower_s = time.perf_counter() - t0
    mesh = Mesh("mesh", (("x", 2), ("y", 4)))
    specs = [spec_for(p) for p in info.arg_paths]
    text = annotate(text, mesh, specs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return {"model": "gpt2-small", "n_layer": layers, "cfg": repr(model.cfg),
            "args": len(specs), "sharded_args": sum(s is not None for s in specs),
            "lower_s": round(lower_s, 2), "bytes": len(text)}


def op_stats(path: Path) -> dict:
    """Op count (every nested op) and collectives of a module file."""
    from rhino_mlir import ir as I
    from rhino_mlir.analysis.cost import collective_bytes
    ctx = I.new_context()
    mod = I.parse_module(path.read_text(), ctx, str(path))
    ops, kinds, nbytes = 0, Counter(), 0.0
    with ctx:
        for f in I.funcs(mod):
            for op in I.walk_ops(f):
                ops += 1
                b = collective_bytes(op)
                if op.name.removeprefix("stablehlo.") in ("all_reduce", "all_gather", "reduce_scatter",
                                                           "all_to_all", "collective_permute"):
                    kinds[op.name.removeprefix("stablehlo.")] += 1
                    nbytes += b
    return {"ops": ops, "collectives": dict(sorted(kinds.items())), "collective_bytes": nbytes}


def command(inp: Path, out: Path) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "rhino-opt"), str(inp), f"--pass-pipeline={PIPELINE}",
            "-o", str(out)]


def time_runs(inp: Path, out: Path, repeat: int) -> tuple[list[float], list[float], str]:
    """Wall seconds and CPU seconds (user + sys of the child) per run; the CPU figure is
    the stable one on a shared machine (the load average is recorded next to it)."""
    times, cpu, err = [], [], ""
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(command(inp, out), capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if p.returncode:
            err = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
            break
    return times, cpu, err


def profile(inp: Path, out: Path, top: int = 25) -> list[dict]:
    """One in-process run under cProfile; the functions with the largest cumulative time."""
    from rhino_mlir.tools import rhino_opt
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    rhino_opt.main([str(inp), f"--pass-pipeline={PIPELINE}", "-o", str(out)])
    prof.disable()
    total = time.perf_counter() - t0
    st = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():
        if "site-packages" in file or file.startswith("<"):
            where = f"{Path(file).name}:{fn}" if not file.startswith("<") else fn
        else:
            where = f"{Path(file).relative_to(ROOT) if file.startswith(str(ROOT)) else file}:{fn}"
        rows.append({"where": where, "line": line, "calls": nc, "self_s": round(tt, 3),
                     "cum_s": round(ct, 3), "cum_share": round(ct / total, 3),
                     "self_share": round(tt / total, 3)})
    rows.sort(key=lambda r: -r["self_s"])
    return [{"total_s": round(total, 2)}] + rows[:top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="also profile one run (cProfile)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    a = ap.parse_args()

    inp = report.RESULTS / f"gpt2_train_step_2x4{'' if a.layers == 12 else f'_{a.layers}l'}.mlir"
    out = inp.with_suffix(".local.mlir")
    facts = build_input(a.layers, inp)
    print(f"lowered {facts['n_layer']}-layer train step in {facts['lower_s']} s -> {inp}", file=sys.stderr)
    load = os.getloadavg()[0]
    times, cpu, err = time_runs(inp, out, a.repeat)
    res = {"suite": "partition", "command": shlex.join(command(inp, out)).replace(str(ROOT) + "/", ""),
           "machine": report.machine(), "revision": report.revision(),
           "versions": report.versions(), "input": facts,
           "runs_s": [round(t, 2) for t in times], "cpu_s": [round(c, 2) for c in cpu],
           "load_avg_1min": round(load, 2), "error": err or None}
    res["input"].update(op_stats(inp))
    if not err:
        res["median_s"] = round(statistics.median(times), 2)
        res["median_cpu_s"] = round(statistics.median(cpu), 2)
        res["output"] = op_stats(out)
    if a.profile:
        res["profile"] = profile(inp, out)
    path = report.write_json("partition" if a.layers == 12 else f"partition_{a.layers}l", res)
    print(f"{res.get('median_s')} s (runs {res['runs_s']}); {path}", file=sys.stderr)
    if err:
        print(f"rhino-opt failed: {err}", file=sys.stderr)
    if not a.no_docs and a.layers == 12:
        report.write_section("partition", markdown(res))
    return 1 if err else 0


def markdown(r: dict) -> str:
    i, o = r["input"], r.get("output", {})
    status = (f"**{r['median_s']} s** wall, median of {len(r['runs_s'])} ({', '.join(map(str, r['runs_s']))} s; "
              f"CPU time {', '.join(map(str, r['cpu_s']))} s; 1-min load average {r['load_avg_1min']} "
              f"on 2 cores when measured); target < {TARGET_S:.0f} s: "
              f"{'met' if r['median_s'] < TARGET_S else 'NOT met'}"
              if r.get("median_s") is not None else f"**failed**: `{r['error']}`")
    coll = ", ".join(f"{n} {k}" for k, n in o.get("collectives", {}).items()) or "none"
    lines = [
        "## Partitioner speed: GPT-2-small train step",
        "",
        "`.venv/bin/python benchmarks/bench_partition.py` — lowers zoo `gpt2-small` "
        f"`train_step` ({i['n_layer']} layers, d=768, vocab 50257, batch 8 x 1024, forward + backward "
        "+ Adam, ShapeDtypeStruct inputs), annotates a 2x4 mesh (tokens/targets on \"x\"; "
        "Megatron on \"y\": w_qkv, w_fc and biases column-sharded, w_o, w_proj row-sharded, "
        "same for the Adam moments) and times the whole process:",
        "",
        f"    {r['command']}",
        "",
        f"Machine: {r['machine']}; rhino at {r['revision']}.",
        "",
        report.table(["input ops", "input MB", "args (sharded)", "local ops", "collectives",
                      "collective MB/device", "wall s", "CPU s"],
                     [[i["ops"], f"{i['bytes'] / 1e6:.1f}", f"{i['args']} ({i['sharded_args']})",
                       o.get("ops", "-"), coll, f"{o.get('collective_bytes', 0) / 1e6:.1f}" if o else "-",
                       r.get("median_s", "failed"), r.get("median_cpu_s", "-")]]),
        "",
        status + ".",
    ]
    if r.get("profile"):
        p = r["profile"]
        lines += ["", f"cProfile of one in-process run ({p[0]['total_s']} s; top by self time):", "",
                  report.table(["function", "calls", "self s", "self share", "cum share"],
                               [[f"`{x['where']}`", x["calls"], x["self_s"], f"{x['self_share']:.0%}",
                                 f"{x['cum_share']:.0%}"] for x in p[1:11]])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
