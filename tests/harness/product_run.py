"""The product path as a user runs it: `rhino plan` / `rhino run` in a subprocess.

`tightest_budget` asks `rhino plan` (in process) for the smallest per-device memory that plans: each
refusal names a budget ("use --memory 54KiB or more devices"), which is retried until a
plan fits (the search is not monotone: the named size may itself be refused with a larger
one). `rhino_run` compiles and launches unannotated programs under such a budget with
`--check`, and returns the printed lines and the outputs.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RHINO = [sys.executable, "-m", "rhino_mlir.tools.rhino"]
_HINT = re.compile(r"use --memory (\S+) or more")


def tightest_budget(mlir: str | Path, cluster: str, start: str = "1KiB", tries: int = 8) -> str:
    """`rhino plan` (in this process: the CLI's own main) until a budget fits."""
    import contextlib
    import io
    from rhino_mlir.tools.rhino import main
    m = start
    for _ in range(tries):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["plan", str(mlir), "--cluster", cluster, "--memory", m])
        if rc == 0:
            return m
        hint = _HINT.search(err.getvalue())
        if not hint:
            raise AssertionError(f"rhino plan failed without naming a budget: {err.getvalue().strip()}")
        m = hint.group(1)
    raise AssertionError(f"rhino plan never fit {mlir} on {cluster} (last tried {m})")


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict                 # out0... (empty when the run failed)
    seconds: float
    artifact: Path

    @property
    def check_line(self) -> str:
        return next((line for line in self.stdout.splitlines() if line.startswith("check:")), "")


def rhino_run(mlir: str | Path, inputs: str | Path, out_dir: Path, n: int, cluster: str,
              memory: str, env: dict | None = None, timeout: float = 900) -> RunResult:
    """`rhino run MLIR -n N --cluster C --memory M --check --inputs --outputs -o ART`."""
    import os
    out_dir.mkdir(parents=True, exist_ok=True)
    outs, art = out_dir / "out.npz", out_dir / "artifact"
    t0 = time.perf_counter()
    p = subprocess.run(RHINO + ["run", str(mlir), "-n", str(n), "--cluster", cluster, "--memory",
                                memory, "--check", "--inputs", str(inputs), "--outputs", str(outs),
                                "-o", str(art)],
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    got = {}
    if outs.exists():
        with np.load(outs, allow_pickle=False) as z:
            got = {k: z[k] for k in z.files}
    return RunResult(p.returncode, p.stdout, p.stderr, got, time.perf_counter() - t0, art)


def local_arg_types(art: Path) -> list[str]:
    """Local tensor types of @main's arguments in the artifact's partitioned program."""
    text = (art / "programs" / "main.mlir").read_text()
    sig = next(line for line in text.splitlines() if "func.func public @main" in line)
    return re.findall(r"%arg\d+: (tensor<[^>]*>)", sig)
