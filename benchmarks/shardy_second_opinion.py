"""Second opinion: Shardy's own partitioner vs rhino's on the differential suite.

    .venv/bin/python benchmarks/shardy_second_opinion.py [--cases name[:variant],...] [--no-check]

For every (program, variant) of tests/programs.py (the global program with its sdy
annotations), both partitioners produce a local program:
  rhino   rhino-inline, rhino-propagate, rhino-spmd-partition (the product);
  Shardy  rhino-inline (inlining + chlo legalization, which Shardy lacks), then Shardy's
          pipeline as it exists in jaxlib 0.10 (each pass run through
          rhino_mlir.ir.run_pipeline):  sdy-propagation-pipeline,
          func.func(sdy-insert-explicit-reshards{enable-full-version=true}),
          func.func(sdy-reshard-to-collectives), sdy-convert-global-to-local.
Shardy's passes abort the whole process (C++ check failures) on some inputs, so all
work runs in worker subprocesses; when a worker dies, the case it was on is recorded
with the stage and the abort line, and a fresh worker continues with the next case.
For each side: whether it produced a local program, the collectives in it and their
bytes per device (ring formulas of analysis/cost.py: stablehlo collectives through
`collective_bytes`, any sdy.* collectives left by Shardy with the same formula), and,
unless --no-check, whether the local program run on the mesh's XLA CPU devices equals
the single-device result (tests/harness; input padding NaN). This is a second opinion
for tests and benchmarks only; the product never runs Shardy's partitioner.
Writes benchmarks/results/second_opinion.json and the `bench:second-opinion` section
of docs/benchmarks.md (full-suite runs only).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

ROOT = report.ROOT
OURS = "builtin.module(rhino-inline,rhino-propagate,rhino-spmd-partition)"
SHARDY = ("sdy-propagation-pipeline",
          "func.func(sdy-insert-explicit-reshards{enable-full-version=true})",
          "func.func(sdy-reshard-to-collectives)",
          "sdy-convert-global-to-local")
KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "collective_permute")
WORKER_TIMEOUT_S = 1800


# ----------------------------------------------------------------------------- IR facts

def _sdy_group(op, mesh_sizes: dict) -> int:
    """Devices in one group of an sdy collective: the product of the axes written between
    the op name and its operand (`sdy.all_gather [{}, {"y"}] %0 out_sharding=...`)."""
    axes_text = str(op).split(op.name, 1)[1].split("%", 1)[0]
    n = 1
    for name, sub in re.findall(r'"([^"]+)"(?::\(\d+\)(\d+))?', axes_text):
        n *= int(sub) if sub else mesh_sizes.get(name, 1)
    return n


def collectives(local_text: str) -> dict:
    """Collective counts and bytes per device of a local program (stablehlo and sdy ops)."""
    from rhino_mlir import ir as I
    from rhino_mlir.analysis.cost import collective_bytes, ring_bytes
    from rhino_mlir.sharding import meshes_in
    ctx = I.new_context()
    mod = I.parse_module(local_text, ctx)
    sizes = {n: s for m in meshes_in(local_text).values() for n, s in m.axes}
    counts, total = Counter(), 0.0
    with ctx:
        for op in I.walk_ops(mod.operation):
            dialect, _, kind = op.name.partition(".")
            if kind not in KINDS or dialect not in ("stablehlo", "sdy"):
                continue
            counts[kind] += 1
            if dialect == "stablehlo":
                total += collective_bytes(op)
            else:                       # sdy.all_gather etc.: same ring formula
                side = op.results if kind == "all_gather" else op.operands
                total += ring_bytes(kind, sum(I.nbytes(v.type) for v in side), _sdy_group(op, sizes))
        left = sorted({op.name for op in I.walk_ops(mod.operation)
                       if op.name.startswith("sdy.") and op.name not in ("sdy.mesh", "sdy.return")})
    return {"collectives": dict(sorted(counts.items())), "bytes": total, "sdy_ops_left": left}


def _main_shardings(text: str) -> dict:
    """'arg i' / 'result i' -> closed sharding text, for @main's annotated values."""
    from rhino_mlir import ir as I
    from rhino_mlir.sharding import annotations as A
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    out = {}
    with ctx:
        f = I.main_func(mod)
        ft = I.ir.FunctionType(I.ir.TypeAttr(f.attributes["function_type"]).value)
        for kind, get, n in (("arg", A.arg_sharding, len(ft.inputs)), ("result", A.result_sharding, len(ft.results))):
            for i in range(n):
                s = get(f, i)
                if s is not None:
                    out[f"{kind} {i}"] = s.closed().to_text()
    return out


def layout_changes(global_text: str, local_text: str) -> list[str]:
    """Annotated arguments/results whose sharding the local program does not keep: a
    partitioner that rewrites them solves a different problem (other input layout)."""
    want, got = _main_shardings(global_text), _main_shardings(local_text)
    return [f"{k}: {w} -> {got.get(k, 'none')}" for k, w in want.items() if got.get(k) != w]


def partition_ours(text: str) -> str:
    from rhino_mlir import ir as I
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    run_pipeline_str(m, OURS, PassContext(ctx))
    return str(m)


def partition_shardy(text: str) -> str:
    from rhino_mlir import ir as I
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    run_pipeline_str(m, "builtin.module(rhino-inline)", PassContext(ctx))
    for p in SHARDY:
        I.run_pipeline(m, f"builtin.module({p})", who=p)
    return str(m)


# ----------------------------------------------------------------------------- worker

def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return f"{type(e).__name__}: {s[0] if s else ''}"[:300]


def worker(cases: list[str], out: Path, check: bool) -> int:
    """Runs in a subprocess; appends one JSON line per stage so a crash can be located."""
    sys.path.insert(0, str(ROOT / "tests"))
    import programs
    from harness.xla_oracle import check_local

    def emit(rec: dict) -> None:
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")

    for case in cases:
        name, variant = case.split(":")
        emit({"case": case, "stage": "build"})
        try:
            text, inputs = programs.get(name, variant)
            refs = None
        except Exception as e:  # noqa: BLE001 - a broken program is a result too
            emit({"case": case, "stage": "done", "build_error": _first_line(e)})
            continue
        for side, fn in (("rhino", partition_ours), ("shardy", partition_shardy)):
            emit({"case": case, "stage": f"{side}:partition"})
            t0 = time.perf_counter()
            try:
                local = fn(text)
            except Exception as e:  # noqa: BLE001
                emit({"case": case, "stage": f"{side}:result", "ok": False, "error": _first_line(e)})
                continue
            rec = {"case": case, "stage": f"{side}:result", "ok": True,
                   "seconds": round(time.perf_counter() - t0, 3), **collectives(local),
                   "layout_changed": layout_changes(text, local)}
            emit({**rec, "stage": f"{side}:check"})
            if check:
                try:
                    from harness.xla_oracle import reference
                    refs = refs if refs is not None else reference(text, inputs)
                    check_local(local, text, inputs, refs=refs)
                    rec["correct"] = True
                except Exception as e:  # noqa: BLE001
                    rec["correct"], rec["check_error"] = False, _first_line(e)
            emit(rec)
        emit({"case": case, "stage": "done"})
    return 0


# ----------------------------------------------------------------------------- parent

def _abort_line(stderr: str, rc: int | None = None) -> str:
    import signal
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for pat in ("Check failed", "LLVM ERROR", "Fatal Python error", "Segmentation fault", "Aborted"):
        hit = [ln for ln in lines if pat in ln]
        if hit:
            return re.sub(r"^.*?\] ", "", hit[0])[:300]
    if rc is not None and rc < 0:
        return f"killed by {signal.Signals(-rc).name} (no message)"
    return lines[-1][:300] if lines else f"worker died (exit {rc}) without a message"


def run_all(cases: list[str], check: bool, work: Path) -> dict:
    """Worker processes over `cases`; restarts after a crash. Returns case -> record."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "stages.jsonl"
    out.unlink(missing_ok=True)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()}
    todo = list(cases)
    while todo:
        cmd = [sys.executable, __file__, "--worker", "--work", str(work), "--cases", ",".join(todo)]
        if not check:
            cmd.append("--no-check")
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
            died, err, rc = p.returncode != 0, p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            died, err, rc = True, f"timeout after {WORKER_TIMEOUT_S} s", None
        recs = [json.loads(ln) for ln in out.read_text().splitlines()] if out.exists() else []
        finished = {r["case"] for r in recs if r["stage"] == "done"}
        todo = [c for c in todo if c not in finished]
        if died and todo:                         # the first unfinished case killed the worker
            stage = next((r["stage"] for r in reversed(recs) if r["case"] == todo[0]), "start")
            with open(out, "a") as f:
                f.write(json.dumps({"case": todo[0], "stage": "crash", "at": stage,
                                    "error": _abort_line(err, rc)}) + "\n")
                f.write(json.dumps({"case": todo[0], "stage": "done"}) + "\n")
            todo = todo[1:]
        elif died:
            break
    return merge([json.loads(ln) for ln in out.read_text().splitlines()])


def merge(recs: list[dict]) -> dict:
    """Fold stage records into case -> {rhino: {...}, shardy: {...}}."""
    res: dict = {}
    for r in recs:
        c = res.setdefault(r["case"], {"rhino": None, "shardy": None})
        if "build_error" in r:
            c["build_error"] = r["build_error"]
        side, _, what = r["stage"].partition(":")
        if what in ("result", "check"):
            c[side] = {k: v for k, v in r.items() if k not in ("case", "stage")}
        elif r["stage"] == "crash":
            side, _, what = r["at"].partition(":")
            entry = c.get(side) or {}
            if what == "partition" or not entry:
                c[side] = {"ok": False, "aborted": True, "error": r["error"]}
            else:                                  # died while its local program ran
                c[side] = {**entry, "correct": False, "check_error": f"aborted: {r['error']}"}
    return res


def _cell_status(s: dict | None) -> str:
    if s is None:
        return "not run"
    if not s.get("ok"):
        return ("aborted: " if s.get("aborted") else "error: ") + s.get("error", "")[:90].replace("|", "/")
    moved = " (changed annotated layout: " + "; ".join(s["layout_changed"])[:90] + ")" \
        if s.get("layout_changed") else ""
    if "correct" not in s:
        return "partitioned" + moved
    return ("correct" if s["correct"] else "WRONG: " + s.get("check_error", "")[:80]).replace("|", "/") + moved


def _comparable(a: dict | None, b: dict | None) -> bool:
    """Both sides produced a local program for the annotated layouts, not known wrong."""
    return all(s and s.get("ok") and s.get("correct", True) and not s.get("layout_changed")
               for s in (a, b))


def _bytes(s: dict | None) -> str:
    return f"{s['bytes']:.0f}" if s and s.get("ok") else "-"


def markdown(data: dict) -> str:
    rows, res = [], data["results"]
    for case, c in res.items():
        ours, sh = c.get("rhino"), c.get("shardy")
        ratio = "-"
        if _comparable(ours, sh):
            ratio = "=" if ours["bytes"] == sh["bytes"] else (
                f"{ours['bytes'] / sh['bytes']:.2f}" if sh["bytes"] else "inf")
        rows.append([case, _cell_status(ours), _cell_status(sh), _bytes(ours), _bytes(sh), ratio])
    s = data["summary"]
    return "\n".join([
        "## Second opinion: Shardy's partitioner on the differential suite",
        "",
        "`.venv/bin/python benchmarks/shardy_second_opinion.py` — every (program, variant) of "
        "`tests/programs.py` through rhino (`rhino-inline,rhino-propagate,rhino-spmd-partition`) "
        "and through Shardy (`rhino-inline`, then " + ", ".join(f"`{p}`" for p in SHARDY) + "), "
        "each in a worker subprocess (Shardy aborts the process on some inputs). \"correct\": "
        "the local program on the mesh's XLA CPU devices equals the single-device result. "
        "Bytes: collective bytes per device on the wire (ring formulas, analysis/cost.py); "
        "ratio = rhino / Shardy, only where both local programs are correct and keep the "
        "annotated argument/result shardings (\"changed annotated layout\": the partitioner "
        "rewrote an input or output sharding, i.e. solved a different problem; its numbers "
        "are checked against its own layout).",
        "",
        f"Machine: {data['machine']}; jax/jaxlib {data['versions'].get('jaxlib', '?')}; "
        f"rhino at {data['revision']}; "
        f"{data['seconds']:.0f} s in all.",
        "",
        report.table(["case", "rhino", "Shardy", "rhino bytes", "Shardy bytes", "ratio"], rows),
        "",
        f"Summary: {s['cases']} cases. rhino: {s['rhino_correct']} correct, {s['rhino_wrong']} wrong, "
        f"{s['rhino_failed']} failed. Shardy: {s['shardy_correct']} correct, {s['shardy_wrong']} wrong, "
        f"{s['shardy_aborted']} aborted, {s['shardy_failed']} other errors. Annotated layouts rewritten: "
        f"rhino {s['rhino_layout_changed']}, Shardy {s['shardy_layout_changed']}. "
        f"Where both are correct on the annotated layouts: rhino moved "
        f"fewer bytes in {s['rhino_fewer']}, the same in {s['same']}, more in {s['rhino_more']}.",
    ])


def summary(res: dict) -> dict:
    def side(k, pred):
        return sum(1 for c in res.values() if c.get(k) and pred(c[k]))
    both = [(c["rhino"], c["shardy"]) for c in res.values() if _comparable(c.get("rhino"), c.get("shardy"))]
    return {"cases": len(res),
            "rhino_correct": side("rhino", lambda s: s.get("correct") is True),
            "rhino_wrong": side("rhino", lambda s: s.get("correct") is False),
            "rhino_failed": side("rhino", lambda s: not s.get("ok")),
            "shardy_correct": side("shardy", lambda s: s.get("correct") is True),
            "shardy_wrong": side("shardy", lambda s: s.get("correct") is False),
            "shardy_aborted": side("shardy", lambda s: s.get("aborted", False)),
            "shardy_failed": side("shardy", lambda s: not s.get("ok") and not s.get("aborted")),
            "rhino_layout_changed": side("rhino", lambda s: bool(s.get("layout_changed"))),
            "shardy_layout_changed": side("shardy", lambda s: bool(s.get("layout_changed"))),
            "rhino_fewer": sum(1 for a, b in both if a["bytes"] < b["bytes"]),
            "same": sum(1 for a, b in both if a["bytes"] == b["bytes"]),
            "rhino_more": sum(1 for a, b in both if a["bytes"] > b["bytes"])}


def all_cases() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    import programs
    return [f"{n}:{v}" for n, v in programs.CASES]


def select(spec: str | None) -> list[str]:
    cases = all_cases()
    if not spec:
        return cases
    want = spec.split(",")
    return [c for c in cases if c in want or c.split(":")[0] in want]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", help="comma list of program or program:variant (default: all)")
    ap.add_argument("--no-check", action="store_true", help="skip running the local programs")
    ap.add_argument("--work", default="/tmp/rhino-second-opinion")
    ap.add_argument("--json", help="write the JSON here instead of benchmarks/results/")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.cases.split(","), Path(a.work) / "stages.jsonl", not a.no_check)
    cases = select(a.cases)
    t0 = time.perf_counter()
    res = run_all(cases, not a.no_check, Path(a.work))
    data = {"suite": "second-opinion", "command": "benchmarks/shardy_second_opinion.py"
            + (f" --cases {a.cases}" if a.cases else "") + (" --no-check" if a.no_check else ""),
            "machine": report.machine(), "revision": report.revision(),
            "versions": report.versions(), "shardy_pipeline": list(SHARDY),
            "seconds": time.perf_counter() - t0, "results": res, "summary": summary(res)}
    path = Path(a.json) if a.json else report.write_json("second_opinion", data)
    if a.json:
        path.write_text(json.dumps(data, indent=2) + "\n")
    if not a.cases and not a.json:
        report.write_section("second-opinion", markdown(data))
    print(json.dumps(data["summary"]), file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
