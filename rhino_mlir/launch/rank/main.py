"""One rank of `rhino launch`: started by mpiexec, never imports jax.

    python -m rhino_mlir.launch.rank.main ARTIFACT --run-dir RUN --inputs in.npz [--outputs out.npz]

Rank 0 reads and checks the inputs, slices them per the manifest and scatters the
shards; every rank runs its program's executable (collectives through the `rhino`
module over MPI); rank 0 gathers the results, crops padding and writes the outputs.
Each rank keeps `RUN/rank<r>.json` up to date (pid, host, phase) so the launcher can
name a rank that died or hung; an error in any rank is written to `RUN/rank<r>.error`
and aborts the whole job (MPI_Abort) instead of leaving the others waiting.

Test hooks (fault tests only): RHINO_TEST_KILL_RANK=r makes rank r SIGKILL itself,
RHINO_TEST_HANG_RANK=r makes it sleep forever, both once the executable is loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path


class _Status:
    def __init__(self, run_dir: str, rank: int):
        self.path = Path(run_dir) / f"rank{rank}.json"
        self.rank = rank

    def __call__(self, phase: str, **extra) -> None:
        d = {"rank": self.rank, "pid": os.getpid(), "host": socket.gethostname(),
             "phase": phase, "time": time.time(), **extra}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(d))
        os.replace(tmp, self.path)

    def error(self, msg: str) -> None:
        (self.path.parent / f"rank{self.rank}.error").write_text(msg)


def _test_hooks(rank: int) -> None:
    if os.environ.get("RHINO_TEST_KILL_RANK") == str(rank):
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("RHINO_TEST_HANG_RANK") == str(rank):
        while True:
            time.sleep(3600)




def _carry(art, comm, device: int, carry, results, mine) -> None:
    """Results become the next repeat's arguments, as local shards (resharded only when
    the program gives a result another layout than its argument)."""
    if not carry:
        return
    from .train_state import Place, reshard
    for i, j in carry:
        src = Place(art.outputs[i], art.meshes, art.num_devices, device)
        dst = Place(art.inputs[j], art.meshes, art.num_devices, device)
        mine[j] = results[i] if src.same_layout(dst) else reshard(results[i], src, dst, comm)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rhino_mlir.launch.rank.main")
    ap.add_argument("artifact")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--inputs")
    ap.add_argument("--outputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs (the first is warm-up)")
    ap.add_argument("--carry", default="", help="I:J,...: result I is argument J of the next "
                    "repeat (carried state: a decode step's KV cache, a train step's parameters)")
    args = ap.parse_args(argv)

    from mpi4py import MPI
    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    status = _Status(args.run_dir, rank)
    status("started")
    try:
        return _run(args, world, rank, size, status)
    except Exception as e:  # one line to the launcher, then take the whole job down
        msg = f"rank {rank}: {e}" if str(e) else f"rank {rank}: {type(e).__name__}"
        status.error(msg + "\n" + traceback.format_exc())
        status("failed")
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
        world.Abort(3)
        return 3


def _run(args, world, rank: int, size: int, status) -> int:
    import numpy as np
    from ...errors import RhinoError
    from ..artifact import check_file, read_artifact
    from .beat import Beat, TimedComm, Watched
    from .comm import MpiCommunicator
    from .layout import assemble_value, load_inputs, slice_value, to_wire
    from .runtime import Executor

    # rank 0 checks everything (one clear error for the user); others only their files
    art = read_artifact(args.artifact, verify=(rank == 0))
    if (art.manifest.get("schedule") or {}).get("pipeline"):
        from .pipeline_rank import run_pipeline   # several stages: launch/rank/pipeline.py
        return run_pipeline(args, art, world, rank, size, status)
    if size != art.num_devices:
        raise RhinoError(f"artifact runs on {art.num_devices} devices but {size} ranks were started")
    me = art.rank(rank)
    prog = art.program(me["program"])
    vmfb = check_file(art, prog.vmfb) if rank else art.path(prog.vmfb)
    stage = [r for r in art.manifest["ranks"] if r["stage"] == me["stage"]]
    # the stage communicator's rank order is device order: rank == partition_id
    comm = world.Split(color=me["stage"], key=me["device"])
    # heartbeats: when a rank dies, the others are blocked inside a collective and it is
    # not; the launcher names it from them (MPICH's message names *a* pid of the job)
    beat = Beat(args.run_dir, rank)
    world, comm_w = Watched(world, beat), Watched(comm, beat)
    meshes, n = art.meshes, art.num_devices

    shards = None
    if rank == 0:
        status("reading inputs")
        inputs = load_inputs(art, args.inputs, args.seed)
        per_device = [slice_value(x, s, meshes, n) for x, s in zip(inputs, art.inputs)]
        shards = [[pd[r["device"]] for pd in per_device] for r in art.manifest["ranks"]]
    status("scatter")
    mine = world.scatter(shards, root=0)
    del shards

    status("loading")
    # RHINO_IREE_DRIVER=local-sync: no IREE worker threads (ranks >= cores on a host)
    driver = os.environ.get("RHINO_IREE_DRIVER") or art.manifest["iree"]["driver"]
    ex = Executor(vmfb, TimedComm(MpiCommunicator(comm), beat), driver=driver,
                  entry=prog.entry, imports=prog.imports, device_index=me["device"])
    try:
        _test_hooks(rank)
        times = []
        carry = [tuple(int(x) for x in p.split(":")) for p in args.carry.split(",") if p]
        for r in range(max(1, args.repeat)):
            status("running")
            comm_w.Barrier()
            t0 = time.perf_counter()
            results = ex(*mine)
            times.append(time.perf_counter() - t0)
            if r + 1 < args.repeat:
                _carry(art, comm, me["device"], carry, results, mine)
        calls = ex.rhino.calls
    finally:
        ex.close()
    status("gather")
    jax_seen = any(m in sys.modules for m in ("jax", "jaxlib"))   # must stay False
    gathered = world.gather((me["device"], results, times, calls, jax_seen), root=0)
    if rank == 0:
        by_dev = {d: res for d, res, *_ in gathered}
        outs = [assemble_value([by_dev[d][i] for d in range(len(stage))], s, meshes, n)
                for i, s in enumerate(art.outputs)]
        if args.outputs:
            tmp = args.outputs + ".tmp.npz"
            np.savez(tmp, **{s.name: to_wire(o) for s, o in zip(art.outputs, outs)})
            os.replace(tmp, args.outputs)
        steps = [max(g[2][k] for g in gathered) for k in range(len(times))]
        timed = steps[1:] if len(steps) > 1 else steps
        summary = {"step_seconds": sorted(timed)[len(timed) // 2], "steps": steps,
                   "collective_calls": gathered[0][3], "ranks": size,
                   "jax_imported": any(g[4] for g in gathered)}
        (Path(args.run_dir) / "result.json").write_text(json.dumps(summary))
    status("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
