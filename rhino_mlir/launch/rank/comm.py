"""Communicators: the collectives the `rhino` VM module needs, over MPI or threads.

Every method takes C-contiguous numpy arrays and writes into a caller-provided `out`
(the mapped HAL buffer of the result, so MPI reads and writes device memory of the CPU
driver directly — no staging copy). Groups are tuples of ranks in this communicator
(= device indices of the stage's mesh); collectives are SPMD: every rank of the
communicator reaches the same call with the same groups.

    all_reduce(x, out, op, group)        out = op over group of x
    all_gather(x, out, group)            out = concat over group along axis 0 (rank order)
    reduce_scatter(x, out, op, group)    x = g blocks along axis 0; out = op over block i
    all_to_all(x, out, group)            x = g blocks along axis 0; out[j] = block me of j
    permute(x, out, send_to, recv_from)  point-to-point, None = no partner (out zeroed)

Layout changes for dims other than 0 are the runtime's job (`runtime.py`), so a backend
only ever moves contiguous blocks. Pure numpy + mpi4py: rank processes import this.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from ...errors import RhinoError

REDUCE_OPS = ("sum", "prod", "min", "max")
_NP_REDUCE = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum}


def _native(x: np.ndarray, op: str) -> tuple[np.ndarray, str, bool]:
    """(array MPI can reduce, op, widened?): f16/bf16 reduce in f32, bool as uint8.

    bool sum = or = max, prod = and = min (StableHLO's i1 add/multiply)."""
    if x.dtype == np.bool_:
        return x.view(np.uint8), {"sum": "max", "prod": "min"}.get(op, op), False
    if x.dtype == np.float16 or x.dtype.name == "bfloat16":
        return x.astype(np.float32), op, True
    return x, op, False


class Communicator:
    """Interface; `rank`/`size` index the devices of one stage."""
    rank: int
    size: int
    name = "base"

    def all_reduce(self, x, out, op: str, group: Sequence[int]) -> None: raise NotImplementedError
    def all_gather(self, x, out, group: Sequence[int]) -> None: raise NotImplementedError
    def reduce_scatter(self, x, out, op: str, group: Sequence[int]) -> None: raise NotImplementedError
    def all_to_all(self, x, out, group: Sequence[int]) -> None: raise NotImplementedError
    def permute(self, x, out, send_to: int | None, recv_from: int | None) -> None: raise NotImplementedError
    def barrier(self) -> None: raise NotImplementedError


# ----------------------------------------------------------------------------- MPI

class MpiCommunicator(Communicator):
    """mpi4py over a parent communicator; one cached sub-communicator per replica group."""
    name = "mpi"

    def __init__(self, comm=None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._subs: dict[tuple, object] = {}
        self._ops = {"sum": MPI.SUM, "prod": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}

    def _sub(self, group: Sequence[int]):
        """Communicator of `group` with ranks in group order (gather order matters).

        Split is collective over the parent, which SPMD guarantees: every rank meets the
        same collective with the same set of groups, each rank in exactly one of them, so
        all ranks call Split at the same point. Keyed by the group that holds this rank."""
        g = tuple(group)
        if len(g) == self.size and g == tuple(range(self.size)):
            return self.comm
        c = self._subs.get(g)
        if c is None:
            c = self.comm.Split(color=min(g), key=g.index(self.rank))
            self._subs[g] = c
        return c

    def all_reduce(self, x, out, op, group):
        c = self._sub(group)
        if len(group) == 1:
            np.copyto(out, x)
            return
        xs, op2, wide = _native(x, op)
        if wide:
            tmp = np.empty_like(xs)
            c.Allreduce(xs, tmp, self._ops[op2])
            np.copyto(out, tmp.astype(out.dtype))
        else:
            c.Allreduce(xs, out.view(xs.dtype), self._ops[op2])

    def all_gather(self, x, out, group):
        c = self._sub(group)
        c.Allgather(x.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8))

    def reduce_scatter(self, x, out, op, group):
        c = self._sub(group)
        if len(group) == 1:
            np.copyto(out, x.reshape(out.shape))
            return
        xs, op2, wide = _native(x, op)
        if wide:
            tmp = np.empty(out.shape, xs.dtype)
            c.Reduce_scatter_block(xs, tmp, self._ops[op2])
            np.copyto(out, tmp.astype(out.dtype))
        else:
            c.Reduce_scatter_block(xs, out.view(xs.dtype), self._ops[op2])

    def all_to_all(self, x, out, group):
        c = self._sub(group)
        c.Alltoall(x.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8))

    def permute(self, x, out, send_to, recv_from):
        MPI = self.MPI
        dst = MPI.PROC_NULL if send_to is None else send_to
        src = MPI.PROC_NULL if recv_from is None else recv_from
        if recv_from is None:
            out.reshape(-1).view(np.uint8)[:] = 0
        if dst == self.rank and src == self.rank:
            np.copyto(out, x)
            return
        self.comm.Sendrecv(x.reshape(-1).view(np.uint8), dest=dst, sendtag=7,
                           recvbuf=out.reshape(-1).view(np.uint8), source=src, recvtag=7)

    def barrier(self):
        self.comm.Barrier()


# ----------------------------------------------------------------------------- threads

class ThreadWorld:
    """Shared state of N thread ranks in one process (unit tests, no MPI needed)."""

    def __init__(self, size: int, timeout: float = 60.0):
        self.size = size
        self.slots: list = [None] * size
        self.barrier_ = threading.Barrier(size, timeout=timeout)

    def communicators(self) -> list["ThreadCommunicator"]:
        return [ThreadCommunicator(self, r) for r in range(self.size)]


class ThreadCommunicator(Communicator):
    """Every collective = post my array, barrier, read peers, barrier (slow, exact)."""
    name = "threads"

    def __init__(self, world: ThreadWorld, rank: int):
        self.world, self.rank, self.size = world, rank, world.size

    def _exchange(self, payload) -> list:
        w = self.world
        w.slots[self.rank] = payload
        try:
            w.barrier_.wait()
            seen = list(w.slots)
            w.barrier_.wait()
        except threading.BrokenBarrierError:
            raise RhinoError(f"threads communicator: rank {self.rank} timed out waiting "
                             "for peers (a peer failed or skipped a collective)") from None
        return seen

    def all_reduce(self, x, out, op, group):
        allx = self._exchange(np.array(x))
        # f16/bf16 accumulate in f32 like the MPI backend; bool stays bool
        xs = [allx[r] if allx[r].dtype == np.bool_ else _native(allx[r], op)[0] for r in group]
        acc = xs[0].copy()
        for y in xs[1:]:
            acc = _bool_aware(op, acc, y)
        np.copyto(out, acc.astype(out.dtype))

    def all_gather(self, x, out, group):
        allx = self._exchange(np.array(x))
        np.copyto(out, np.concatenate([allx[r].reshape(-1) for r in group]).reshape(out.shape))

    def reduce_scatter(self, x, out, op, group):
        tmp = np.empty(x.shape, x.dtype)
        self.all_reduce(x, tmp, op, group)
        g, i = len(group), list(group).index(self.rank)
        np.copyto(out, tmp.reshape(g, -1)[i].reshape(out.shape))

    def all_to_all(self, x, out, group):
        allx = self._exchange(np.array(x))
        g, i = len(group), list(group).index(self.rank)
        blocks = [allx[r].reshape(g, -1)[i] for r in group]
        np.copyto(out, np.concatenate(blocks).reshape(out.shape))

    def permute(self, x, out, send_to, recv_from):
        allx = self._exchange(np.array(x))
        if recv_from is None:
            out[...] = 0
        else:
            np.copyto(out, allx[recv_from])

    def barrier(self):
        self._exchange(None)


def _bool_aware(op: str, a, b):
    if a.dtype == np.bool_:
        return (a | b) if op in ("sum", "max") else (a & b)
    return _NP_REDUCE[op](a, b)


def make_communicator(backend: str, **kw) -> Communicator:
    if backend == "mpi":
        return MpiCommunicator(kw.get("comm"))
    if backend == "threads":
        return ThreadCommunicator(kw["world"], kw["rank"])
    raise RhinoError(f"unknown communicator backend '{backend}' (expected mpi or threads)")
