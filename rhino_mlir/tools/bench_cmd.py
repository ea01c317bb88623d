"""`rhino bench [--quick] [--suite S ...] [--out DIR] [--no-doc] [--json]`: the benchmark
suites of benchmarks/bench.py (search, quality, fidelity, memory, measured, runtime).

The suites live in the source checkout (benchmarks/ is not part of the wheel) and need 8
XLA CPU devices, which XLA_FLAGS must request before jax starts: so this runs
benchmarks/bench.py in a child process with that environment, passing the flags through.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import RhinoError

SUITES = ("search", "quality", "fidelity", "memory", "measured", "runtime")


def register(sub) -> None:
    p = sub.add_parser("bench", help="run the benchmark suites; JSON to benchmarks/results, "
                       "sections of docs/benchmarks.md and plots in docs/img")
    p.add_argument("--quick", action="store_true", help="a subset that runs in a few minutes")
    p.add_argument("--suite", action="append", choices=SUITES, metavar="S",
                   help=f"suite to run (repeatable): {', '.join(SUITES)}; default: all")
    p.add_argument("--out", metavar="DIR", help="write JSON here (default benchmarks/results)")
    p.add_argument("--no-doc", action="store_true", help="JSON only: leave docs/benchmarks.md and plots alone")
    p.add_argument("--json", action="store_true", help="print one JSON document {suite: result} on stdout")


def script() -> Path:
    root = Path(__file__).resolve().parents[2]
    path = root / "benchmarks" / "bench.py"
    if not path.is_file():
        raise RhinoError(f"rhino bench needs a source checkout: '{path}' does not exist")
    return path


def argv_of(a) -> list[str]:
    out = ["--quick"] if a.quick else []
    for s in a.suite or []:
        out += ["--suite", s]
    if a.out:
        out += ["--out", str(Path(a.out).resolve())]
    out += ["--no-doc"] * bool(a.no_doc) + ["--json"] * bool(a.json)
    return out


def run(a) -> int:
    path = script()
    env = dict(os.environ)
    flag = "--xla_force_host_platform_device_count=8"
    if flag not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flag).strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    args = argv_of(a)
    shown = "rhino bench " + " ".join(args)
    code = (f"import sys; sys.path.insert(0, {str(path.parent)!r}); import bench; "
            f"sys.exit(bench.main({args!r}, command={shown!r}))")
    return subprocess.run([sys.executable, "-c", code], env=env).returncode
