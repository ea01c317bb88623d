"""rhino-pipeline-split: cut @main into pipeline stages, one nested module per stage.

Reads `rhino.stage = N : i64` on the ops of @main (ops without one: partition/stages/tasks.py)
and writes the pipelined program of DESIGN.md: `builtin.module @stage_k` per stage, each
with its own `sdy.mesh` (a copy of the program's mesh: every stage runs on a sub-mesh of
that shape) and public functions `@fwd`, `@bwd` and `@update` (those that have ops).
Micro-batching (partition/stages/microbatch.py) shrinks the batch dimension of per-micro-batch
values by the micro-batch count M; reductions over the batch become results that the
runtime accumulates across micro-batches and hands to `@update`. Constant ops are cloned
into every function that uses them, at the shape it needs.

The module attribute `rhino.pipeline` (a JSON string, read by launch/rank/pipeline.py) lists
    functions  per (stage, fn): inputs (an argument, whole or sliced along `dim` per
               micro-batch, or a boundary value) and outputs (value ids)
    values     per boundary value "op:result" (op index in walk order of @main): producer
               stage/function/result, kind (micro | acc | post | const), batch dim,
               combiner, global shape, sharding, and its consumers (stage, fn, input)
    outputs    per @main result: a value id or an argument index
Every stage function is then partitioned on its stage's mesh (rhino-spmd-partition, run
per function by launch/build/pipelined.py). Runs after rhino-inline (and rhino-propagate
if the program has a mesh; run here again, it is idempotent).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..analysis import dataflow, rules
from ..analysis.local_rules import local_attrs
from ..errors import RhinoError
from ..ir import ir
from ..sharding import annotations as A
from ..partition.stages.microbatch import analyze, const_operand_views
from ..partition.stages.tasks import UPDATE, assign
from .base import ModulePass, PassContext, register
from .propagate import Propagate, check_static

TABLE_VERSION = 1
_DROP = ("sdy.sharding_rule", "rhino.stage")


class _Fn:
    """One stage function under construction."""

    def __init__(self, stage: int, name: str, func):
        self.stage, self.name, self.func = stage, name, func
        self.block = func.regions[0].blocks[0]
        self.inputs: list[dict] = []
        self.in_attrs: list[dict] = []
        self.keys: dict = {}
        self.local: dict = {}          # original value -> value here
        self.consts: dict = {}         # (original value, view) -> value here
        self.outputs: list[str] = []


class _Builder:
    def __init__(self, module, f, info, tasks, mesh_ops, shardings: bool):
        self.module, self.f, self.info, self.tasks = module, f, info, tasks
        self.mesh_ops, self.shardings = mesh_ops, shardings
        self.args = list(f.regions[0].blocks[0].arguments)
        self.arg_index = {a: i for i, a in enumerate(self.args)}
        self.ids = {r: f"{k}:{j}" for k, op in enumerate(I.walk_ops(f)) for j, r in enumerate(op.results)}
        self.ret = I.block_ops(f.regions[0].blocks[0])[-1]
        self.values: dict[str, dict] = {}

    # ------------------------------------------------------------------ values
    def vid(self, v) -> str:
        return self.ids[v] if v in self.ids else f"arg{self.arg_index[v]}"

    def sharding(self, v):
        if not self.shardings:
            return None
        if v in self.arg_index:
            return A.arg_sharding(self.f, self.arg_index[v])
        op = self.info.ops[self.tasks.producer[v]]
        shs = A.op_shardings(op)
        return shs[list(op.results).index(v)] if shs else None

    def local_type(self, v, view):
        return I.make_tensor(self.info.shrunk(I.shape_of(v.type), view), I.elem_of(v.type))

    def input(self, fn: _Fn, key, entry: dict, typ, v) -> object:
        if key in fn.keys:
            return fn.keys[key]
        a = fn.block.add_argument(typ, ir.Location.unknown())
        fn.keys[key] = a
        fn.inputs.append(entry)
        attrs = {}
        sh = self.sharding(v)
        if sh is not None:
            attrs["sdy.sharding"] = I.attr(sh.to_text())
        if v in self.arg_index and "rhino.arg_path" in self._arg_attrs(self.arg_index[v]):
            attrs["rhino.arg_path"] = self._arg_attrs(self.arg_index[v])["rhino.arg_path"]
        fn.in_attrs.append(attrs)
        return a

    def _arg_attrs(self, i: int) -> dict:
        if "arg_attrs" not in self.f.attributes:
            return {}
        d = ir.DictAttr(ir.ArrayAttr(self.f.attributes["arg_attrs"])[i])
        return {d[k].name: d[k].attr for k in range(len(d))}

    def lookup(self, fn: _Fn, v, view):
        info = self.info
        if v in fn.local:
            return fn.local[v]
        if v in self.arg_index:
            i = self.arg_index[v]
            return self.input(fn, ("arg", i, view), {"kind": "arg", "arg": i, "dim": view},
                              self.local_type(v, view), v)
        if info.vkind.get(v) == "const":
            return self.materialize(fn, v, view)
        d = info.view.get(v)
        return self.input(fn, ("value", v), {"kind": "value", "value": self.vid(v)},
                          self.local_type(v, d), v)

    # ------------------------------------------------------------------ cloning
    def clone(self, fn: _Fn, op, views, result_views):
        # operands (and values read from inside regions) first: constants they need are
        # cloned before the op, so the function stays in dominance order
        operands = [self.lookup(fn, v, views[oi]) for oi, v in enumerate(op.operands)]
        captured = self.captures(fn, op)
        new = op.clone(ip=ir.InsertionPoint(fn.block))
        for key in _DROP:
            if key in new.attributes:
                del new.attributes[key]
        for oi, v in enumerate(operands):
            new.operands[oi] = v
        if captured:
            for o in I.walk_ops(new):
                for oi, x in enumerate(list(o.operands)):
                    if x in captured:
                        o.operands[oi] = captured[x]
        for r, d in zip(new.results, result_views):
            if d is not None and I.is_tensor(r.type):
                r.set_type(self.local_type(r, d))
        shapes = lambda vs: [I.shape_of(x.type) if I.is_tensor(x.type) else [] for x in vs]  # noqa: E731
        local_attrs(new, shapes(op.operands), shapes(new.operands), shapes(op.results), shapes(new.results))
        return new

    def captures(self, fn: _Fn, op) -> dict:
        """Values defined above `op` that its regions read: original -> value here."""
        return {x: self.lookup(fn, x, None) for x in I.captured_values(op)}

    def materialize(self, fn: _Fn, v, view):
        key = (v, view)
        if key in fn.consts:
            return fn.consts[key]
        op = self.info.ops[self.tasks.producer[v]]
        k = list(op.results).index(v)
        views = const_operand_views(op, k, view)
        rviews = [view if i == k else None for i in range(len(op.results))]
        new = self.clone(fn, op, views, rviews)
        for r, nr, d in zip(op.results, new.results, rviews):
            fn.consts.setdefault((r, d), nr)
        return fn.consts[key]

    # ------------------------------------------------------------------ functions
    def consumers_elsewhere(self) -> set:
        """Values read by a task other than their producer's, or returned by @main."""
        out = set(self.ret.operands)
        for i, op in enumerate(self.info.ops):
            t = self.tasks.task[i]
            for o in [op] + list(I.walk_ops(op)):
                for v in o.operands:
                    j = self.tasks.producer.get(v)
                    if j is not None and self.tasks.task[j] is not None and self.tasks.task[j] != t:
                        out.add(v)
        return out

    def build(self) -> dict:
        info, tasks = self.info, self.tasks
        outside = self.consumers_elsewhere()
        const_out = [v for v in self.ret.operands if info.vkind.get(v) == "const" and v not in self.arg_index]
        fns = tasks.functions()
        for v in const_out:
            s = tasks.stage[tasks.producer[v]]
            if (s, UPDATE) not in fns:
                fns.append((s, UPDATE))
                tasks.update_order.append(s)
        modules = {}
        built: list[_Fn] = []
        for s, name in fns:
            if s not in modules:
                modules[s] = self.stage_module(s)
            with ir.InsertionPoint(modules[s].regions[0].blocks[0]):
                func = I.func.FuncOp(name, ir.FunctionType.get([], []))
                func.add_entry_block()
            fn = _Fn(s, name, func)
            for i, op in enumerate(info.ops):
                if tasks.task[i] == (name, s):
                    views = info.operand_views.get(i) or [None] * len(op.operands)
                    rviews = [info.view.get(r) for r in op.results]
                    new = self.clone(fn, op, views, rviews)
                    for r, nr in zip(op.results, new.results):
                        fn.local[r] = nr
            outs = [r for r in fn.local if r in outside]
            if name == UPDATE:
                outs += [v for v in const_out if tasks.stage[tasks.producer[v]] == s]
            self.finish(fn, outs)
            built.append(fn)
        self.link(built)
        return self.table(built)

    def stage_module(self, s: int):
        m = ir.Operation.parse(f"module @stage_{s} {{\n}}")
        ir.InsertionPoint(self.module.body).insert(m)
        for op in self.mesh_ops:
            op.clone(ip=ir.InsertionPoint(m.regions[0].blocks[0]))
        return m

    def finish(self, fn: _Fn, outs) -> None:
        vals = [fn.local[v] if v in fn.local else self.materialize(fn, v, None) for v in outs]
        with ir.InsertionPoint(fn.block):
            I.func.ReturnOp(vals)
        ftype = ir.FunctionType.get([a.type for a in fn.block.arguments], [v.type for v in vals])
        fn.func.attributes["function_type"] = ir.TypeAttr.get(ftype)
        fn.func.attributes["arg_attrs"] = ir.ArrayAttr.get([ir.DictAttr.get(d) for d in fn.in_attrs])
        res = []
        for k, v in enumerate(outs):
            vid = self.vid(v)
            fn.outputs.append(vid)
            sh = self.sharding(v)
            res.append(ir.DictAttr.get({"sdy.sharding": I.attr(sh.to_text())} if sh is not None else {}))
            kind = self.info.vkind.get(v, "const")
            self.values[vid] = {
                "stage": fn.stage, "fn": fn.name, "result": k, "kind": kind,
                "dim": self.info.view.get(v) if kind == "micro" else None,
                "combiner": self.info.acc.get(v), "shape": I.shape_of(v.type),
                "dtype": str(I.elem_of(v.type)), "sharding": sh.to_text() if sh is not None else None,
                "consumers": []}
        fn.func.attributes["res_attrs"] = ir.ArrayAttr.get(res)

    def link(self, built: list[_Fn]) -> None:
        for fn in built:
            for k, e in enumerate(fn.inputs):
                if e["kind"] == "value":
                    if e["value"] not in self.values:
                        raise RhinoError(f"rhino-pipeline-split: internal error: {e['value']} has no producer")
                    self.values[e["value"]]["consumers"].append([fn.stage, fn.name, k])

    def table(self, built: list[_Fn]) -> dict:
        outputs = []
        for v in self.ret.operands:
            outputs.append({"arg": self.arg_index[v]} if v in self.arg_index else {"value": self.vid(v)})
        return {"version": TABLE_VERSION, "stages": self.tasks.stages,
                "microbatches": self.info.microbatches, "batch": self.info.batch,
                "functions": [{"stage": fn.stage, "name": fn.name, "per_microbatch": fn.name != UPDATE,
                               "inputs": fn.inputs, "outputs": fn.outputs} for fn in built],
                "values": self.values, "outputs": outputs,
                "update_order": self.tasks.update_order,
                "num_args": len(self.args)}


def split(module, pctx: PassContext, stages: int = 0, microbatches: int = 1,
          batch_args: list[int] | None = None, who: str = "rhino-pipeline-split") -> dict:
    """The pass, as a function: rewrites `module` in place and returns its table."""
    f = I.main_func(module)
    check_static(f)
    for op in I.walk_ops(f):
        if op.name in dataflow.CALL_OPS:
            raise RhinoError(f"{who}: @main calls a function; run rhino-inline first")
    mesh = A.module_mesh(module, who)
    if mesh is not None:
        Propagate().apply(pctx, module)
    rules.populate(module)
    try:
        info = analyze(module, microbatches, batch_args)
        tasks = assign(info, stages)
    except RhinoError as e:
        raise type(e)(f"{who}: {e}") from None
    mesh_ops = [op.operation for op in module.body.operations if op.operation.name == "sdy.mesh"]
    table = _Builder(module, f, info, tasks, mesh_ops, mesh is not None).build()
    table["mesh"] = None if mesh is None else {"name": mesh.name, "axes": [list(a) for a in mesh.axes]}
    for op in list(module.body.operations):
        if op.operation.name in ("func.func", "sdy.mesh"):
            op.operation.erase()
    module.operation.attributes["rhino.pipeline"] = I.str_attr(json.dumps(table, sort_keys=True))
    return table


def read_table(module) -> dict:
    """The `rhino.pipeline` table of a pipelined module."""
    attrs = module.operation.attributes
    if "rhino.pipeline" not in attrs:
        raise RhinoError("module has no rhino.pipeline attribute; run rhino-pipeline-split first")
    return json.loads(ir.StringAttr(attrs["rhino.pipeline"]).value)


def function_text(module, stage: int, fn: str) -> str:
    """One stage function as a standalone program: its stage's mesh and `@main`."""
    for op in module.body.operations:
        op = op.operation
        if op.name == "builtin.module" and ir.StringAttr(op.attributes["sym_name"]).value == f"stage_{stage}":
            body = op.regions[0].blocks[0]
            with module.context, ir.Location.unknown():
                out = ir.Module.create()
                for o in I.block_ops(body):
                    if o.name == "sdy.mesh" or (o.name == "func.func" and
                                                ir.StringAttr(o.attributes["sym_name"]).value == fn):
                        c = o.clone(ip=ir.InsertionPoint(out.body))
                        if o.name == "func.func":
                            c.attributes["sym_name"] = I.str_attr("main")
                return str(out)
    raise RhinoError(f"pipelined module has no @stage_{stage}::@{fn}")


@register
@dataclass(frozen=True)
class PipelineSplit(ModulePass):
    """Cut @main at rhino.stage annotations into one module per stage (@fwd, @bwd, @update)."""
    name: ClassVar[str] = "rhino-pipeline-split"
    stages: int = 0
    microbatches: int = 1
    batch_args: tuple[int, ...] = ()

    def apply(self, pctx: PassContext, module) -> None:
        with module.context, ir.Location.unknown():
            table = split(module, pctx, self.stages, self.microbatches, list(self.batch_args) or None,
                          self.name)
            pctx.stats[self.name] = table
