"""Runtime: the rank runtime's collectives vs plain mpi4py, and one transformer block
rhino (IREE + MPI, 4 ranks) vs XLA on the same sharding, by rerunning the existing
scripts (benchmarks/bench_collectives.py, benchmarks/bench_block.py) and summarising
their JSON in the `bench:runtime-summary` section. bench_block.py also rewrites its own
`bench:block` section (not with --no-doc); the hand-written `bench:runtime` analysis is
left alone. Full runs only (a few minutes on 2 cores).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from report import RESULTS, table

HERE = Path(__file__).resolve().parent


def _run(ctx, args: list[str]) -> int:
    ctx.log("runtime: " + " ".join(args))
    p = subprocess.run([sys.executable, *args], cwd=HERE.parent, capture_output=True, text=True)
    if p.returncode:
        ctx.log(f"runtime: {args[0]} failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    return p.returncode


def run(ctx) -> dict:
    sizes = "64K,1M,16M" if ctx.quick else "64K,256K,1M,4M,16M,64M"
    rc = {"collectives": _run(ctx, ["benchmarks/bench_collectives.py", "--sizes", sizes, "--reps", "10"])}
    rc["block"] = _run(ctx, ["benchmarks/bench_block.py", "--reps", "5"] + (["--no-doc"] if not ctx.doc else []))
    coll = _load(RESULTS / "collectives_local-task.json")
    block = _load(RESULTS / "block.json")
    res = {"label": ctx.label, "rc": rc, "collectives": coll.get("rows", []), "block": block}
    ratios = [r["ratio"] for r in res["collectives"] if r.get("bytes", 0) >= 1 << 20]
    res["summary"] = (f"collectives >= 1 MiB: rhino / mpi4py {min(ratios):.2f}-{max(ratios):.2f}x"
                      if ratios else "no collective results")
    ctx.write_json("runtime_summary", res)
    ctx.section("runtime-summary", section(ctx, res))
    return res


def _load(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def section(ctx, res) -> str:
    rows = [[r["kind"], r["size"], r["rhino_ms"], r["mpi4py_ms"], r["ratio"]] for r in res["collectives"]]
    body = table(["collective", "bytes per rank", "rhino ms", "mpi4py ms", "ratio"], rows) if rows else "(none)"
    blk = res["block"].get("rows") or []
    brow = [[b.get("config"), b.get("rhino", {}).get(b.get("rhino_best", ""), {}).get("step_ms"),
             b.get("xla_4dev_ms"), b.get("ratio_rhino_over_xla")] for b in blk if isinstance(b, dict)]
    btab = table(["block BxTxDxH", "rhino ms", "XLA 4 devices ms", "rhino / XLA"], brow) if brow else ""
    return (ctx.header("Runtime overhead (rerun of bench_collectives.py and bench_block.py)",
                       "4 MPI ranks on this machine; collectives: median of 10 (local-task driver); block: "
                       "see the `block` section for the method.")
            + "\n" + body + "\n\n" + btab + "\n\n" + res["summary"] + ".\n")
