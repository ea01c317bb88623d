"""Reference "partitioners" that prove the checks can fail (issue 2, item 8).

replicate_everything: a *correct but wasteful* local program — all_gather every
sharded argument, run the global program unchanged, slice each result by
partition_id. Its numbers must pass the oracle (so it also validates the harness's
layout on every test program, sub-axes, device_ids and uneven dims included); its
communication must fail the "no global-size materialization" checks.
do_nothing: the input program with partition counts set; must fail the oracle.
Both follow DESIGN.md's local-program contract for their interface.
"""
from __future__ import annotations

import numpy as np

from rhino_mlir import ir as I
from rhino_mlir.sharding import TensorSharding

from . import layout
from .signature import Value, signature, tensor_text

_GLOBAL = "rhino_global_main"


def _zero(dtype) -> str:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return "false"
    return "0" if np.issubdtype(dt, np.integer) else "0.0"


def _arr(vals) -> str:
    return "array<i64" + "".join(f", {v}" if i else f": {v}" for i, v in enumerate(vals)) + ">"


class _Emitter:
    def __init__(self):
        self.lines: list[str] = []
        self.n = 0
        self.handle = 0

    def op(self, text: str, nres: int = 1) -> str:
        self.n += 1
        name = f"%v{self.n}"
        self.lines.append(f"    {name}{f':{nres}' if nres > 1 else ''} = {text}")
        return name

    def channel(self) -> str:
        self.handle += 1
        return f"#stablehlo.channel_handle<handle = {self.handle}, type = 1>"


def _gather_arg(e: _Emitter, v: str, val: Value, mesh, sh: TensorSharding) -> str:
    """all_gather each sharded dim (shard order), then crop the padding."""
    shape = list(val.shape)
    gshape = val.global_shape
    for d, axes in enumerate(sh.dims):
        if not axes:
            continue
        groups = layout.gather_groups(sh, mesh, d)
        new = list(shape)
        new[d] = shape[d] * len(groups[0])
        v = e.op(f'"stablehlo.all_gather"({v}) {{all_gather_dim = {d} : i64, replica_groups = '
                 f'{layout.replica_groups_text(groups)}, channel_handle = {e.channel()}, '
                 f'use_global_device_ids}} : ({tensor_text(shape, val.dtype)}) -> '
                 f'{tensor_text(new, val.dtype)}')
        shape = new
        if new[d] != gshape[d]:
            crop = list(shape)
            crop[d] = gshape[d]
            v = e.op(f'"stablehlo.slice"({v}) {{start_indices = {_arr([0] * len(shape))}, '
                     f'limit_indices = {_arr(crop)}, strides = {_arr([1] * len(shape))}}} : '
                     f'({tensor_text(shape, val.dtype)}) -> {tensor_text(crop, val.dtype)}')
            shape = crop
    return v


def _slice_result(e: _Emitter, v: str, shape, dtype, mesh, sh: TensorSharding, pid: str) -> str:
    """pad the global result to k*c per dim, then dynamic_slice this device's shard."""
    loc = layout.local_shape(shape, sh, mesh)
    full = [c * k for c, k in zip(loc, sh.shards(mesh))]
    if full != list(shape):
        z = e.op(f'stablehlo.constant dense<{_zero(dtype)}> : {tensor_text([], dtype)}')
        v = e.op(f'"stablehlo.pad"({v}, {z}) {{edge_padding_low = {_arr([0] * len(shape))}, '
                 f'edge_padding_high = {_arr([f - g for f, g in zip(full, shape)])}, '
                 f'interior_padding = {_arr([0] * len(shape))}}} : ({tensor_text(shape, dtype)}, '
                 f'{tensor_text([], dtype)}) -> {tensor_text(full, dtype)}')
    starts = []
    for d in range(len(shape)):
        table = [layout.shard_index(sh, mesh, dev)[d] * loc[d] for dev in range(mesh.size)]
        t = e.op(f'stablehlo.constant dense<{table}> : tensor<{mesh.size}xi32>')
        s = e.op(f'"stablehlo.dynamic_slice"({t}, {pid}) {{slice_sizes = {_arr([1])}}} : '
                 f'(tensor<{mesh.size}xi32>, tensor<i32>) -> tensor<1xi32>')
        starts.append(e.op(f'stablehlo.reshape {s} : (tensor<1xi32>) -> tensor<i32>'))
    idx_types = "".join(", tensor<i32>" for _ in starts)
    return e.op(f'"stablehlo.dynamic_slice"({v}{"".join(", " + s for s in starts)}) '
                f'{{slice_sizes = {_arr(loc)}}} : ({tensor_text(full, dtype)}{idx_types}) -> '
                f'{tensor_text(loc, dtype)}')


def replicate_everything(global_text: str) -> str:
    """The wasteful-but-correct local program for an annotated global program."""
    sig = signature(global_text)
    mesh = sig.mesh()
    ctx = I.new_context()
    mod = I.parse_module(global_text, ctx)
    with ctx:
        main = I.main_func(mod)
        main.attributes["sym_name"] = I.ir.StringAttr.get(_GLOBAL)
        main.attributes["sym_visibility"] = I.ir.StringAttr.get("private")
        i32 = I.ir.IntegerType.get_signless(32)
        mod.operation.attributes["mhlo.num_partitions"] = I.ir.IntegerAttr.get(i32, mesh.size)
        mod.operation.attributes["mhlo.num_replicas"] = I.ir.IntegerAttr.get(i32, 1)
    e = _Emitter()
    params, gathered = [], []
    rep = lambda v: v.sharding or TensorSharding.replicated_of(mesh.name, len(v.shape))  # noqa: E731
    for i, a in enumerate(sig.args):
        sh = rep(a)
        loc = layout.local_shape(a.shape, sh, mesh)
        local = Value(tensor_text(loc, a.dtype), loc, a.dtype, sh, a.shape)
        params.append(f"%a{i}: {local.type} {{sdy.sharding = {sh.to_text()}, "
                      f"rhino.global_type = {a.type}}}")
        gathered.append(_gather_arg(e, f"%a{i}", local, mesh, sh))
    res_types = ", ".join(r.type for r in sig.results)
    call = e.op(f"func.call @{_GLOBAL}({', '.join(gathered)}) : "
                f"({', '.join(a.type for a in sig.args)}) -> ({res_types})", len(sig.results))
    pid_u = e.op("stablehlo.partition_id : tensor<ui32>")
    pid = e.op(f"stablehlo.convert {pid_u} : (tensor<ui32>) -> tensor<i32>")
    outs, out_types, out_attrs = [], [], []
    for r, res in enumerate(sig.results):
        v = f"{call}#{r}" if len(sig.results) > 1 else call
        sh = rep(res)
        if any(sh.dims):
            v = _slice_result(e, v, res.shape, res.dtype, mesh, sh, pid)
        loc = layout.local_shape(res.shape, sh, mesh)
        outs.append(v)
        out_types.append(tensor_text(loc, res.dtype))
        out_attrs.append(f"{tensor_text(loc, res.dtype)} {{sdy.sharding = {sh.to_text()}, "
                         f"rhino.global_type = {res.type}}}")
    body = "\n".join(e.lines)
    fn = (f"  func.func public @main({', '.join(params)}) -> ({', '.join(out_attrs)}) {{\n{body}\n"
          f"    return {', '.join(outs)} : {', '.join(out_types)}\n  }}\n")
    text = str(mod).rstrip()
    assert text.endswith("}")
    text = text[:-1] + fn + "}\n"
    ctx2 = I.new_context()
    I.parse_module(text, ctx2, filename="replicate_everything")    # verifies
    return text


def do_nothing(global_text: str) -> str:
    """The input program, only claiming to be partitioned (must fail the oracle)."""
    sig = signature(global_text)
    ctx = I.new_context()
    mod = I.parse_module(global_text, ctx)
    with ctx:
        i32 = I.ir.IntegerType.get_signless(32)
        mod.operation.attributes["mhlo.num_partitions"] = I.ir.IntegerAttr.get(i32, sig.mesh().size)
    return str(mod)
