"""XLA CPU as the oracle: run a global program on one device and a local program on N.

The local (per-device) program is run as N *replicas* of one XLA program
(num_replicas=N, num_partitions=1, SPMD off): XLA rejects num_partitions=N without SPMD.
In that mode the device index is the replica id, so the harness (never the product)
rewrites a copy of the program: partition_id -> replica_id, no channel handle on
all_to_all / collective_permute (XLA CPU aborts the process on those in replica mode),
module attributes num_replicas=N / num_partitions=1, and sdy dropped.
Needs XLA_FLAGS=--xla_force_host_platform_device_count=8 before jax is imported
(tests/conftest.py does that).
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from rhino_mlir import ir as I
from rhino_mlir.sharding import Mesh, TensorSharding

from . import layout
from .signature import signature

_LOW = ("float16", "bfloat16")
_COMPILED: dict[tuple[str, int], object] = {}


def _jax():
    import jax
    import jax.extend
    from jax._src import compiler                       # private: compile options
    from jax._src.lib import xla_client                 # private: DeviceList
    return jax, jax.extend.backend.get_backend("cpu"), compiler, xla_client


def cpu_devices(n: int) -> list:
    _, backend, _, _ = _jax()
    devs = backend.devices()
    if len(devs) < n:
        raise RuntimeError(f"need {n} cpu devices, have {len(devs)}; set XLA_FLAGS="
                           f"--xla_force_host_platform_device_count=8 before importing jax")
    return devs[:n]


def _compile(text: str, n: int):
    key = (text, n)
    if key not in _COMPILED:
        _, backend, compiler, xc = _jax()
        opts = compiler.get_compile_options(num_replicas=n, num_partitions=1)
        opts.executable_build_options.use_spmd_partitioning = False
        _COMPILED[key] = backend.compile_and_load(text, xc.DeviceList(tuple(cpu_devices(n))), opts)
        if len(_COMPILED) > 64:                      # bound memory in long test sessions
            _COMPILED.pop(next(iter(_COMPILED)))
    return _COMPILED[key]


def _execute(text: str, per_device_inputs: Sequence[Sequence[np.ndarray]], n: int):
    """per_device_inputs[arg][device] -> outputs[device][result]."""
    jax, _, _, _ = _jax()
    exe = _compile(text, n)
    devs = cpu_devices(n)
    mesh = jax.sharding.Mesh(np.array(devs), ("replica",))
    # A "replicated" array whose per-device buffers differ: execute_sharded only reads
    # the buffers, which is exactly what running N replicas needs.
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    args = []
    for shards in per_device_inputs:
        bufs = [jax.device_put(np.asarray(s), devs[d]) for d, s in enumerate(shards)]
        args.append(jax.make_array_from_single_device_arrays(np.shape(shards[0]), rep, bufs))
    res = exe.execute_sharded(args).disassemble_into_single_device_arrays()
    return [[np.asarray(r[d]) for r in res] for d in range(n)]


def _set_module_attrs(mod, replicas: int) -> None:
    with mod.context:
        i32 = I.ir.IntegerType.get_signless(32)
        mod.operation.attributes["mhlo.num_replicas"] = I.ir.IntegerAttr.get(i32, replicas)
        mod.operation.attributes["mhlo.num_partitions"] = I.ir.IntegerAttr.get(i32, 1)


def _strip_sdy(mod) -> None:
    with mod.context:     # sdy-drop-sharding-and-mesh keeps sharding_constraint ops
        for op in list(I.walk_ops(mod.operation)):
            if op.name == "sdy.sharding_constraint":
                op.results[0].replace_all_uses_with(op.operands[0])
                op.erase()
    I.run_pipeline(mod, "builtin.module(sdy-drop-sharding-and-mesh)", who="xla-oracle")


def prepare_global(text: str) -> str:
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    _strip_sdy(mod)
    _set_module_attrs(mod, 1)
    return str(mod)


def prepare_local(text: str, n: int) -> str:
    """The local program rewritten to run as n XLA replicas (see module docstring)."""
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    with ctx:
        for op in list(I.walk_ops(mod.operation)):
            if op.name == "stablehlo.partition_id":
                with I.ir.InsertionPoint(op), op.location:
                    rid = I.ir.Operation.create("stablehlo.replica_id", results=[op.results[0].type])
                op.results[0].replace_all_uses_with(rid.results[0])
                op.erase()
            elif op.name in ("stablehlo.all_to_all", "stablehlo.collective_permute"):
                if "channel_handle" in op.attributes:
                    del op.attributes["channel_handle"]
    _strip_sdy(mod)
    _set_module_attrs(mod, n)
    return str(mod)


def run_global(text: str, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run the single-device (global) program on one XLA CPU device."""
    return _execute(prepare_global(text), [[np.asarray(x)] for x in inputs], 1)[0]


def run_local(local_text: str, global_inputs: Sequence[np.ndarray], mesh: Mesh | None = None,
              arg_shardings: Sequence[TensorSharding | None] | None = None,
              result_shardings: Sequence[TensorSharding | None] | None = None,
              pad_fill="nan") -> list[list[np.ndarray]]:
    """Slice the global inputs per sharding, run the local program on mesh.size devices.

    Returns outputs[device][result] (local shards, padding included). Missing mesh /
    shardings are read from the local program's sdy annotations; a None sharding means
    replicated. `result_shardings` is accepted for symmetry with `check_local`."""
    sig = signature(local_text)
    mesh = mesh or sig.mesh()
    if arg_shardings is None:
        arg_shardings = [a.sharding for a in sig.args]
    if len(global_inputs) != len(sig.args):
        raise ValueError(f"local @main takes {len(sig.args)} arguments, got {len(global_inputs)} inputs")
    per_arg = []
    for i, (x, sh) in enumerate(zip(global_inputs, arg_shardings)):
        x = np.asarray(x)
        gt = sig.args[i].global_shape
        if gt is not None and gt != list(x.shape):
            raise AssertionError(f"argument {i}: rhino.global_type is {gt} but the input is {list(x.shape)}")
        sh = sh or TensorSharding.replicated_of(mesh.name, x.ndim)
        shards = layout.slice_global(x, sh, mesh, pad_fill)
        if list(shards[0].shape) != sig.args[i].shape or shards[0].dtype != sig.args[i].dtype:
            raise AssertionError(f"argument {i}: local program expects {sig.args[i].type} but "
                                 f"sharding {sh.to_text()} of {list(x.shape)}x{x.dtype} gives "
                                 f"{list(shards[0].shape)}x{shards[0].dtype}")
        per_arg.append(shards)
    return _execute(prepare_local(local_text, mesh.size), per_arg, mesh.size)


# ----------------------------------------------------------------------------- comparison

def _is_float(dt) -> bool:
    return np.dtype(dt).name in _LOW or np.issubdtype(np.dtype(dt), np.floating)


def assert_close(got, ref, dtype=None, what: str = "value") -> None:
    """DESIGN.md tolerances: ints/bools bit-exact; f32/f64 rtol 1e-5 and
    atol 1e-5*max|ref|; f16/bf16 rtol 1e-2 (and atol 1e-2*max|ref|) against f32."""
    got, ref = np.asarray(got), np.asarray(ref)
    dtype = np.dtype(dtype or got.dtype)
    if got.shape != ref.shape:
        raise AssertionError(f"{what}: shape {list(got.shape)} != reference {list(ref.shape)}")
    if not _is_float(dtype):
        if not np.array_equal(got, ref):
            bad = np.argwhere(got != ref)
            i = tuple(bad[0])
            raise AssertionError(f"{what}: {len(bad)} of {got.size} elements differ (bit-exact "
                                 f"{dtype}); first at {list(i)}: {got[i]} != {ref[i]}")
        return
    tol = 1e-2 if dtype.name in _LOW else 1e-5
    g, r = got.astype(np.float64), ref.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(r)):
        i = tuple(np.argwhere(np.isnan(g) != np.isnan(r))[0])
        raise AssertionError(f"{what}: NaN mismatch at {list(i)}: {g[i]} vs reference {r[i]}")
    fin = np.isfinite(r)
    if not np.array_equal(g[~fin & ~np.isnan(r)], r[~fin & ~np.isnan(r)]):
        raise AssertionError(f"{what}: infinities differ from the reference")
    if not fin.any():
        return
    atol = tol * float(np.max(np.abs(r[fin])))
    err = np.where(fin, np.abs(g - r), 0.0)
    bound = atol + tol * np.abs(np.where(fin, r, 0.0))
    if np.any(err > bound) or not np.all(np.isfinite(g[fin])):
        i = tuple(np.argwhere((err > bound) | (fin & ~np.isfinite(g)))[0])
        raise AssertionError(f"{what}: {g[i]} != reference {r[i]} at {list(i)} (max abs err "
                             f"{np.nanmax(err):.3g}, atol {atol:.3g}, rtol {tol:g}, {dtype})")


def promote_f32(text: str) -> str:
    """The same program computed in f32 (the f16/bf16 reference of DESIGN.md)."""
    return re.sub(r"(?<=[<x])b?f16(?=>)", "f32", text)


def check_local(local_text: str, global_text: str, inputs: Sequence[np.ndarray],
                pad_fill="nan", refs: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """EVERY device's outputs must equal the matching slice of the single-device result.

    Also assembles each result from the shards (devices holding the same shard must
    agree). Returns the assembled global results."""
    sig = signature(local_text)
    mesh = sig.mesh()
    if refs is None:
        refs = reference(global_text, inputs)
    outs = run_local(local_text, inputs, mesh, pad_fill=pad_fill)
    if len(outs[0]) != len(refs):
        raise AssertionError(f"local program has {len(outs[0])} results, global has {len(refs)}")
    assembled = []
    for r, ref in enumerate(refs):
        sh = sig.results[r].sharding or TensorSharding.replicated_of(mesh.name, np.ndim(ref))
        dtype = sig.results[r].dtype
        gt = sig.results[r].global_shape
        if gt is not None and gt != list(np.shape(ref)):
            raise AssertionError(f"result {r}: rhino.global_type is {gt} but the reference is "
                                 f"{list(np.shape(ref))}")
        for d in range(mesh.size):
            where, part = layout.crop(outs[d][r], np.shape(ref), sh, mesh, d)
            assert_close(part, np.asarray(ref)[where], dtype, f"result {r} on device {d}")
        same = lambda a, b, what, dt=dtype: assert_close(a, b, dt, what)  # noqa: E731
        assembled.append(layout.assemble([o[r] for o in outs], np.shape(ref), sh, mesh, same))
    return assembled


def reference(global_text: str, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Single-device results; f16/bf16 programs are computed in f32 (DESIGN.md)."""
    if not re.search(r"(?<=[<x])b?f16(?=>)", global_text):
        return run_global(global_text, inputs)
    ins = [np.asarray(x).astype(np.float32) if np.asarray(x).dtype.name in _LOW else x
           for x in inputs]
    native = run_global(global_text, inputs)
    wide = run_global(promote_f32(global_text), ins)
    # integer results (argmax of bf16 values, ...) are bit-exact against the native run
    return [w if _is_float(n.dtype) else n for n, w in zip(native, wide)]
