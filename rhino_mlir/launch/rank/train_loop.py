"""What the single-stage and the pipelined training loops share (train_rank.py,
train_pipeline.py): the fault hook, the metrics writer, checkpoint saves and the end of
a run (`--outputs`, the summary the controller reads). Never imports jax.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from pathlib import Path


def faults_for(spec: str | None, attempt: int) -> list[str]:
    """The entries of RHINO_FAULT_AT for this attempt: `RANK:STEP[:oom|:hang][@ATTEMPT]`,
    comma-separated; without `@` an entry fires on the first attempt (0) only."""
    out = []
    for e in (spec or "").split(","):
        e = e.strip()
        if not e:
            continue
        body, _, at = e.partition("@")
        parts = body.split(":")
        if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts[:2]) or \
                (len(parts) == 3 and parts[2] not in ("oom", "hang", "kill")) or (at and not at.isdigit()):
            raise ValueError(f"RHINO_FAULT_AT entry '{e}' is not RANK:STEP[:oom|:hang][@ATTEMPT]")
        if int(at or 0) == attempt:
            out.append(body)
    return out


def fault_hook(faults: list[str] | None, rank: int, step: int) -> None:
    for f in faults or ():
        parts = f.split(":")
        if int(parts[0]) != rank or int(parts[1]) != step:
            continue
        kind = parts[2] if len(parts) > 2 else "kill"
        if kind == "hang":
            while True:
                time.sleep(3600)
        if kind == "oom":
            raise MemoryError(f"out of memory at step {step} (RHINO_FAULT_AT test hook)")
        os.kill(os.getpid(), signal.SIGKILL)


def rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # Linux: KiB


class Metrics:
    """Per-step records, rank 0 writing the JSONL (flushed: the controller tails it).

    Every rank posts its numbers with a non-blocking send and goes on; rank 0 writes a
    step's line once all ranks' numbers for it have arrived. A blocking gather per step
    would add a synchronization the program itself may not have (and, with more ranks
    than cores, MPICH's busy-waiting root takes a core from the ranks still computing)."""
    TAG = 7301

    def __init__(self, world, rank: int, path: str | None, attempt: int, scalars: list[int], beat=None):
        from mpi4py import MPI
        self.MPI, self.world, self.rank, self.beat = MPI, world, rank, beat
        self.size = world.Get_size()
        self.f = open(path, "a", buffering=1) if rank == 0 and path else None
        self.attempt, self.scalars = attempt, scalars
        self.pending: dict[int, dict[int, tuple]] = {}
        self.sent: list = []

    def write(self, rec: dict) -> None:
        if self.f is not None:
            self.f.write(json.dumps(dict(rec, attempt=self.attempt, time=round(time.time(), 6))) + "\n")

    def step(self, k: int, seconds: float, collective: float, scalars: dict) -> None:
        rec = (k, seconds, collective, rss_bytes(), scalars)
        if self.rank != 0:
            self.sent = [r for r in self.sent if not r.Test()]
            self.sent.append(self.world.isend(rec, dest=0, tag=self.TAG))
            return
        self._add(0, rec)
        while self.world.Iprobe(source=self.MPI.ANY_SOURCE, tag=self.TAG):
            self._recv()

    def _recv(self) -> None:
        st = self.MPI.Status()
        rec = self.world.recv(source=self.MPI.ANY_SOURCE, tag=self.TAG, status=st)
        self._add(st.Get_source(), rec)

    def _add(self, r: int, rec: tuple) -> None:
        k = rec[0]
        self.pending.setdefault(k, {})[r] = rec
        # a rank's records arrive in step order, so steps complete in order
        while self.pending and len(self.pending[min(self.pending)]) == self.size:
            k0 = min(self.pending)
            got = self.pending.pop(k0)
            per = [got[q] for q in range(self.size)]
            merged = {key: v for p in per for key, v in p[4].items()}
            self.write({"step": k0, **{f"out{i}": merged[f"out{i}"] for i in self.scalars if f"out{i}" in merged},
                        "step_ms": round(max(p[1] for p in per) * 1e3, 4),
                        "collective_ms": round(max(p[2] for p in per) * 1e3, 4),
                        "rss_bytes": [p[3] for p in per]})

    def flush(self) -> None:
        """Every record posted so far written (rank 0) or delivered (the others); waiting
        on peers, so it beats as a collective."""
        if self.beat is not None:
            self.beat.collective(True)
        try:
            self._flush()
        finally:
            if self.beat is not None:
                self.beat.collective(False)

    def _flush(self) -> None:
        if self.rank != 0:
            self.MPI.Request.Waitall(self.sent)
            self.sent = []
            return
        while self.pending:
            self._recv()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


def checkpoint_manifest(job: dict, step: int, readers: dict) -> dict:
    return {"program_sha256": job["program_sha256"], "plan_sha256": job["plan_sha256"],
            "artifact": job["artifact"], "num_devices": job["num_devices"],
            "carry": {f"out{i}": f"arg{j}" for i, j in job["carry"]},
            "data_position": {"step": step, "arrays": {
                f"arg{j}": {"length": r.length, "index": step % r.length} for j, r in readers.items()}}}


def save_with(job, world, rank, beat, metrics, held, mine, arrays, readers, step) -> int:
    """Checkpoint `step`: this rank's carried shards `held` (arg j -> array) in the layouts
    `mine` ("argJ" -> Place); `arrays` describes every carried array. Collective."""
    from . import checkpoint as ckpt
    from . import train_state as ts
    ck = job["checkpoint"]
    beat.phase("checkpoint", step)
    shards = {name: (held[int(name[3:])], p) for name, p in mine.items()}
    rec = ts.save(world, rank, shards, arrays, ck["dir"], step, f"{job['job_id']}-{job['attempt']}",
                  checkpoint_manifest(job, step, readers))
    metrics.flush()          # every rank is past `step`: the step lines before the event line
    if rank == 0:
        ckpt.prune(ck["dir"], ck["keep"])
        metrics.write({"event": "checkpoint", "step": step, "path": rec["path"],
                       "bytes": rec["bytes"], "seconds": round(rec["seconds"], 6)})
    beat.phase("running", step)
    return step


def finish(job, run_dir, world, rank, beat, status, held, mine, every, times, clock) -> None:
    """`--outputs` (whole carried values on rank 0: `every` = "argJ" -> Place of all of
    them, `mine` = the ones this rank holds) and the run summary (`clock`: the seconds
    the initial values took to read, the loop's start)."""
    loop = time.perf_counter() - clock["loop_start"]
    from . import train_state as ts
    from .layout import to_wire
    import numpy as np
    beat.phase("outputs")
    status("gather")
    if job.get("outputs"):
        shards = {name: (held[int(name[3:])], p) for name, p in mine.items()}
        outs = ts.gather_globals(world, rank, shards, {k: p.spec for k, p in every.items()})
        if rank == 0:
            tmp = job["outputs"] + ".tmp.npz"
            np.savez(tmp, **{k: to_wire(v) for k, v in outs.items()})
            os.replace(tmp, job["outputs"])
    jax_seen = any(m in sys.modules for m in ("jax", "jaxlib"))
    got = world.gather((times, jax_seen, clock["read_seconds"]), root=0)
    if rank == 0:
        steps = [max(g[0][k] for g in got) for k in range(len(times))]
        (Path(run_dir) / "result.json").write_text(json.dumps(
            {"step_seconds": steps, "jax_imported": any(g[1] for g in got),
             "read_seconds": max(g[2] for g in got), "loop_seconds": loop}))
    beat.phase("done")
    status("done")
