"""`rhino train` on a pipelined artifact: the step loop of train_rank.py over stages.

Each step runs this rank's stage with launch/rank/pipeline.py's `Stage` (the schedule,
the boundary values over MPI as pipeline_rank.py sends them). A carried argument j is
produced by one stage function (result i of @main is a value of, typically, a stage's
`update`) and read by one or more stage functions, each with its own input layout; a
rank keeps it as local shards: one in the producer's layout when its stage produces it
(what checkpoints and `--outputs` read), one per consumer layout on its stage. After a
step the producer's new shard replaces every consumer shard with the same layout on
the same stage in place; a value read by another stage or in another layout (tied
embeddings, the optimizer's step counter read by every stage) is assembled on the
producing stage's first device and broadcast, and each reader keeps its slice.
Data arguments are read per micro-batch: this shard of micro-batch mb of step k only.
Never imports jax.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from ...errors import RhinoError
from . import train_state as ts
from .layout import ValueSpec, assemble_value, np_dtype


def _places(art, table, stage: int, device: int):
    """Consumer places (fn, k) -> (arg, Place, dim) of this stage; producer of each out."""
    from .pipeline_rank import _mesh, _spec
    mesh = _mesh(table)
    meshes, n = {mesh.name: mesh}, mesh.size
    st = art.manifest["stages"]
    cons = {}
    for f in table["functions"]:
        if f["stage"] != stage:
            continue
        prog = art.manifest["programs"][st[stage]["programs"][f["name"]]]
        for k, e in enumerate(f["inputs"]):
            if e["kind"] == "arg":
                cons[(f["name"], k)] = (e["arg"], ts.Place(_spec(prog["inputs"][k]), meshes, n, device),
                                        e.get("dim"))
    return cons, meshes, n


def _producer(art, table, out_index: int, meshes, n: int, device: int):
    """(stage, value id, Place in the producer's output layout) of @main result i."""
    from .pipeline_rank import _spec
    o = table["outputs"][out_index]
    if "value" not in o:
        raise RhinoError(f"out{out_index} passes argument {o['arg']} through unchanged; a pipelined "
                         "artifact cannot carry it (pass --carry without it)")
    v = table["values"][o["value"]]
    prog = art.manifest["programs"][art.manifest["stages"][v["stage"]]["programs"][v["fn"]]]
    spec = _spec(prog["outputs"][v["result"]])
    main = art.outputs[out_index]          # the global name and type; the program's sharding
    return v["stage"], o["value"], ts.Place(ValueSpec(main.name, main.dtype, main.shape, spec.sharding),
                                            meshes, n, device)


def run_pipeline(job, run_dir, art, world, rank, status, beat, state) -> int:
    from ..artifact import check_file
    from .beat import TimedComm, Watched, watched
    from .comm import MpiCommunicator
    from .pipeline import Stage, Transport
    from .pipeline_rank import Whole, _Mpi, _shard, _spec
    from .runtime import Executor
    from .train_loop import Metrics, fault_hook, finish, save_with
    sched = art.manifest["schedule"]
    table = sched["pipeline"]
    me = art.rank(rank)
    stage, device = me["stage"], me["device"]
    raw_world = world._inner
    raw = world.Split(color=stage, key=device)
    comm = Watched(raw, beat)
    cons, meshes, n = _places(art, table, stage, device)
    carry = {j: i for i, j in job["carry"]}
    prod = {j: _producer(art, table, i, meshes, n, device) for j, i in carry.items()}
    specs = art.inputs
    beat.phase("loading")
    status("loading")
    src = job["start"]

    if src["kind"] == "checkpoint" or job.get("checkpoint"):
        from . import checkpoint
        checkpoint._zarr()          # its import is charged to neither the read nor a save
    t_read = time.perf_counter()
    held = ts.initial(src, specs, {j: (j, p) for j, (s, _, p) in prod.items() if s == stage})
    local = ts.initial(src, specs, {key: (a, p) for key, (a, p, _) in cons.items() if a in carry})
    t_read = time.perf_counter() - t_read
    # how each consumer shard follows its producer: "same" (share the array) or "bcast"
    follow = {key: ("same" if prod[a][0] == stage and prod[a][2].same_layout(p) else "bcast")
              for key, (a, p, _) in cons.items() if a in carry}
    need = sorted({a for key, (a, _, _) in cons.items() if a in carry and follow[key] == "bcast"}
                  | {j for j in carry if _read_elsewhere(j, prod[j][0], table)})
    roots = {j: art.manifest["stages"][prod[j][0]]["devices"][0] for j in need}
    readers = {int(j): ts.DataReader(p, specs[int(j)]) for j, p in job["data"].items()}
    driver = os.environ.get("RHINO_IREE_DRIVER") or art.manifest["iree"]["driver"]
    tcomm = TimedComm(MpiCommunicator(raw), beat)
    exes, fspecs = {}, {}
    for fn, pname in art.manifest["stages"][stage]["programs"].items():
        p = art.program(pname)
        exes[fn] = Executor(check_file(art, p.vmfb), tcomm, driver=driver, entry=p.entry,
                            imports=p.imports, device_index=device)
        fspecs[fn] = [_spec(d) for d in art.manifest["programs"][pname]["inputs"]]
    step_k = [0]

    def arg(fn, k, a, mb):
        if a in carry:
            return local[(fn, k)]
        _, place, dim = cons[(fn, k)]
        shift = {dim: mb * place.spec.shape[dim]} if dim is not None and mb is not None else None
        return readers[a](step_k[0], place, shift)

    def call(fn, xs):
        xs = [_shard(x.x, fspecs[fn][k], meshes[next(iter(meshes))], device) if isinstance(x, Whole) else x
              for k, x in enumerate(xs)]
        return exes[fn](*xs)

    transport = _Mpi(raw_world, raw, art, table, stage, device)
    # waiting on another stage beats as a collective (the controller names who hung)
    recv, done = watched(transport.recv, beat), watched(transport.finish, beat)
    metrics = Metrics(raw_world, rank, job["metrics"], job["attempt"], job["scalars"], beat)
    ck = job.get("checkpoint")
    names = {f"arg{j}": p for j, (s, _, p) in prod.items()}
    arrays = ts.carried_arrays(names)
    mine_names = {f"arg{j}": p for j, (s, _, p) in prod.items() if s == stage}
    scal = _scalar_sources(table, job["scalars"], stage)
    times, written = [], None
    start, steps = src["step"], job["steps"]
    try:
        world.Barrier()
        t_loop = time.perf_counter()
        beat.phase("running", start)
        status("running")
        for k in range(start, steps):
            state["step"], step_k[0] = k, k
            beat.step(k)
            fault_hook(job.get("fault"), rank, k)
            t0, c0 = time.perf_counter(), tcomm.seconds
            outs = Stage(table, stage, call, arg, Transport(transport.send, recv), sched["kind"]).run()
            done()
            for j in carry:
                if prod[j][0] == stage:
                    held[j] = outs[prod[j][1]]
            for j in need:
                whole = _broadcast(world, comm, rank, roots[j], held.get(j), prod[j][2], stage == prod[j][0])
                for key, (a, p, _) in cons.items():
                    if a == j and follow[key] == "bcast":
                        local[key] = p.take(whole)
            for key, (a, p, _) in cons.items():
                if a in carry and follow[key] == "same":
                    local[key] = held[a]
            dt = time.perf_counter() - t0
            times.append(dt)
            sc = {f"out{i}": ts.scalar(_last(outs[vid])) for i, vid in scal.items() if device == 0}
            metrics.step(k, dt, tcomm.seconds - c0, sc)
            if ck and (k + 1) % ck["every"] == 0:
                written = save_with(job, world, rank, beat, metrics, held, mine_names, arrays, readers, k + 1)
        if ck and written != steps and steps > start:
            save_with(job, world, rank, beat, metrics, held, mine_names, arrays, readers, steps)
        metrics.flush()
    finally:
        for e in exes.values():
            e.close()
        metrics.close()
    finish(job, run_dir, world, rank, beat, status, held, mine_names, names, times,
           {"read_seconds": t_read, "loop_start": t_loop})
    return 0


def _read_elsewhere(j: int, stage: int, table) -> bool:
    return any(e["kind"] == "arg" and e["arg"] == j and f["stage"] != stage
               for f in table["functions"] for e in f["inputs"])


def _scalar_sources(table, scalars, stage: int) -> dict[int, str]:
    """out i -> value id, for the scalar results this stage produces."""
    out = {}
    for i in scalars:
        o = table["outputs"][i]
        if "value" in o and table["values"][o["value"]]["stage"] == stage:
            out[i] = o["value"]
    return out


def _last(x):
    """A per-micro-batch value reported once per step: the last micro-batch's."""
    return x[max(x)] if isinstance(x, dict) else x


def _broadcast(world, comm, rank: int, root: int, shard, place: ts.Place, producer: bool) -> np.ndarray:
    """The whole value of a carried argument on every rank, from its producing stage."""
    if producer:
        shards = comm.gather(shard, root=0)
    whole = np.empty(place.spec.shape, np_dtype(place.spec.dtype))
    if rank == root:
        whole = assemble_value(shards, place.spec, place.meshes, place.n)
    buf = whole.reshape(-1).view(np.uint8) if whole.size else np.empty(0, np.uint8)
    world.Bcast(buf, root=root)
    return whole


if __name__ == "__main__":      # pragma: no cover
    sys.exit("run through rhino_mlir.launch.rank.train_rank")
