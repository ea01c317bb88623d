"""Plans executed by XLA: the planner's shardings written into the global program
(named by walk position, partition/apply.write_plan), compiled by XLA's SPMD partitioner on N host CPU
devices (num_partitions=N), timed and measured (get_compiled_memory_stats). Also XLA's
own auto-sharding pass (compile options, FACTS.md) on the unannotated program.

So "measured, not only predicted": the same sharding, executed by an independent
compiler. Needs XLA_FLAGS=--xla_force_host_platform_device_count=8 before jax starts
(bench.py sets it). Uses private jax APIs (compile options, DeviceList, GSPMDSharding)
as tests/harness/xla_memory.py does.
"""
from __future__ import annotations

import statistics
import time
import types
from dataclasses import dataclass, field

import numpy as np

BASELINES = ("dp", "zero1", "zero2", "zero3", "megatron", "dp-tp")


@dataclass
class Variant:
    name: str                       # auto | dp | megatron | dp-tp
    mesh: tuple
    predicted_s: float
    predicted_bytes: float
    text: str = ""                  # annotated global program (XLA-ready)
    exe: object = None
    stats: dict = field(default_factory=dict)


def _jax():
    import jax
    import jax.extend
    from jax._src import compiler
    from jax._src.lib import xla_client
    return jax, jax.extend.backend.get_backend("cpu"), compiler, xla_client


def plan_variants(text: str, cluster: str, names=("auto",) + BASELINES) -> tuple[list[Variant], object]:
    """Plan `text` on `cluster`; the auto plan and each baseline's best fitting candidate."""
    from rhino_mlir import ir as I
    from rhino_mlir.cluster import load_cluster
    from rhino_mlir.partition.search.planner import Request, plan_module
    from rhino_mlir.passes import REGISTRY, PassContext
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), mod)
    inlined = str(mod)
    cl = load_cluster(cluster)
    res = plan_module(mod, Request(cl))
    budget = cl.memory_per_device
    g = res.graph
    picks = {"auto": types.SimpleNamespace(mesh=res.mesh, shardings=res.shardings, results=res.results,
                                           time=res.plan.prediction.step_time_s,
                                           peak=res.plan.prediction.memory_per_device_bytes)}
    for n in BASELINES:
        cs = [c for c in res.candidates if c.name == n]
        fit = [c for c in cs if c.memory["peak"] <= budget] or cs
        if fit:
            c = min(fit, key=lambda c: c.time)
            sh = c.shardings()
            picks[n] = types.SimpleNamespace(mesh=c.mesh, shardings=sh, time=c.time, peak=c.memory["peak"],
                                             results=c.results or [sh[v] for v in g.outputs])
    out, vnames = [], value_names(res)
    for n in names:
        p = picks.get(n)
        if p is not None:
            out.append(Variant(n, tuple(p.mesh.axes), float(p.time), float(p.peak),
                               _for_xla(annotate(inlined, res, vnames, p.mesh, p.shardings, p.results))))
    return out, res


def value_names(res) -> dict:
    """value id -> 'op:result'; call while the planned module is alive (walks its IR)."""
    from rhino_mlir.partition.search.planner import _value_names
    return _value_names(res.graph)


def annotate(inlined: str, res, names: dict, mesh, shardings, results=None) -> str:
    """The inlined program with these shardings (value ids of res.graph) on every op.

    Goes through a Plan and partition/apply.write_plan (values named by walk position, as
    `rhino compile --plan` does), so the shardings land on a fresh parse of the text:
    ir.Values of the planner's module cannot be used as keys for another module."""
    import dataclasses

    from rhino_mlir import ir as I
    from rhino_mlir.partition.search.apply import write_plan
    g = res.graph
    values = {names[v]: s.to_text() for v, s in enumerate(shardings) if v in names and g.shapes[v] and any(s.dims)}
    results = results if results is not None else [shardings[v] for v in g.outputs]
    plan = dataclasses.replace(res.plan, mesh=[list(a) for a in mesh.axes], values=values,
                               args=[shardings[a].to_text() for a in g.args],
                               results=[r.to_text() for r in results])
    ctx = I.new_context()
    mod = I.parse_module(inlined, ctx)
    write_plan(mod, plan)
    return str(mod)


def _for_xla(text: str) -> str:
    """The text without the sdy.sharding_rule attributes rhino's rule pass leaves (XLA's
    importer rejects them)."""
    from rhino_mlir import ir as I
    from rhino_mlir.analysis import rules
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    with ctx:
        rules.strip(mod.operation)
    return str(mod)


def compile_spmd(text: str, n: int, auto_mesh: tuple | None = None):
    """XLA executable over n CPU devices; auto_mesh: let XLA's auto-sharding choose."""
    _, backend, compiler, xc = _jax()
    devs = backend.devices()
    if len(devs) < n:
        raise RuntimeError(f"need {n} cpu devices, have {len(devs)}; set XLA_FLAGS="
                           f"--xla_force_host_platform_device_count={n} before jax starts")
    opts = compiler.get_compile_options(num_replicas=1, num_partitions=n)
    bo = opts.executable_build_options
    bo.use_spmd_partitioning = True
    if auto_mesh:
        bo.use_auto_spmd_partitioning = True
        bo.auto_spmd_partitioning_mesh_shape = list(auto_mesh)
        bo.auto_spmd_partitioning_mesh_ids = list(range(n))
        bo.use_shardy_partitioner = False
    return backend.compile_and_load(text, xc.DeviceList(tuple(devs[:n])), opts)


def memory(exe) -> dict:
    st = exe.get_compiled_memory_stats()
    d = {"arguments": st.argument_size_in_bytes, "outputs": st.output_size_in_bytes,
         "aliased": st.alias_size_in_bytes, "temporaries": st.temp_size_in_bytes}
    d["comparable"] = d["arguments"] + d["outputs"] - d["aliased"] + d["temporaries"]
    return d


def place(exe, args: list[np.ndarray], n: int) -> list:
    """Global inputs laid out as the executable's parameter shardings say."""
    jax, backend, _, _ = _jax()
    from jax._src.sharding_impls import GSPMDSharding
    devs = tuple(backend.devices()[:n])
    return [jax.device_put(a, GSPMDSharding(devs, s)) for a, s in zip(args, exe.get_parameter_shardings())]


def step(exe, placed) -> float:
    t0 = time.perf_counter()
    out = exe.execute_sharded(placed)
    for arrs in out.disassemble_into_single_device_arrays():
        for a in arrs:
            a.block_until_ready()
    return time.perf_counter() - t0


def time_interleaved(runs: dict, reps: int, log=None, cap: dict | None = None) -> dict:
    """runs: name -> (exe, placed). One warm-up each, then reps rounds, one step of each
    plan per round (so load changes on a shared machine hit every plan alike); cap:
    name -> fewer rounds for slow plans."""
    cap = cap or {}
    for exe, placed in runs.values():
        step(exe, placed)
    times = {k: [] for k in runs}
    for r in range(reps):
        for k, (exe, placed) in runs.items():
            if r < cap.get(k, reps):
                times[k].append(step(exe, placed))
        if log:
            log(f"round {r + 1}/{reps}")
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "all_s": [round(x, 4) for x in v]}
            for k, v in times.items()}
