"""`rhino bench [--quick] [--suite S ...] [--out DIR] [--no-doc] [--json] [--root DIR]`: the
benchmark suites of benchmarks/bench.py (search, quality, fidelity, memory, measured, runtime).

The suites live in a source checkout (benchmarks/ is not part of the wheel) and need 8
XLA CPU devices, which XLA_FLAGS must request before jax starts: so this runs
DIR/benchmarks/bench.py in a child process with that environment, passing the flags through.
The checkout is `--root DIR`, else the one this package was installed from in editable mode,
else the current directory or one above it. The suites import the rhino_mlir installed here.

Everything a suite needs (files of the checkout, Python modules, mpiexec) is checked before
the first suite starts: a missing piece is one line and a non-zero exit with nothing written,
not a traceback after minutes of work. `missing()` is that check, a pure function of the
root, the suites and how to look modules and programs up (tests pass fakes).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable

from ..errors import RhinoError

SUITES = ("search", "quality", "fidelity", "memory", "measured", "runtime")
QUICK = ("search", "quality", "fidelity", "memory", "measured")     # benchmarks/bench.py's QUICK

# suite -> third-party modules its code imports, with the benchmark scripts it runs
# (read from benchmarks/; tests/tools/test_bench_cmd.py re-reads the imports and fails on
# one missing here). jax, numpy, scipy, iree.*, mpi4py are rhino_mlir's own dependencies.
MODULES = {
    "search": ("jax", "numpy"),                        # planrun: zoo lowering, `rhino plan` children
    "quality": ("jax", "numpy", "scipy"),              # planner in-process (HiGHS through scipy)
    "fidelity": ("jax", "numpy", "scipy", "iree.compiler", "iree.runtime", "mpi4py"),
    "memory": ("jax", "numpy"),
    "measured": ("jax", "numpy"),
    "runtime": ("jax", "numpy", "iree.compiler", "iree.runtime", "mpi4py"),
}
PLOTS = ("search", "fidelity", "memory")     # draw PNGs into docs/img unless --no-doc
MPI = ("fidelity", "runtime")                # launch ranks with mpiexec
EXTRA = {"matplotlib": "bench"}              # module -> the rhino_mlir extra that installs it
# suite -> scripts it runs besides benchmarks/suite_<s>.py; memory: full runs with docs only
SCRIPTS = {"runtime": ("benchmarks/bench_collectives.py", "benchmarks/bench_block.py")}
FULL_DOC_SCRIPTS = {"memory": ("benchmarks/bench_memory.py", "tests/harness/xla_memory.py")}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run the benchmark suites of a source checkout; JSON to "
                       "benchmarks/results, sections of docs/benchmarks.md and plots in docs/img")
    p.add_argument("--quick", action="store_true", help="a subset that runs in a few minutes")
    p.add_argument("--suite", action="append", choices=SUITES, metavar="S",
                   help=f"suite to run (repeatable): {', '.join(SUITES)}; default: all")
    p.add_argument("--out", metavar="DIR", help="write JSON here (default benchmarks/results)")
    p.add_argument("--no-doc", action="store_true", help="JSON only: leave docs/benchmarks.md and plots alone")
    p.add_argument("--json", action="store_true", help="print one JSON document {suite: result} on stdout")
    p.add_argument("--only", metavar="ROLE", help="search suite: rerun only the cases whose role starts "
                   "with ROLE (layers, devices, target, level), keeping the other rows of the last run")
    p.add_argument("--root", metavar="DIR", help="the source checkout whose benchmarks/ to run "
                   "(default: the checkout rhino_mlir is installed from, else the current directory)")


def is_checkout(d: Path) -> bool:
    return (d / "benchmarks" / "bench.py").is_file()


def find_root(explicit: str | None = None, cwd: Path | None = None,
              package_dir: Path | None = None) -> Path | None:
    """--root if given (None when it is not a checkout), else the checkout above the package
    (an editable install), else the current directory or a parent of it."""
    if explicit is not None:
        d = Path(explicit).expanduser().resolve()
        return d if is_checkout(d) else None
    package_dir = package_dir or Path(__file__).resolve().parents[1]
    cwd = (cwd or Path.cwd()).resolve()
    for d in (package_dir.parent, cwd, *cwd.parents):
        if is_checkout(d):
            return d
    return None


def suites_of(a) -> tuple[str, ...]:
    return tuple(a.suite or (QUICK if a.quick else SUITES))


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):                 # a missing parent package ("iree")
        return False


def _has_mpiexec() -> bool:
    # the launcher's rule (launch/rank/launcher.find_mpiexec): next to python, else PATH
    here = Path(sys.executable).parent / "mpiexec"
    return (here.is_file() and os.access(here, os.X_OK)) or shutil.which("mpiexec") is not None


def missing(root: Path | None, suites: Iterable[str], quick: bool, doc: bool, *,
            has_module: Callable[[str], bool] | None = None,
            has_mpiexec: Callable[[], bool] | None = None, explicit: str | None = None) -> list[str]:
    """What the run would lack, one phrase each, checkout first; [] when it can start."""
    has_module = has_module or _has_module           # looked up now: tests replace them
    has_mpiexec = has_mpiexec or _has_mpiexec
    suites = tuple(suites)
    out = []
    if root is None:
        where = f"'{explicit}' has no benchmarks/bench.py" if explicit is not None else (
            "none found above the installed package or the current directory")
        out.append(f"the benchmark suites need a source checkout of rhino_mlir ({where}); run "
                   "rhino bench from the checkout or pass --root DIR")
    else:
        files = ["benchmarks/bench.py"] + [f"benchmarks/suite_{s}.py" for s in suites]
        files += [f for s in suites for f in SCRIPTS.get(s, ())]
        if doc:
            files.append("README.md")                 # bench:results block (benchmarks/readme.py)
            if not quick:
                files += [f for s in suites for f in FULL_DOC_SCRIPTS.get(s, ())]
        absent = [f for f in dict.fromkeys(files) if not (root / f).is_file()]
        if absent:
            out.append(f"the checkout '{root}' lacks {', '.join(absent)}")
    need: dict[str, list[str]] = {}
    for s in suites:
        for m in MODULES[s] + (("matplotlib",) if doc and s in PLOTS else ()):
            need.setdefault(m, []).append(s)
    gone = [m for m in need if not has_module(m)]
    extras = [m for m in gone if m in EXTRA]
    if extras:
        users = sorted({s for m in extras for s in need[m]}, key=SUITES.index)
        out.append(f"{', '.join(extras)} is not installed (plots of suite(s) {', '.join(users)}): "
                   f"pip install 'rhino_mlir[{EXTRA[extras[0]]}]' (in a checkout: pip install "
                   f"'.[{EXTRA[extras[0]]}]'), or pass --no-doc")
    core = [m for m in gone if m not in EXTRA]
    if core:
        out.append(f"python module(s) {', '.join(core)} missing (dependencies of rhino_mlir): "
                   "reinstall it, pip install 'rhino_mlir[bench]'")
    if any(s in MPI for s in suites) and not has_mpiexec():
        users = [s for s in suites if s in MPI]
        out.append(f"suite(s) {', '.join(users)} need mpiexec (next to this python or on PATH): "
                   "pip install mpich mpi4py")
    return out


def script(root: Path | None = None) -> Path:
    """benchmarks/bench.py of the checkout (find_root's when root is None)."""
    root = root or find_root()
    if root is None:
        raise RhinoError(missing(None, (), True, False, has_module=lambda m: True)[0])
    return root / "benchmarks" / "bench.py"


def argv_of(a) -> list[str]:
    out = ["--quick"] if a.quick else []
    for s in a.suite or []:
        out += ["--suite", s]
    if a.out:
        out += ["--out", str(Path(a.out).resolve())]
    out += ["--no-doc"] * bool(a.no_doc) + ["--json"] * bool(a.json)
    if getattr(a, "only", None):
        out += ["--only", a.only]
    return out


def run(a) -> int:
    explicit = getattr(a, "root", None)
    root = find_root(explicit)
    problems = missing(root, suites_of(a), a.quick, not a.no_doc, explicit=explicit)
    if problems:
        raise RhinoError("; ".join(problems))
    path = script(root)
    installed = Path(__file__).resolve().parents[1]
    if installed.parent != root:
        print(f"rhino bench: suites of {root}, measuring rhino_mlir installed at {installed}",
              file=sys.stderr)
    env = dict(os.environ)
    flag = "--xla_force_host_platform_device_count=8"
    if flag not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flag).strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    args = argv_of(a)
    shown = "rhino bench " + " ".join(args)
    # '' (the current directory) off sys.path: run from a checkout, `python -c` would
    # otherwise import ./rhino_mlir instead of the installed package named above
    code = (f"import sys; sys.path[:] = [{str(path.parent)!r}] + [p for p in sys.path if p]; "
            f"import bench; sys.exit(bench.main({args!r}, command={shown!r}))")
    return subprocess.run([sys.executable, "-c", code], env=env).returncode
