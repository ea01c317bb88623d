"""One rank of a pipelined artifact: its stage's functions, MPI point-to-point between stages.

Called by rank_main when the manifest has a pipeline schedule. Ranks are grouped by
stage (a sub-communicator per stage carries the stage's collectives through the `rhino`
VM module); each rank runs launch/rank/pipeline.py's `Stage` over an MPI transport:
  - a boundary value whose producer and consumers use the same sharding on equal meshes
    goes device i -> device i of the consumer stage (Isend, then blocking Recv);
  - otherwise the producing stage gathers it at its device 0, which sends the whole
    value to every rank of the consumer stage, and each one slices its own shard (the
    reshard between two different stage layouts);
  - accumulated values (gradients) are local shards summed across micro-batches.
Rank 0 scatters the whole arguments each stage reads and gathers the outputs, which it
assembles per the producing function's output sharding and the micro-batch layout.
Test hook: RHINO_TEST_PIPELINE_RESHARD=1 sends every boundary value the gather-and-reslice
way. Never imports jax.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ...sharding import Mesh, parse_sharding
from .layout import ValueSpec, assemble_value, bounds, np_dtype, to_wire
from .pipeline import Stage, Transport, assemble_outputs, micro_slice


class Whole:
    """A whole (global) value in flight: the consumer slices its shard."""

    def __init__(self, x):
        self.x = x


def _spec(d: dict) -> ValueSpec:
    return ValueSpec.from_json(d)


def _shard(x: np.ndarray, spec: ValueSpec, mesh: Mesh, device: int) -> np.ndarray:
    """This device's local shard of global `x` (zero padding at the end)."""
    if not spec.sharding:                    # (ascontiguousarray alone makes a scalar 1-d)
        return np.ascontiguousarray(x).reshape(x.shape)
    s = parse_sharding(spec.sharding)
    loc = s.local_shape(x.shape, mesh)
    b = bounds(x.shape, s, mesh, device)
    out = np.zeros(loc, dtype=x.dtype)
    out[tuple(slice(0, hi - lo) for lo, hi in b)] = x[tuple(slice(lo, hi) for lo, hi in b)]
    return out


class _Mpi:
    """Transport between stages over COMM_WORLD; tags name (value, micro-batch)."""

    def __init__(self, world, comm, art, table, stage: int, device: int):
        self.world, self.comm, self.art, self.table = world, comm, art, table
        self.stage, self.device = stage, device
        self.m = table["microbatches"]
        self.ids = {vid: k for k, vid in enumerate(sorted(table["values"]))}
        self.pending: list = []
        self.mesh = _mesh(table)

    def tag(self, vid: str, mb) -> int:
        return self.ids[vid] * (self.m + 1) + (self.m if mb is None else mb)

    def rank_of(self, stage: int, device: int) -> int:
        return self.art.manifest["stages"][stage]["devices"][device]

    def out_spec(self, vid: str) -> ValueSpec:
        v = self.table["values"][vid]
        prog = self.art.manifest["stages"][v["stage"]]["programs"][v["fn"]]
        return _spec(self.art.manifest["programs"][prog]["outputs"][v["result"]])

    def in_specs(self, vid: str, stage: int) -> list[ValueSpec]:
        out = []
        for t, fn, k in self.table["values"][vid]["consumers"]:
            if t == stage:
                prog = self.art.manifest["stages"][t]["programs"][fn]
                out.append(_spec(self.art.manifest["programs"][prog]["inputs"][k]))
        return out

    def direct(self, vid: str, dst: int) -> bool:
        if os.environ.get("RHINO_TEST_PIPELINE_RESHARD") == "1":
            return False                      # test hook: always gather and re-slice
        src = self.out_spec(vid).sharding
        return all(s.sharding == src for s in self.in_specs(vid, dst))

    def send(self, dst: int, vid: str, mb, x) -> None:
        if self.direct(vid, dst):
            buf = np.ascontiguousarray(x)
            self.pending.append((self.world.Isend(_bytes(buf), self.rank_of(dst, self.device),
                                                  self.tag(vid, mb)), buf))
            return
        shards = self.comm.gather(np.asarray(x), root=0)
        if self.device != 0:
            return
        spec = self.out_spec(vid)
        whole = assemble_value(shards, spec, {self.mesh.name: self.mesh}, self.mesh.size)
        for r in self.art.manifest["stages"][dst]["devices"]:
            self.pending.append((self.world.Isend(_bytes(whole), r, self.tag(vid, mb)), whole))

    def recv(self, src: int, vid: str, mb):
        spec = self.out_spec(vid)
        if self.direct(vid, self.stage):
            shape = spec.local_shape({self.mesh.name: self.mesh}, self.mesh.size)
            buf = np.empty(shape, np_dtype(spec.dtype))
            self.world.Recv(_bytes(buf), self.rank_of(src, self.device), self.tag(vid, mb))
            return buf
        buf = np.empty(spec.shape, np_dtype(spec.dtype))
        self.world.Recv(_bytes(buf), self.rank_of(src, 0), self.tag(vid, mb))
        return Whole(buf)

    def finish(self) -> None:
        for req, _ in self.pending:
            req.Wait()
        self.pending.clear()


def _bytes(x: np.ndarray):
    return x.reshape(-1).view(np.uint8) if x.size else np.empty(0, np.uint8)


def _mesh(table) -> Mesh:
    m = table["mesh"] or {"name": "mesh", "axes": [["d", 1]]}
    return Mesh(m["name"], tuple((a, s) for a, s in m["axes"]))


def run_pipeline(args, art, world, rank: int, size: int, status) -> int:
    from ...errors import RhinoError
    from ..artifact import check_file
    from .comm import MpiCommunicator
    from .runtime import Executor
    if size != art.num_devices:
        raise RhinoError(f"artifact runs on {art.num_devices} devices but {size} ranks were started")
    sched = art.manifest["schedule"]
    table = sched["pipeline"]
    me = art.rank(rank)
    stage, device = me["stage"], me["device"]
    comm = world.Split(color=stage, key=device)
    mesh = _mesh(table)
    mine = art.manifest["stages"][stage]["programs"]
    payload = None
    if rank == 0:
        from .layout import load_inputs
        status("reading inputs")
        inputs = load_inputs(art, args.inputs, args.seed)
        payload = []
        for r in range(size):
            st = art.rank(r)["stage"]
            use = {e["arg"] for f in table["functions"] if f["stage"] == st
                   for e in f["inputs"] if e["kind"] == "arg"}
            payload.append({a: inputs[a] for a in use})
    status("scatter")
    global_args = world.scatter(payload, root=0)
    if rank == 0:
        global_args.update({o["arg"]: inputs[o["arg"]] for o in table["outputs"] if "arg" in o})
    status("loading")
    driver = os.environ.get("RHINO_IREE_DRIVER") or art.manifest["iree"]["driver"]
    mc = MpiCommunicator(comm)
    exes, specs = {}, {}
    m = table["microbatches"]
    try:
        for fn, prog in mine.items():
            p = art.program(prog)
            vmfb = check_file(art, p.vmfb) if rank else art.path(p.vmfb)
            exes[fn] = Executor(vmfb, mc, driver=driver, entry=p.entry, imports=p.imports,
                                device_index=device)
            specs[fn] = [_spec(d) for d in art.manifest["programs"][prog]["inputs"]]
        ins_of = {f["name"]: f["inputs"] for f in table["functions"] if f["stage"] == stage}
        cache: dict = {}

        def arg(fn, k, a, mb):
            key = (fn, k, mb)
            if key not in cache:
                x = micro_slice(global_args[a], ins_of[fn][k].get("dim"), mb, m)
                cache[key] = _shard(x, specs[fn][k], mesh, device)
            return cache[key]

        def call(fn, xs):
            xs = [_shard(x.x, specs[fn][k], mesh, device) if isinstance(x, Whole) else x
                  for k, x in enumerate(xs)]
            return exes[fn](*xs)

        transport = _Mpi(world, comm, art, table, stage, device)
        times, trace = [], []
        for _ in range(max(1, args.repeat)):
            status("running")
            world.Barrier()
            t0 = time.perf_counter()
            st = Stage(table, stage, call, arg, Transport(transport.send, transport.recv),
                       sched["kind"], clock=lambda: time.perf_counter() - t0)
            outs = st.run()
            transport.finish()
            world.Barrier()
            times.append(time.perf_counter() - t0)
            trace = st.trace
        calls = sum(e.rhino.calls for e in exes.values())
    finally:
        for e in exes.values():
            e.close()
    status("gather")
    jax_seen = any(k in sys.modules for k in ("jax", "jaxlib"))
    got = world.gather((stage, device, outs, times, calls, jax_seen, trace), root=0)
    if rank == 0:
        _write(args, art, table, got, global_args)
    status("done")
    return 0


def _write(args, art, table, got, global_args) -> None:
    mesh = _mesh(table)
    meshes = {mesh.name: mesh}
    by = {(s, d): o for s, d, o, *_ in got}
    per_value = {}
    for o in table["outputs"]:
        if "value" not in o:
            continue
        vid = o["value"]
        v = table["values"][vid]
        prog = art.manifest["stages"][v["stage"]]["programs"][v["fn"]]
        spec = _spec(art.manifest["programs"][prog]["outputs"][v["result"]])
        shards = [by[(v["stage"], d)][vid] for d in range(mesh.size)]
        if isinstance(shards[0], dict):
            per_value[vid] = {mb: assemble_value([sh[mb] for sh in shards], spec, meshes, mesh.size)
                              for mb in shards[0]}
        else:
            per_value[vid] = assemble_value(shards, spec, meshes, mesh.size)
    outs = assemble_outputs(table, per_value, global_args)
    if args.outputs:
        tmp = args.outputs + ".tmp.npz"
        np.savez(tmp, **{s.name: to_wire(x.astype(np_dtype(s.dtype)))
                         for s, x in zip(art.outputs, outs)})
        os.replace(tmp, args.outputs)
    steps = [max(g[3][k] for g in got) for k in range(len(got[0][3]))]
    timed = steps[1:] if len(steps) > 1 else steps
    summary = {"step_seconds": sorted(timed)[len(timed) // 2], "steps": steps,
               "collective_calls": sum(g[4] for g in got), "ranks": len(got),
               "jax_imported": any(g[5] for g in got),
               "trace": [[s, fn, mb, t0, t1] for s, d, _, _, _, _, tr in got if d == 0
                         for fn, mb, t0, t1 in tr]}
    (Path(args.run_dir) / "result.json").write_text(json.dumps(summary))
