"""One rank of `rhino train`: the step loop with carried shards. Started by the controller.

    python -m rhino_mlir.launch.rank.train_rank --run-dir RUN   (reads RUN/job.json)

Per step k: the carried arguments are this rank's local shards from step k-1 (or from
`--init` / a checkpoint at the start), every other argument is this rank's shard of
`DIR/argJ.npy[k mod length]`; the program runs; result i replaces carried argument j
in place (no gather, no trip through rank 0). Rank 0 appends the step's record to the
metrics file: the scalar results, the slowest rank's step time, time in collectives and
every rank's memory high-water mark. Every `--checkpoint-every` steps the ranks write
their shards of the carried values (train_state.save). A pipelined artifact runs the
same loop over its stages (train_pipeline.py).

Failures: an exception is written to RUN/rank<r>.error (one line) and
RUN/rank<r>.fault.json (cause "oom" or "error", step), then the job is aborted. Test
hook (docs/train.md): RHINO_FAULT_AT=RANK:STEP[:oom|:hang] (first attempt only; `@A`
picks attempt A, entries comma-separated) makes that rank SIGKILL itself, raise
out-of-memory or hang at the start of that step; the controller passes the entries
of the attempt in the job's `fault`. Never imports jax.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

from .train_loop import Metrics, fault_hook, finish, save_with

OOM = re.compile(r"RESOURCE_EXHAUSTED|out of memory|failed to allocate|Cannot allocate memory",
                 re.IGNORECASE)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rhino_mlir.launch.rank.train_rank")
    ap.add_argument("--run-dir", required=True)
    args = ap.parse_args(argv)
    from mpi4py import MPI
    from .main import _Status
    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    job = json.loads((Path(args.run_dir) / "job.json").read_text())
    status = _Status(args.run_dir, rank)
    status("started")
    state = {"step": None}
    try:
        return run(job, args.run_dir, world, rank, status, state)
    except BaseException as e:  # noqa: BLE001 - one line to the controller, then abort the job
        from ...errors import RhinoError
        text = str(e) if isinstance(e, (RhinoError, MemoryError)) and str(e) else f"{type(e).__name__}: {e}"
        cause = "oom" if isinstance(e, MemoryError) or OOM.search(text) else "error"
        where = f" at step {state['step']}" if state["step"] is not None else ""
        msg = f"rank {rank}{where}: {text.splitlines()[0] if text else type(e).__name__}"
        (Path(args.run_dir) / f"rank{rank}.fault.json").write_text(json.dumps(
            {"rank": rank, "cause": cause, "step": state["step"], "message": msg}))
        status.error(msg + "\n" + traceback.format_exc())
        status("failed")
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
        world.Abort(3)
        return 3


def run(job: dict, run_dir: str, world, rank: int, status, state: dict) -> int:
    from ..artifact import check_file, read_artifact
    from .beat import Beat, TimedComm, Watched
    from .comm import MpiCommunicator
    from .runtime import Executor
    from . import train_state as ts

    art = read_artifact(job["artifact"], verify=False)
    beat = Beat(run_dir, rank)
    world = Watched(world, beat)          # blocking calls beat: the controller names who hung
    if (art.manifest.get("schedule") or {}).get("pipeline"):
        from .train_pipeline import run_pipeline
        return run_pipeline(job, run_dir, art, world, rank, status, beat, state)
    me = art.rank(rank)
    prog = art.program(me["program"])
    raw = world.Split(color=me["stage"], key=me["device"])
    comm = Watched(raw, beat)
    n = art.num_devices
    specs = art.inputs
    place = {j: ts.Place(s, art.meshes, n, me["device"]) for j, s in enumerate(specs)}
    out_place = {i: ts.Place(s, art.meshes, n, me["device"]) for i, s in enumerate(art.outputs)}
    carry = {j: i for i, j in job["carry"]}                      # arg j <- out i
    beat.phase("loading")
    status("loading")
    if job["start"]["kind"] == "checkpoint" or job.get("checkpoint"):
        from . import checkpoint
        checkpoint._zarr()          # its import is charged to neither the read nor a save
    t_read = time.perf_counter()
    carried = ts.initial(job["start"], specs, {j: (j, place[j]) for j in carry})
    t_read = time.perf_counter() - t_read
    readers = {int(j): ts.DataReader(p, specs[int(j)]) for j, p in job["data"].items()}
    same = {j: out_place[i].same_layout(place[j]) for j, i in carry.items()}
    vmfb = check_file(art, prog.vmfb)
    driver = os.environ.get("RHINO_IREE_DRIVER") or art.manifest["iree"]["driver"]
    tcomm = TimedComm(MpiCommunicator(raw), beat)
    ex = Executor(vmfb, tcomm, driver=driver, entry=prog.entry, imports=prog.imports,
                  device_index=me["device"])
    metrics = Metrics(world._inner, rank, job["metrics"], job["attempt"], job["scalars"], beat)
    ck = job.get("checkpoint")
    names = {f"arg{j}": place[j] for j in carry}
    arrays = ts.carried_arrays(names)
    start, steps = job["start"]["step"], job["steps"]
    times, written = [], None
    try:
        world.Barrier()
        t_loop = time.perf_counter()
        beat.phase("running", start)
        status("running")
        for k in range(start, steps):
            state["step"] = k
            beat.step(k)
            fault_hook(job.get("fault"), rank, k)
            t0 = time.perf_counter()
            c0 = tcomm.seconds
            xs = [carried[j] if j in carried else readers[j](k, place[j]) for j in range(len(specs))]
            res = ex(*xs)
            for j, i in carry.items():
                carried[j] = res[i] if same[j] else ts.reshard(res[i], out_place[i], place[j], comm)
            dt = time.perf_counter() - t0
            times.append(dt)
            metrics.step(k, dt, tcomm.seconds - c0,
                         {f"out{i}": ts.scalar(res[i]) for i in job["scalars"]} if rank == 0 else {})
            if ck and (k + 1) % ck["every"] == 0:
                written = save_with(job, world, rank, beat, metrics, carried, names, arrays, readers, k + 1)
        if ck and written != steps and steps > start:
            save_with(job, world, rank, beat, metrics, carried, names, arrays, readers, steps)
        metrics.flush()
    finally:
        ex.close()
        metrics.close()
    finish(job, run_dir, world, rank, beat, status, carried, names, names, times,
           {"read_seconds": t_read, "loop_start": t_loop})
    return 0


if __name__ == "__main__":
    sys.exit(main())
