"""`rhino launch`: start N ranks with the venv's mpiexec and watch them.

Everything checkable is checked here first, so the user gets one clear line instead of
N tracebacks: the artifact (schema, checksums), `-n` against the manifest, the inputs'
count, shapes and dtypes. Then `mpiexec -n N [-f HOSTFILE] python -m
rhino_mlir.launch.rank.main ...` runs in its own process group. A rank that dies (a
signal, MPI_Abort) or hangs past `--timeout` ends the whole job with an error naming it:
ranks report pid and phase in a run directory, and MPICH's hydra names the pid of a
process that died badly. The run directory must be visible to every rank for those
names (a shared filesystem when ranks span hosts; otherwise only the pid is named).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ...errors import RhinoError
from ..artifact import read_artifact


class LaunchError(RhinoError):
    """A launch that could not start or did not finish (names the rank when it can)."""


@dataclass
class LaunchResult:
    outputs: dict = field(default_factory=dict)    # out0... -> numpy array (logical dtype)
    inputs: list = field(default_factory=list)     # global inputs (logical dtype) as run
    step_seconds: float = 0.0
    steps: list = field(default_factory=list)
    collective_calls: int = 0
    jax_imported: bool = False                     # by any rank (must never happen)
    trace: list = field(default_factory=list)      # pipelines: (stage, fn, mb, start, end)
    wall_seconds: float = 0.0
    log: str = ""


# glibc serves big allocations with fresh mmap()s and unmaps them on free, so every
# collective result buffer that IREE allocates would page-fault in anew (16 MiB: ~20 ms
# on 4 ranks / 2 cores, more than the Allreduce itself). Ranks keep freed memory in the
# heap instead; a caller's own settings win.
RANK_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}


def rank_env(extra: dict | None = None) -> dict:
    """Environment of the rank processes: they import the rhino_mlir this controller runs
    (its parent directory first on PYTHONPATH, the current directory not at all: `python -m`
    would otherwise prefer a ./rhino_mlir checkout over an installed package)."""
    env = {**RANK_ENV, **os.environ}
    home = str(Path(__file__).resolve().parents[3])      # .../site-packages or the checkout
    env["PYTHONPATH"] = os.pathsep.join([home] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONSAFEPATH"] = "1"
    env.update(extra or {})
    return env


def find_mpiexec() -> str:
    """The mpiexec next to this interpreter (the venv's mpich), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("mpiexec")
    if not found:
        raise LaunchError("no mpiexec found next to the python interpreter or on PATH; "
                          "pip install mpich mpi4py into this environment")
    return found


def check_inputs(art, inputs: str | None) -> None:
    """Count, names, shapes and dtypes of an npz against the manifest (no slicing)."""
    if inputs is None:
        return
    from .layout import check_input, open_npz
    with open_npz(inputs, "inputs file", LaunchError) as z:
        names = list(z.files)
        specs = art.inputs
        want = [s.name for s in specs]
        if sorted(names) != sorted(want):
            raise LaunchError(f"inputs '{inputs}' has {len(names)} array(s) "
                              f"({', '.join(sorted(names)) or 'none'}) but the program takes "
                              f"{len(want)} ({', '.join(want) or 'none'})")
        for s in specs:
            try:
                check_input(s.name, z[s.name], s)
            except ValueError as e:       # npz holding pickled objects
                raise LaunchError(f"input {s.name}: {e}") from None


def launch(artifact: str | Path, n: int, inputs: str | None = None, outputs: str | None = None,
           hostfile: str | None = None, timeout: float = 600, mpiexec_args: Sequence[str] = (),
           env: dict | None = None, seed: int = 0, repeat: int = 1,
           keep_run_dir: bool = False, carry: Sequence[tuple[int, int]] = ()) -> LaunchResult:
    art = read_artifact(artifact)
    if n != art.num_devices:
        raise LaunchError(f"-n {n} does not match the artifact: it was compiled for "
                          f"{art.num_devices} devices")
    check_inputs(art, inputs)
    if hostfile is not None and not Path(hostfile).is_file():
        raise LaunchError(f"hostfile '{hostfile}' does not exist")
    run_dir = Path(tempfile.mkdtemp(prefix="rhino-run-"))
    if inputs is None:
        # random inputs are made here, not in the ranks, so --check can reuse them
        inputs = str(run_dir / "inputs.npz")
        write_random_inputs(art, inputs, seed)
    out_path = outputs or str(run_dir / "outputs.npz")
    cmd = [find_mpiexec(), "-n", str(n)]
    if hostfile:
        cmd += ["-f", str(hostfile)]          # MPICH hydra spelling of --hostfile
    extra = list(mpiexec_args) or os.environ.get("RHINO_MPIEXEC_ARGS", "").split()
    cmd += extra
    cmd += [sys.executable, "-m", "rhino_mlir.launch.rank.main", str(Path(artifact).resolve()),
            "--run-dir", str(run_dir), "--outputs", str(Path(out_path).resolve()),
            "--seed", str(seed), "--repeat", str(repeat)]
    if carry:      # repeats are steps: result i feeds argument j (single-stage artifacts)
        cmd += ["--carry", ",".join(f"{i}:{j}" for i, j in carry)]
    if inputs:
        cmd += ["--inputs", str(Path(inputs).resolve())]
    log_path = run_dir / "mpiexec.log"
    t0 = time.perf_counter()
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=rank_env(env))
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise LaunchError(f"launch timed out after {timeout:g} s: "
                                  f"{_describe_ranks(run_dir, n)}") from None
        text = log_path.read_text(errors="replace")
        if rc != 0:
            raise LaunchError(_failure(run_dir, n, rc, text))
        res = LaunchResult(wall_seconds=time.perf_counter() - t0, log=text)
        rj = run_dir / "result.json"
        if rj.is_file():
            d = json.loads(rj.read_text())
            res.step_seconds, res.steps = d["step_seconds"], d["steps"]
            res.collective_calls = d["collective_calls"]
            res.jax_imported = d.get("jax_imported", False)
            res.trace = d.get("trace", [])
        res.outputs = read_outputs(out_path, art)
        res.inputs = read_inputs(inputs, art)
        return res
    finally:
        if not keep_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def write_random_inputs(art, path: str, seed: int) -> None:
    import numpy as np
    from .layout import random_input
    rng = np.random.default_rng(seed)
    np.savez(path, **{s.name: random_input(s, rng) for s in art.inputs})


def read_inputs(path: str, art) -> list:
    import numpy as np
    from .layout import check_input
    with np.load(path, allow_pickle=False) as z:
        return [check_input(s.name, z[s.name], s) for s in art.inputs]


def read_outputs(path: str, art) -> dict:
    import numpy as np
    from .layout import np_dtype
    specs = {s.name: s for s in art.outputs}
    with np.load(path, allow_pickle=False) as z:
        return {k: (z[k].view(np_dtype("bfloat16")) if specs[k].dtype == "bfloat16" else z[k])
                for k in z.files}


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            continue


def _statuses(run_dir: Path, n: int) -> dict[int, dict]:
    out = {}
    for r in range(n):
        p = run_dir / f"rank{r}.json"
        try:
            out[r] = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    return out


# rank_main's phases in order: the rank furthest behind is the one the others wait for
PHASES = ("not started", "started", "reading inputs", "scatter", "loading", "running",
          "gather", "done", "failed")


def _describe_ranks(run_dir: Path, n: int) -> str:
    """'rank 1 stuck in loading; rank 0 waiting in running' (the laggard first)."""
    st = _statuses(run_dir, n)
    phases: dict[str, list[int]] = {}
    for r in range(n):
        phases.setdefault(st[r]["phase"] if r in st else "not started", []).append(r)
    order = sorted(phases.items(), key=lambda kv: PHASES.index(kv[0]) if kv[0] in PHASES else 0)
    fmt = lambda rs: f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}"  # noqa: E731
    if len(order) == 1:
        ph, rs = order[0]
        return f"{fmt(rs)} all in '{ph}' (a collective that never completed, or a slow step)"
    return "; ".join(f"{fmt(rs)} {'stuck in' if i == 0 else 'waiting in'} '{ph}'"
                     for i, (ph, rs) in enumerate(order))


_BAD_PID = re.compile(r"PID (\d+) RUNNING AT (\S+)\s*\n=\s*EXIT CODE: (\d+)")
_SIGNAL = re.compile(r"\(signal (\d+)\)")


def _failure(run_dir: Path, n: int, rc: int, log: str) -> str:
    # 1. a rank that raised wrote its own line
    for r in range(n):
        e = run_dir / f"rank{r}.error"
        if e.is_file():
            return e.read_text().splitlines()[0]
    # 2. a rank killed from outside: hydra names *a* pid of the job (not always the one that
    # died); the heartbeats say which rank was not waiting on its peers: the dead one
    from .beat import culprits, read_beats
    st = _statuses(run_dir, n)
    by_pid = {s["pid"]: r for r, s in st.items()}
    beats = read_beats(run_dir, n)
    outside = culprits(beats, n) if len(beats) == n else []
    for m in _BAD_PID.finditer(log):
        pid, host, code = int(m[1]), m[2], int(m[3])
        sig = _SIGNAL.search(log)
        how = (f"killed by signal {sig[1]} ({_signame(int(sig[1]))})" if sig
               else f"exited with code {code}")
        r = by_pid.get(pid)
        if len(outside) == 1 and outside[0] != r:
            r = outside[0]
            host = st[r].get("host", host) if r in st else host
        who = f"rank {r}" if r is not None else f"a rank (pid {pid})"
        return f"{who} on {host} {how}; the job was stopped"
    tail = "; ".join(ln.strip() for ln in log.strip().splitlines()[-3:]) or "no output"
    return f"mpiexec exited with code {rc}: {tail}"


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "?"
