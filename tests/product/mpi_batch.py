"""Run many artifacts on N real MPI ranks with as few mpiexec starts as possible.

Starting mpiexec and N Python ranks costs ~2 s on this machine, more than most corpus
cases take, so the cases of one rank count share one job (batch_rank.py). The
parent writes each case's inputs npz, starts the job, and watches the output files
appear in order. When a rank fails, `rhino launch`'s rank code writes the error to
that case's run directory and aborts the job: the case is recorded with that line
and a new job starts with the next case. A case that makes no progress for
`case_timeout` seconds is killed and recorded as hung the same way.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

RANK_SCRIPT = Path(__file__).with_name("batch_rank.py")


class RankFailure(RuntimeError):
    """A case that failed on the ranks (its rank's one-line error)."""


def run_batch(cases: Sequence[tuple[str, Path, Sequence[np.ndarray]]], n: int, workdir: Path,
              case_timeout: float = 60.0, notes: dict | None = None) -> dict[str, object]:
    """cases: (name, artifact, global inputs) -> name -> [out0, ...] or RankFailure.

    A case whose ranks died without an error line (a crash, a hang) is run once more
    alone: memory corrupted by an earlier case of the job can bring down a later one.
    If it passes alone, its result is kept and `notes[name]` says what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name, art, inputs in cases:
        d = workdir / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "out.npz").unlink(missing_ok=True)             # a reused workdir: no stale results
        for old in (d / "run").glob("rank*"):
            old.unlink()
        np.savez(d / "in.npz", **{f"arg{i}": x for i, x in enumerate(inputs)})
        jobs.append({"name": name, "artifact": str(Path(art).resolve()), "inputs": str(d / "in.npz"),
                     "outputs": str(d / "out.npz"), "run_dir": str(d / "run")})
        Path(jobs[-1]["run_dir"]).mkdir(exist_ok=True)
    results: dict[str, object] = {}
    queue, prev, k = list(jobs), None, 0
    while queue:
        k += 1
        done, hung = _one_job(queue, workdir / f"jobs-{k}.json", n, workdir, case_timeout)
        for j in queue[:done]:
            results[j["name"]], prev = _read(j), j["name"]
        queue = queue[done:]
        if not queue:
            break
        bad = queue.pop(0)
        err = hung or _rank_error(bad)
        if err is None:                          # died without a line: once more, alone
            k += 1
            alone, hung = _one_job([bad], workdir / f"jobs-{k}-alone.json", n, workdir, case_timeout)
            if alone:
                results[bad["name"]] = _read(bad)
                if notes is not None:
                    notes[bad["name"]] = (f"ranks died on it in a batched job (after {prev or 'nothing'})"
                                          " but it passed alone: memory corrupted earlier in that job")
                continue
            err = hung or _rank_error(bad) or _log_tail(workdir)
        results[bad["name"]] = RankFailure(err)
    return results


def _read(job) -> list:
    from rhino_mlir.launch.artifact import read_artifact
    from rhino_mlir.launch.rank.launcher import read_outputs
    art = read_artifact(job["artifact"], verify=False)
    outs = read_outputs(job["outputs"], art)
    return [outs[s.name] for s in art.outputs]


def _one_job(todo, spec: Path, n: int, workdir: Path, case_timeout: float) -> tuple[int, str | None]:
    """One mpiexec over `todo`: (how many cases wrote their outputs, in order; a line
    when the job was killed because a case made no progress for case_timeout s)."""
    from rhino_mlir.launch.rank.launcher import find_mpiexec, rank_env
    spec.write_text(json.dumps(todo))
    done = lambda: next((i for i, j in enumerate(todo) if not Path(j["outputs"]).is_file()),  # noqa: E731
                        len(todo))
    cmd = [find_mpiexec(), "-n", str(n), sys.executable, str(RANK_SCRIPT), str(spec)]
    with open(workdir / "mpiexec.log", "wb") as log:    # this job's log only (_log_tail)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True,
                                env=rank_env({"RHINO_IREE_DRIVER": "local-sync"}))
        seen, last = 0, time.monotonic()
        while proc.poll() is None:
            time.sleep(0.1)
            now = done()
            if now != seen:
                seen, last = now, time.monotonic()
            elif time.monotonic() - last > case_timeout + (15 if seen == 0 else 0):
                _kill(proc)
                return done(), f"hung: no result after {case_timeout:g} s (job killed)"
    return done(), None


def _rank_error(job) -> str | None:
    for e in sorted(Path(job["run_dir"]).glob("rank*.error")):
        return e.read_text().splitlines()[0]
    return None


def _log_tail(workdir: Path) -> str:
    """What a rank that died without an error line left: glibc's heap check, the signal."""
    try:
        lines = (workdir / "mpiexec.log").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    code = next((m.group(1) for m in map(_EXIT.search, lines) if m), None)
    said = [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("=", "I1", "W1", "E1"))
            and not ln.strip().startswith(("Fatal Python", "Current thread", "Thread 0x", "File ",
                                            "Extension", "Please see", "This typically"))]
    how = ""
    if code is not None:
        how = f" (exit code {code}" + (f", {signal.Signals(int(code)).name}" if 0 < int(code) < 32
                                       else "") + ")"
    return "a rank died without an error line" + how + (": " + "; ".join(said[-2:]) if said else "")


_EXIT = re.compile(r"EXIT CODE:\s*(\d+)")


def _kill(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=3)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
