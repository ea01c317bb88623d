"""Communicators: every collective kind x dtype, threads backend and MPI backend."""
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rhino_mlir.errors import RhinoError
from rhino_mlir.launch.rank.comm import ThreadWorld, make_communicator
from rhino_mlir.launch.rank.launcher import find_mpiexec

import comm_cases

HERE = Path(__file__).parent


def _threads(size, fn):
    world = ThreadWorld(size, timeout=30)
    comms = world.communicators()
    res, errs = [None] * size, []

    def body(r):
        try:
            res[r] = fn(comms[r])
        except Exception as e:  # surfaced below with the rank
            errs.append((r, e))
            world.barrier_.abort()
    ts = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0][1]
    return res


@pytest.mark.parametrize("size", [1, 2, 4])
def test_threads_all_kinds_all_dtypes(size):
    n = _threads(size, lambda c: comm_cases.run_all(c, size))
    assert n[0] > 0


def test_threads_peer_failure_is_an_error_not_a_hang():
    world = ThreadWorld(2, timeout=0.5)
    c = world.communicators()[0]
    import numpy as np
    with pytest.raises(RhinoError, match="rank 0 timed out waiting for peers"):
        c.all_reduce(np.zeros(2), np.zeros(2), "sum", (0, 1))


def test_unknown_backend():
    with pytest.raises(RhinoError, match="unknown communicator backend 'nccl'"):
        make_communicator("nccl")


@pytest.mark.parametrize("size", [3, 4])
def test_mpi_all_kinds_all_dtypes(size):
    code = ("import sys; sys.path.insert(0, %r); import comm_cases; "
            "from rhino_mlir.launch.rank.comm import MpiCommunicator; c = MpiCommunicator(); "
            "n = comm_cases.run_all(c, c.size); print('ok', c.rank, n)") % str(HERE)
    p = subprocess.run([find_mpiexec(), "-n", str(size), sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("ok") == size
