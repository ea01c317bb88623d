"""rhino-propagate: give every value a sharding from the annotations present.

Shardings flow through the factor rules of analysis/rules.py (and the identity ties of
analysis/dataflow.py) forwards and backwards until nothing changes. For each factor of
an op, every tensor that has the factor proposes its axes; then
  1. if all proposals are prefixes of the longest one, the longest wins;
  2. otherwise (a conflict) the proposal from a user-annotated value wins, then the one
     with more shards, then the one from the earlier operand (operands before results);
  3. each mesh axis goes to one factor only (result factors first), and a compound
     dimension keeps only a layout it can express (sharding/factors.py).
A value only ever gains axes (its current sharding stays a prefix), so it terminates.
Annotated arguments and sharding_constraint results with closed dimensions are fixed.
need_replication / permutation / blocked factors do not carry shardings across an op.
Runs after rhino-inline; rhino-spmd-partition reads what this pass writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..analysis import dataflow, rules
from ..analysis.local_rules import restrict
from ..errors import PassError, UnsupportedError
from ..ir import ir
from ..sharding import annotations as A
from ..sharding.factors import dedupe, legalize, project, tensor_sharding
from ..sharding import Mesh, TensorSharding, axes_size
from .base import ModulePass, PassContext, register

MAX_ROUNDS = 32



@dataclass
class Constraint:
    rule: rules.OpRule
    tensors: list                 # operand values then result values
    op: object = None


def collect(block, out: list[Constraint]) -> None:
    """Constraints of the ops in `block` and in the program regions of control-flow ops."""
    for op in I.block_ops(block):
        name = op.name
        if name in dataflow.CALL_OPS:
            raise PassError(f"rhino-propagate: {I.value_name(op.results[0]) if op.results else 'call'} "
                            f"(func.call) calls a function; run rhino-inline first", op)
        if name in dataflow.CONTROL_OPS or name in dataflow.IDENTITY_OPS:
            for t in dataflow.ties(op):
                shape = I.shape_of(t.a.type)
                r = rules.identity_rule(len(shape))
                out.append(Constraint(rules.OpRule(r.operands, r.results, tuple(shape), r.names), [t.a, t.b], op))
            if name in dataflow.CONTROL_OPS:
                for region in op.regions:
                    collect(region.blocks[0], out)
            continue
        r = rules.rule_of(op)
        if r is None:
            continue
        vals = list(op.operands) + list(op.results)
        if len(vals) != len(r.operands) + len(r.results) or not all(I.is_tensor(v.type) for v in vals):
            continue
        out.append(Constraint(restrict(op, r), vals, op))


class State:
    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.sh: dict = {}
        self.fixed: set = set()

    def get(self, v) -> TensorSharding:
        s = self.sh.get(v)
        return s if s is not None else TensorSharding.replicated_of(self.mesh.name, len(I.shape_of(v.type)))


def _choose(cands) -> tuple:
    longest = max(cands, key=lambda c: len(c[3]))
    if all(tuple(longest[3][:len(c[3])]) == tuple(c[3]) for c in cands):
        return longest[3]
    return max(cands, key=lambda c: (c[0], c[1], c[2]))[3]


def step(c: Constraint, st: State) -> bool:
    r, mesh = c.rule, st.mesh
    dims_list = list(r.operands) + list(r.results)
    cands: dict[int, list] = {}
    for t, (v, dims) in enumerate(zip(c.tensors, dims_list)):
        s = st.sh.get(v)
        if s is None:
            continue
        proj, _ = project(dims, r.sizes, s, mesh)
        for f, axes in proj.items():
            cands.setdefault(f, []).append((v in st.fixed, axes_size(axes, mesh), -t, tuple(axes)))
    if not cands:
        return False
    fsh = [()] * r.num_factors
    for f, cs in cands.items():
        if r.shardable(f) and f not in r.blocked:
            fsh[f] = _choose(cs)
    res = sorted(r.result_factors())
    fsh = dedupe(fsh, res + [f for f in range(r.num_factors) if f not in res], mesh)
    fsh = legalize(dims_list, r.sizes, fsh, mesh)
    changed = False
    for v, dims in zip(c.tensors, dims_list):
        if v in st.fixed:
            continue
        new = tensor_sharding(mesh.name, dims, fsh, mesh)
        cur = st.get(v)
        merged = []
        for d, (cd, nd) in enumerate(zip(cur.dims, new.dims)):
            merged.append(nd if tuple(nd[:len(cd)]) == tuple(cd) else cd)
        used = [a for d in merged for a in d]
        if any(a.overlaps(b, mesh) for i, a in enumerate(used) for b in used[i + 1:]):
            continue
        if tuple(map(tuple, merged)) != cur.dims:
            st.sh[v] = cur.with_dims(merged)
            changed = True
    return changed


def run(block, st: State) -> list[Constraint]:
    cons: list[Constraint] = []
    collect(block, cons)
    iterate(cons, st)
    return cons


def iterate(cons: list[Constraint], st: State) -> None:
    """Forward then backward sweeps until no value gains an axis."""
    for _ in range(MAX_ROUNDS):
        changed = False
        for c in cons:
            changed |= step(c, st)
        for c in reversed(cons):
            changed |= step(c, st)
        if not changed:
            break


def check_static(f) -> None:
    for i, a in enumerate(f.regions[0].blocks[0].arguments):
        if not I.is_static(a.type):
            raise UnsupportedError(f"dynamic shapes are not supported: %arg{i} : {a.type}")
    for op in I.walk_ops(f):
        for v in op.results:
            if not I.is_static(v.type):
                raise UnsupportedError(f"dynamic shapes are not supported: {I.value_name(v)} : {v.type}")


def prepare(module, who: str):
    """(@main, its mesh or None): static shapes checked, mhlo.sharding imported, rules attached."""
    f = I.main_func(module)
    check_static(f)
    A.import_mhlo(module, who)
    mesh = A.module_mesh(module, who)
    if mesh is not None:
        rules.populate(module)
    return f, mesh


def seed(f, module, mesh: Mesh, who: str) -> State:
    """Initial state from the annotations on arguments, ops and constraints (validated)."""
    st = State(mesh)
    known = A.mesh_names(module)
    block = f.regions[0].blocks[0]
    for i, a in enumerate(block.arguments):
        s = A.arg_sharding(f, i)
        if s is not None:
            A.check(s, mesh, I.shape_of(a.type), f"argument %arg{i}", who, known)
            st.sh[a] = s.closed()
            if not any(s.open_dims):
                st.fixed.add(a)
    for op in I.walk_ops(f):
        shs = A.op_shardings(op)
        if shs is None:
            continue
        for v, s in zip(op.results, shs):
            A.check(s, mesh, I.shape_of(v.type), lambda v=v, op=op: f"{I.value_name(v)} ({op.name})", who, known)
            st.sh[v] = s.closed()
            if not any(s.open_dims):
                st.fixed.add(v)
    ret = I.block_ops(block)[-1]
    for i, v in enumerate(ret.operands):
        s = A.result_sharding(f, i)
        if s is not None:
            A.check(s, mesh, I.shape_of(v.type), f"result {i}", who, known)
            st.sh.setdefault(v, s.closed())
    return st


def write(f, st: State, cons: list[Constraint]) -> None:
    block = f.regions[0].blocks[0]
    A.update_arg_attrs(f, {i: {"sdy.sharding": I.attr(st.get(a).to_text())}
                           for i, a in enumerate(block.arguments)})
    for op in I.walk_ops(f):
        if op.name in dataflow.CONSTRAINT_OPS:
            if any(A.op_shardings(op)[0].open_dims):     # open dims take what propagation found
                op.attributes["sharding"] = I.attr(st.get(op.results[0]).to_text())
            continue
        if not op.results:
            continue
        if op.parent is not None and op.parent.name not in ("func.func",) and \
                op.parent.name not in dataflow.CONTROL_OPS:
            continue                                   # scalar bodies of reduce/sort/...
        if all(I.is_tensor(v.type) for v in op.results):
            A.set_op_shardings(op, [st.get(v) for v in op.results])
    ret = I.block_ops(block)[-1]
    A.update_result_attrs(f, {i: {"sdy.sharding": I.attr(st.get(v).to_text())}
                              for i, v in enumerate(ret.operands) if A.result_sharding(f, i) is None})


@register
@dataclass(frozen=True)
class Propagate(ModulePass):
    """Give every value a sharding from the annotations present, through the factor rules."""
    name: ClassVar[str] = "rhino-propagate"

    def apply(self, pctx: PassContext, module) -> None:
        with module.context, ir.Location.unknown():
            f, mesh = prepare(module, self.name)
            if mesh is None:
                return                                   # nothing annotated: all replicated
            st = seed(f, module, mesh, self.name)
            cons = run(f.regions[0].blocks[0], st)
            write(f, st, cons)
            rules.strip(module.operation)
