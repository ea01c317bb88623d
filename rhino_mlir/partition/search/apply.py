"""Write a plan into the IR as Shardy annotations (what rhino-spmd-partition reads).

Adds `sdy.mesh @mesh`, `sdy.sharding` on every argument and result of @main and
`sdy.sharding` (per value) on every op of @main and its program regions. From a
`Plan` read back from JSON, values are found by (op index in walk order, result).
"""
from __future__ import annotations

from ... import ir as I
from ...analysis import dataflow, rules
from ...errors import RhinoError
from ...ir import ir
from ...sharding import Mesh, TensorSharding, parse_sharding
from ...sharding import annotations as A
from .plan import Plan


def _set_mesh(module, mesh: Mesh) -> None:
    for op in list(module.body.operations):
        if op.operation.name == "sdy.mesh":
            if op.operation.attributes["sym_name"].value == mesh.name:
                op.operation.erase()
    op = ir.Operation.parse(f"sdy.mesh @{mesh.name} = {mesh.to_text()}")
    ir.InsertionPoint.at_block_begin(module.body).insert(op)


def write(module, mesh: Mesh, arg_sh: list[TensorSharding], value_sh: dict,
          result_sh: list[TensorSharding] | None = None) -> None:
    """value_sh: ir.Value -> TensorSharding (missing values are left to rhino-propagate);
    result_sh: the shardings of @main's results (default: their values')."""
    with module.context, ir.Location.unknown():
        rules.strip(module.operation)                   # the planner's rule attributes
        _set_mesh(module, mesh)
        f = I.main_func(module)
        A.update_arg_attrs(f, {i: {"sdy.sharding": I.attr(s.to_text())} for i, s in enumerate(arg_sh)})
        for op in I.walk_ops(f):
            if not op.results or op.name in dataflow.CONSTRAINT_OPS:
                continue
            shs = [value_sh.get(v) for v in op.results]
            if all(s is not None for s in shs):
                A.set_op_shardings(op, shs)
        ret = I.block_ops(f.regions[0].blocks[0])[-1]
        res = {}
        for i, v in enumerate(ret.operands):
            s = result_sh[i] if result_sh else \
                arg_sh[_arg_index(f, v)] if _arg_index(f, v) is not None else value_sh.get(v)
            if s is not None:
                res[i] = {"sdy.sharding": I.attr(s.to_text())}
        A.update_result_attrs(f, res)


def _arg_index(f, v):
    for i, a in enumerate(f.regions[0].blocks[0].arguments):
        if a == v:
            return i
    return None


def write_result(module, result) -> None:
    """Annotate with a planner Result (value ids of its graph)."""
    g = result.graph
    if g.func != I.main_func(module):
        raise RhinoError("write_result: the plan's graph belongs to another module; apply its Plan "
                         "(partition.apply.write_plan) to annotate a different parse")
    write(module, result.mesh, [result.shardings[a] for a in g.args],
          {g.values[v]: s for v, s in enumerate(result.shardings) if g.producer[v] >= 0},
          result.results or None)


def write_plan(module, plan: Plan) -> None:
    """Annotate with a Plan read from JSON (checked against the program's hash)."""
    from .planner import program_sha
    plan.check_program(program_sha(module))
    mesh = Mesh("mesh", tuple((n, int(s)) for n, s in plan.mesh))
    with module.context:
        f = I.main_func(module)
        nargs = len(f.regions[0].blocks[0].arguments)
        if len(plan.args) != nargs:
            raise RhinoError(f"plan has {len(plan.args)} argument shardings but @main takes {nargs}")
        value_sh = {}
        for k, op in enumerate(I.walk_ops(f)):
            for j, r in enumerate(op.results):
                t = plan.values.get(f"{k}:{j}")
                if t is not None:
                    value_sh[r] = parse_sharding(t)
                elif I.is_tensor(r.type):
                    value_sh[r] = TensorSharding.replicated_of(mesh.name, len(I.shape_of(r.type)))
    write(module, mesh, [parse_sharding(t) for t in plan.args], value_sh,
          [parse_sharding(t) for t in plan.results] or None)
