"""The `rhino train` controller: start the ranks, watch them, restart them from checkpoints.

One attempt = one `mpiexec -n N python -m rhino_mlir.launch.rank.train_rank` over a run
directory holding job.json (what to run, from which step, with which fault hook). While
it runs the controller polls three things: the process (a rank that died: MPICH's
hydra stops the job and names the pid, which the ranks' status files map to a rank),
the ranks' heartbeats (beat.py: no beat from any rank for `--timeout` seconds is a
hang, and the rank the others wait for is named) and the metrics file (the live
progress line). A failed attempt is restarted from the newest checkpoint that verifies
(a corrupt one is skipped, with a warning), or from `--init` when there is none, up to
`--max-restarts` times. Two failures need a new plan, which the build side makes: out
of memory -> `replan(ranks, memory_scale * 0.8)`; with `--elastic`, a rank failing for
the second time -> `replan(ranks - 1, ...)`, the job going on without that device.
`replan` is a callback from tools/train_cmd.py: this module never imports jax.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ...errors import RhinoError
from ..artifact import read_artifact
from . import checkpoint as ckpt
from . import train_inputs as ti
from .beat import culprits, read_beats
from .launcher import _BAD_PID, _SIGNAL, _kill_group, _signame, _statuses, find_mpiexec, rank_env
from .progress import Progress
from .train_loop import faults_for


class TrainError(RhinoError):
    """A training job that could not finish (names the rank, the cause, the last checkpoint)."""


@dataclass
class TrainJob:
    artifact: str
    n: int
    steps: int
    carry: list[tuple[int, int]]               # (result i, argument j)
    init: str | None = None
    data: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep: int = 3
    resume: str | None = None
    metrics: str | None = None
    outputs: str | None = None
    max_restarts: int = 3
    elastic: bool = False
    hostfile: str | None = None
    timeout: float = 600.0
    mpiexec_args: Sequence[str] = ()
    env: dict | None = None
    program_sha256: str | None = None          # the program's identity for checkpoints (any plan)


@dataclass
class Failure:
    rank: int | None
    cause: str                                 # "killed by signal 9 (SIGKILL)", "hang", "oom", ...
    step: int | None
    message: str
    oom: bool = False


@dataclass
class TrainResult:
    steps: int
    restarts: int
    artifact: str
    ranks: int
    wall_seconds: float
    step_seconds: list = field(default_factory=list)     # last attempt, slowest rank
    jax_imported: bool = False
    read_seconds: float = 0.0                              # initial values, slowest rank
    loop_seconds: float = 0.0                              # the step loop, rank 0
    failures: list = field(default_factory=list)
    last_checkpoint: str | None = None


Replan = Callable[[int, float, str], str]      # (ranks, memory scale, reason) -> artifact dir


def _say(msg: str) -> None:
    print(f"rhino train: {msg}", file=sys.stderr, flush=True)


def train(job: TrainJob, replan: Replan | None = None, say=_say) -> TrainResult:
    try:
        faults_for(os.environ.get("RHINO_FAULT_AT"), 0)
    except ValueError as e:
        raise TrainError(str(e)) from None
    art = read_artifact(job.artifact)
    if job.n != art.num_devices:
        raise TrainError(f"-n {job.n} does not match the artifact: it was compiled for {art.num_devices} devices")
    if job.steps < 1:
        raise TrainError(f"--steps must be at least 1, got {job.steps}")
    if job.checkpoint_every and not job.checkpoint_dir:
        raise TrainError("--checkpoint-every needs --checkpoint-dir")
    if job.hostfile is not None and not Path(job.hostfile).is_file():
        raise TrainError(f"hostfile '{job.hostfile}' does not exist")
    ti.check_carry(art, job.carry)
    carried = [j for _, j in job.carry]
    data_args = [j for j in range(len(art.inputs)) if j not in carried]
    data = ti.check_data(job.data, art, data_args)
    if job.program_sha256 is None:
        job.program_sha256 = ti.program_sha(art)
    if job.resume:
        start = ti.resume_point(job.resume, art, carried, job.program_sha256, lambda m: say(f"warning: {m}"))
    elif job.init is None:
        raise TrainError(f"no starting values: pass --init init.npz (keys "
                         f"{', '.join(f'arg{j}' for j in carried) or 'none'}) or --resume DIR")
    else:
        ti.check_init(job.init, art, carried)
        start = ti.Start("init", str(Path(job.init).resolve()))
    ti.check_checkpoint_dir(job.checkpoint_dir, job.program_sha256, job.resume)
    if start.step >= job.steps:
        raise TrainError(f"the checkpoint is at step {start.step}, not before --steps {job.steps}: nothing to run")
    if job.metrics and not job.resume:
        Path(job.metrics).write_text("")                 # a new job: a new metrics file
    return _attempts(job, art, start, data, replan, say)


def _attempts(job, art, start, data, replan, say) -> TrainResult:
    first = start            # where a restart goes when no checkpoint of this job verifies
    t0 = time.perf_counter()
    artifact, n, hostfile = str(Path(job.artifact).resolve()), job.n, job.hostfile
    scale, fails, failures = 1.0, Counter(), []
    job_id = uuid.uuid4().hex[:8]
    for attempt in range(job.max_restarts + 1):
        if job.checkpoint_dir:
            ckpt.clean_partial(job.checkpoint_dir)
        res, fail = _attempt(job, artifact, n, hostfile, attempt, job_id, start, data, say)
        if fail is None:
            res.update(restarts=attempt, artifact=artifact, ranks=n,
                       wall_seconds=time.perf_counter() - t0, failures=failures,
                       last_checkpoint=_newest(job.checkpoint_dir))
            return TrainResult(**res)
        failures.append(fail)
        good = _newest(job.checkpoint_dir, say)
        where = f"last good checkpoint: {good or 'none'}"
        if attempt == job.max_restarts:
            raise TrainError(f"{fail.message}; gave up after {attempt} restart(s) (--max-restarts "
                             f"{job.max_restarts}); {where}")
        fails[fail.rank] += 1
        reason = None
        if fail.oom:
            scale *= 0.8
            reason = f"out of memory on rank {fail.rank}: re-planning with a {1 - scale:.0%} smaller memory budget"
        elif job.elastic and fail.rank is not None and fails[fail.rank] >= 2:
            if n <= 1:
                raise TrainError(f"{fail.message}; rank {fail.rank} failed again and no device is left; {where}")
            reason = f"rank {fail.rank} failed again: leaving it out, re-planning for {n - 1} rank(s)"
            hostfile = _drop_slot(hostfile, fail.rank, n)
            n -= 1
            fails = Counter()
        if reason is not None:
            if replan is None:
                raise TrainError(f"{fail.message}; recovery needs a new plan and no planner is available; {where}")
            say(reason)
            try:
                artifact = str(Path(replan(n, scale, reason)).resolve())
            except RhinoError as e:
                raise TrainError(f"{fail.message}; re-planning failed: {e}; {where}") from None
        start = _restart_point(good, first, fail, where)
        say(f"{fail.message}; restarting from {'step ' + str(start.step) if start.kind == 'checkpoint' else 'the initial values'} "
            f"(restart {attempt + 1} of at most {job.max_restarts})")
        _log(job.metrics, {"event": "restart", "attempt": attempt + 1, "rank": fail.rank,
                           "cause": fail.cause, "failed_step": fail.step, "resume_step": start.step,
                           "checkpoint": start.path if start.kind == "checkpoint" else None,
                           "ranks": n, "artifact": artifact})
    raise AssertionError("unreachable")


def _restart_point(good: str | None, first: ti.Start, fail: Failure, where: str) -> ti.Start:
    """The newest good checkpoint of this job, else where the job started (--init, or the
    checkpoint it resumed from; re-verified: it may have been pruned or damaged since)."""
    if good is not None:
        return ti.Start("checkpoint", good, int(ckpt.read_manifest(good)["step"]))
    if first.kind == "checkpoint":
        try:
            ckpt.verify(first.path)
        except ckpt.CheckpointError as e:
            raise TrainError(f"{fail.message}; cannot restart: {e}; {where}") from None
    return first


def _newest(d: str | None, say=None) -> str | None:
    if not d:
        return None
    found = ckpt.latest(d, (lambda m: say(f"warning: {m}")) if say else None)
    return str(found[0].resolve()) if found else None


def _log(path: str | None, rec: dict) -> None:
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(dict(rec, time=time.time())) + "\n")


def _job_json(job: TrainJob, artifact: str, n: int, attempt: int, job_id: str, start, data) -> dict:
    art = read_artifact(artifact, verify=False)
    carried = {j for _, j in job.carry}
    scalars = [i for i, s in enumerate(art.outputs) if not s.shape and i not in {i for i, _ in job.carry}]
    fault = faults_for(os.environ.get("RHINO_FAULT_AT"), attempt)
    ck = ({"dir": str(Path(job.checkpoint_dir).resolve()), "every": job.checkpoint_every or job.steps,
           "keep": job.keep} if job.checkpoint_dir else None)
    return {"artifact": artifact, "attempt": attempt, "job_id": job_id, "num_devices": n,
            "carry": [list(c) for c in job.carry], "data": {str(j): p for j, p in data.items()},
            "start": start.to_json(), "steps": job.steps, "checkpoint": ck,
            "metrics": str(Path(job.metrics).resolve()) if job.metrics else None,
            "outputs": str(Path(job.outputs).resolve()) if job.outputs else None,
            "program_sha256": job.program_sha256, "plan_sha256": ti.plan_sha(art),
            "fault": fault, "scalars": scalars, "carried": sorted(carried)}


def _attempt(job, artifact, n, hostfile, attempt, job_id, start, data, say):
    """(result fields, None) or (None, Failure)."""
    run_dir = Path(tempfile.mkdtemp(prefix="rhino-train-"))
    (run_dir / "job.json").write_text(json.dumps(_job_json(job, artifact, n, attempt, job_id, start, data)))
    cmd = [find_mpiexec(), "-n", str(n)]
    if hostfile:
        cmd += ["-f", str(hostfile)]
    cmd += list(job.mpiexec_args) or os.environ.get("RHINO_MPIEXEC_ARGS", "").split()
    cmd += [sys.executable, "-m", "rhino_mlir.launch.rank.train_rank", "--run-dir", str(run_dir)]
    log_path = run_dir / "mpiexec.log"
    progress = Progress(job.metrics, job.steps, attempt)
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=rank_env(job.env))
            fail = _watch(proc, run_dir, n, job.timeout, progress)
        progress.done()
        if fail is None and proc.returncode != 0:
            fail = _classify(run_dir, n, proc.returncode, log_path.read_text(errors="replace"))
        if fail is not None:
            return None, fail
        d = json.loads((run_dir / "result.json").read_text())
        return {"steps": job.steps, "step_seconds": d["step_seconds"], "jax_imported": d["jax_imported"],
                "read_seconds": d["read_seconds"], "loop_seconds": d["loop_seconds"]}, None
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _watch(proc, run_dir: Path, n: int, timeout: float, progress) -> Failure | None:
    """Poll until the job ends; a hang (no beat from any rank for `timeout` s) kills it."""
    t_start = time.time()
    while True:
        try:
            proc.wait(timeout=0.2)
            return None
        except subprocess.TimeoutExpired:
            pass
        progress.poll()
        beats = read_beats(run_dir, n)
        last = max([t_start] + [b["time"] for b in beats.values()])
        if time.time() - last > timeout:
            who = culprits(beats, n)
            _kill_group(proc)
            r = who[0] if who else None
            step = beats[r]["step"] if r in beats else None
            states = "; ".join(f"rank {q} {'in a collective' if b['in_collective'] else b['phase']} at step {b['step']}"
                               for q, b in sorted(beats.items()))
            return Failure(r, "hang", step, f"rank{'s' if len(who) > 1 else ''} {', '.join(map(str, who))} "
                           f"hung (no progress for {timeout:g} s{', ' + states if states else ''})")


def _classify(run_dir: Path, n: int, rc: int, log: str) -> Failure:
    for r in range(n):
        p = run_dir / f"rank{r}.fault.json"
        if p.is_file():
            d = json.loads(p.read_text())
            oom = d["cause"] == "oom"
            return Failure(r, "oom" if oom else "error", d.get("step"),
                           d["message"] + (" (out of memory)" if oom and "memory" not in d["message"] else ""), oom)
    # MPICH names *a* pid of the job, not always the one that died; the heartbeats say
    # which ranks were not waiting on their peers when the job ended: the dead ones
    beats = read_beats(run_dir, n)
    outside = culprits(beats, n) if beats else []
    st = _statuses(run_dir, n)
    by_pid = {s["pid"]: r for r, s in st.items()}
    for m in _BAD_PID.finditer(log):
        pid, host, code = int(m[1]), m[2], int(m[3])
        sig = _SIGNAL.search(log)
        how = (f"killed by signal {sig[1]} ({_signame(int(sig[1]))})" if sig else f"exited with code {code}")
        r = by_pid.get(pid)
        if len(outside) == 1 and outside[0] != r:
            r = outside[0]
            host = st[r]["host"] if r in st else host
        step = beats[r]["step"] if r in beats else None
        who = f"rank {r}" if r is not None else f"a rank (pid {pid})"
        return Failure(r, how, step, f"{who} on {host} {how}" + (f" at step {step}" if step is not None else ""))
    tail = "; ".join(ln.strip() for ln in log.strip().splitlines()[-3:]) or "no output"
    return Failure(None, f"exit code {rc}", None, f"mpiexec exited with code {rc}: {tail}")


def _drop_slot(hostfile: str | None, rank: int, n: int) -> str | None:
    """A hostfile without the slot that `rank` ran in (MPICH fills hosts in file order)."""
    if hostfile is None:
        return None
    hosts = []
    for line in Path(hostfile).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            h, _, s = line.partition(":")
            hosts.append([h, int(s) if s else 1])
    r = rank
    for h in hosts:
        if r < h[1]:
            h[1] -= 1
            break
        r -= h[1]
    out = Path(tempfile.mkdtemp(prefix="rhino-hosts-")) / "hostfile"
    out.write_text("".join(f"{h}:{s}\n" for h, s in hosts if s > 0))
    return str(out)
