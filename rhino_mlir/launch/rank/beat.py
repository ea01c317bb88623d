"""Heartbeats of training ranks, and a communicator wrapper that times collectives.

Each rank maps a tiny file `RUN/rank<r>.beat` (five float64: step, in-collective flag,
collectives entered, time of the last beat, phase) and writes it in place: a store into
shared memory, no syscall, so it can be updated on every collective. The controller
reads all of them to tell a hang from a slow step: when no rank has beaten for
`--timeout` seconds the job is stuck, and the ranks *not* inside a collective (or,
when all are, the ones that entered the fewest) are the ones the others wait for.
Pure numpy: rank processes import this.
"""
from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import numpy as np

from .comm import Communicator

FIELDS = ("step", "in_collective", "collectives", "time", "phase")
PHASES = ("starting", "loading", "running", "checkpoint", "outputs", "done")
_N = len(FIELDS)


class Beat:
    """This rank's heartbeat slot."""

    def __init__(self, run_dir: str | Path, rank: int):
        p = Path(run_dir) / f"rank{rank}.beat"
        with open(p, "wb") as f:
            f.write(np.zeros(_N, np.float64).tobytes())
        self._fd = os.open(p, os.O_RDWR)
        self._mm = mmap.mmap(self._fd, _N * 8)
        self.v = np.frombuffer(self._mm, np.float64)
        self.phase("starting")

    def phase(self, name: str, step: int | None = None) -> None:
        if step is not None:
            self.v[0] = step
        self.v[4] = PHASES.index(name)
        self.v[3] = time.time()

    def step(self, k: int) -> None:
        self.v[0] = k
        self.v[3] = time.time()

    def collective(self, inside: bool) -> None:
        self.v[1] = 1.0 if inside else 0.0
        if inside:
            self.v[2] += 1
        self.v[3] = time.time()

    def close(self) -> None:
        self.v = None
        try:
            self._mm.close()
        except BufferError:        # a view is still alive; the OS unmaps at exit
            pass
        os.close(self._fd)


def read_beats(run_dir: str | Path, n: int) -> dict[int, dict]:
    """rank -> {step, in_collective, collectives, time, phase} for the ranks that started."""
    out = {}
    for r in range(n):
        p = Path(run_dir) / f"rank{r}.beat"
        try:
            v = np.frombuffer(p.read_bytes(), np.float64)
        except OSError:
            continue
        if v.size != _N:
            continue
        d = dict(zip(FIELDS, v.tolist()))
        d["phase"] = PHASES[int(d["phase"])] if 0 <= int(d["phase"]) < len(PHASES) else "?"
        d["step"], d["collectives"] = int(d["step"]), int(d["collectives"])
        d["in_collective"] = bool(d["in_collective"])
        out[r] = d
    return out


def culprits(beats: dict[int, dict], n: int) -> list[int]:
    """Ranks the others are waiting for: never started, else outside a collective, else
    the ones that entered the fewest collectives."""
    missing = [r for r in range(n) if r not in beats]
    if missing:
        return missing
    outside = [r for r, b in beats.items() if not b["in_collective"]]
    if outside and len(outside) < n:
        return sorted(outside)
    fewest = min(b["collectives"] for b in beats.values())
    behind = [r for r, b in beats.items() if b["collectives"] == fewest]
    return sorted(behind) if len(behind) < n else sorted(beats)


class TimedComm(Communicator):
    """Any communicator, timing every collective and beating around it."""

    def __init__(self, inner: Communicator, beat: Beat | None):
        self.inner, self.beat = inner, beat
        self.rank, self.size, self.name = inner.rank, inner.size, inner.name
        self.seconds = 0.0

    def _do(self, fn, *args) -> None:
        b = self.beat
        if b is not None:
            b.collective(True)
        t0 = time.perf_counter()
        try:
            fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0
            if b is not None:
                b.collective(False)

    def all_reduce(self, x, out, op, group): self._do(self.inner.all_reduce, x, out, op, group)
    def all_gather(self, x, out, group): self._do(self.inner.all_gather, x, out, group)
    def reduce_scatter(self, x, out, op, group): self._do(self.inner.reduce_scatter, x, out, op, group)
    def all_to_all(self, x, out, group): self._do(self.inner.all_to_all, x, out, group)
    def permute(self, x, out, send_to, recv_from): self._do(self.inner.permute, x, out, send_to, recv_from)
    def barrier(self): self._do(self.inner.barrier)


# blocking mpi4py calls: a rank inside one waits for its peers
_BLOCKING = frozenset({"Barrier", "barrier", "gather", "Gather", "bcast", "Bcast", "allgather",
                       "Allgather", "scatter", "Recv", "recv", "Send", "send", "Split", "Wait"})


class Watched:
    """An mpi4py communicator (or request) whose blocking calls beat as collectives, so a
    rank waiting on a dead or hung peer outside the program's collectives (metrics,
    checkpoints, pipeline transfers) is told from the one it waits for."""

    def __init__(self, inner, beat: Beat):
        self._inner, self._beat = inner, beat

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        return watched(attr, self._beat) if name in _BLOCKING and callable(attr) else attr


def watched(fn, beat: Beat):
    """`fn` beating as a collective while it runs (it blocks on peers)."""
    def call(*args, **kw):
        beat.collective(True)
        try:
            return fn(*args, **kw)
        finally:
            beat.collective(False)
    return call

