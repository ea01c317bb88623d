"""rhino-spmd-partition: global annotated program -> one local program with explicit collectives.

Each op runs on local shards. Its factor sharding comes from the sharding that
rhino-propagate gave its results (and, for reduction factors, from its operands);
operands are resharded to match (partition/spmd/reshard.py, the one place that picks
collectives), result types become ceil-sized local shards, and a sharded reduction
factor leaves a partial result that its consumers complete (all_reduce, or
reduce_scatter where they want it sharded). Padding of uneven shards is masked with
the reduction's identity before any reduction over it. Factors the rules forbid to
shard are gathered first (reported as remarks). A while carry that only accumulates
partial values (gradients summed over micro-batches) stays partial through the loop and
is completed once after it (partition/spmd/carry.py). Output contract: DESIGN.md "Local
(per-device) program". Runs after rhino-propagate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..analysis import dataflow, rules
from ..analysis.indexing import indexing, window_sizes
from ..analysis.local_rules import (combiner, counted_once, identity, iota_dimension, local_attrs, restrict,
                                   update_combiner)
from ..ir import ir
from ..sharding import annotations as A
from ..partition.spmd import carry, indices
from ..partition.spmd.emit import Emitter
from ..sharding.factors import tensor_sharding
from ..partition.spmd.reshard import Step, emit, plan, total_bytes
from ..partition.spmd.strategy import Layout, Tensor, choose
from ..sharding import Mesh, TensorSharding, axes_size
from .base import ModulePass, PassContext, register
from .propagate import prepare


class Partitioner:
    def __init__(self, mesh: Mesh, pctx: PassContext, who: str):
        self.mesh, self.pctx, self.who = mesh, pctx, who
        self.layout: dict = {}
        self.want: dict = {}
        self.gshape: dict = {}
        self.cache: dict = {}
        self.counter = [0]
        self.steps: list[Step] = []
        self.gathered: list[str] = []     # values gathered because a factor must not be sharded
        self.carried: dict = {}           # accumulator update (or its widening) result -> its partitioner

    # ------------------------------------------------------------------ helpers
    def rep(self, rank: int) -> TensorSharding:
        return TensorSharding.replicated_of(self.mesh.name, rank)

    def shape(self, v) -> list[int]:
        s = self.gshape.get(v)
        if s is None:
            s = self.gshape[v] = I.shape_of(v.type)
        return s

    def lay(self, v) -> Layout:
        return self.layout.get(v) or Layout(self.rep(len(self.shape(v))))

    def target(self, v) -> TensorSharding:
        return self.want.get(v) or self.rep(len(self.shape(v)))

    def localize(self, v, sh: TensorSharding) -> None:
        shape = self.shape(v)
        v.set_type(I.make_tensor(sh.local_shape(shape, self.mesh), I.elem_of(v.type)))

    def reshard(self, v, dst: TensorSharding, anchor, why: str = ""):
        if not I.is_tensor(v.type):
            return v
        lay = self.lay(v)
        dst = dst.closed()
        if lay.sharding.dims == dst.dims and not lay.partial:
            return v
        key = (v, dst.dims, anchor.block)        # one reshard per value, target and block
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        shape = self.shape(v)
        steps = plan(lay.sharding, dst, shape, self.mesh, I.elem_bytes(I.elem_of(v.type)), lay.partial,
                     lay.combiner)
        new = emit(Emitter(anchor, self.counter), v, steps, shape, self.mesh)
        self.steps.extend(steps)
        if why and any(s.kind == "all_gather" for s in steps):
            self.gathered.append(why)
            self.pctx.remark(f"{self.who}: an operand is gathered because {why}")
        self.gshape[new] = shape
        self.layout[new] = Layout(dst)
        self.cache[key] = new
        return new

    # ------------------------------------------------------------------ seeding
    def seed(self, f) -> None:
        for op in I.walk_ops(f):
            shs = A.op_shardings(op)
            if shs is not None and op.name not in dataflow.CONSTRAINT_OPS:
                for v, s in zip(op.results, shs):
                    self.want[v] = s.closed()
            if op.name in dataflow.LOOP_OPS:
                for r, b, c in dataflow.loop_carries(op):
                    if r in self.want:
                        self.want[b] = self.want[c] = self.want[r]
        for op in I.walk_ops(f):            # global shapes before any type changes
            for v in op.results:
                if I.is_tensor(v.type):
                    self.shape(v)
            for region in op.regions:
                for b in region.blocks:
                    for a in b.arguments:
                        if I.is_tensor(a.type):
                            self.shape(a)

    # ------------------------------------------------------------------ ops
    def block(self, block, term_targets) -> None:
        for op in I.block_ops(block):
            name = op.name
            if name in dataflow.TERMINATORS:
                for i, v in enumerate(list(op.operands)):
                    t = term_targets[i] if term_targets is not None else self.rep(len(self.shape(v)))
                    if isinstance(t, Layout):           # a carry kept partial (partition/spmd/carry.py)
                        if self.lay(v) == t:
                            continue
                        t = t.sharding
                    op.operands[i] = self.reshard(v, t, op)
            elif len(op.results) == 1 and op.results[0] in self.carried \
                    and self.carried.pop(op.results[0])(op):
                pass                                    # an accumulator kept partial (carry.py)
            elif name in dataflow.LOOP_OPS:
                self.loop(op)
            elif name in dataflow.BRANCH_OPS:
                self.branch(op)
            elif name in dataflow.CONSTRAINT_OPS:
                s = A.op_shardings(op)[0]
                new = self.reshard(op.operands[0], s, op)
                op.results[0].replace_all_uses_with(new)
                op.erase()
            elif name in dataflow.IDENTITY_OPS:
                for i, (v, r) in enumerate(zip(list(op.operands), op.results)):
                    s = self.target(r)
                    op.operands[i] = self.reshard(v, s, op)
                    self.localize(r, s)
                    self.layout[r] = Layout(s)
            else:
                r = rules.rule_of(op)
                vals = list(op.operands) + list(op.results)
                if r is None or len(vals) != len(r.operands) + len(r.results) \
                        or not all(I.is_tensor(v.type) for v in vals):
                    self.replicated_op(op)
                else:
                    self.rule_op(op, restrict(op, r, self.shape))

    def replicated_op(self, op) -> None:
        if op.name in dataflow.CALL_OPS:
            raise self.fail(f"{I.value_name(op.results[0]) if op.results else 'call'} (func.call) calls a "
                            f"function; run rhino-inline first", op)
        for i, v in enumerate(list(op.operands)):
            if I.is_tensor(v.type):
                op.operands[i] = self.reshard(v, self.rep(len(self.shape(v))), op, f"{op.name} has no rule")
        for v in op.results:
            if I.is_tensor(v.type):
                self.layout[v] = Layout(self.rep(len(self.shape(v))))

    def loop(self, op) -> None:
        carries = dataflow.loop_carries(op)
        accs = carry.accumulators(op)        # reads the inits: before they are resharded
        sh = [self.target(r) for r, _, _ in carries]
        for i, v in enumerate(list(op.operands)):
            op.operands[i] = self.reshard(v, sh[i], op)
        for (r, b, c), s in zip(carries, sh):
            for v in (r, b, c):
                self.localize(v, s)
                self.layout[v] = Layout(s)
        for a in accs.values():
            self.carried[a.update.results[0]] = lambda u, a=a: carry.update(self, u, op, a, sh)
            if a.through is not None:
                self.carried[a.through.results[0]] = lambda w, a=a: carry.widen(self, w, a.kind)
        self.block(op.regions[0].blocks[0], None)
        self.block(op.regions[1].blocks[0], sh)

    def branch(self, op) -> None:
        sh = [self.target(r) for r in op.results]
        for i, v in enumerate(list(op.operands)):
            op.operands[i] = self.reshard(v, self.rep(len(self.shape(v))), op)
        for region in op.regions:
            self.block(region.blocks[0], sh)
        for r, s in zip(op.results, sh):
            self.localize(r, s)
            self.layout[r] = Layout(s)

    def factor_sharding(self, op, r: rules.OpRule, comb: str | None) -> list:
        """Axes per factor, decided by partition/spmd/strategy.py (the planner prices the same)."""
        tensors = lambda vs: [Tensor(tuple(self.shape(v)), I.elem_bytes(I.elem_of(v.type))) for v in vs]  # noqa
        return choose(r, comb, [self.target(v) for v in op.results], [self.lay(v) for v in op.operands],
                      tensors(op.operands), tensors(op.results), self.mesh)

    def rule_op(self, op, r: rules.OpRule) -> None:
        mesh = self.mesh
        comb = combiner(op)
        fsh = self.factor_sharding(op, r, comb)
        red = [f for f in sorted(r.reduction) if fsh[f]]
        once = counted_once(op) if red else []
        for i, (dims, v) in enumerate(zip(r.operands, list(op.operands))):
            need = tensor_sharding(mesh.name, dims, fsh, mesh)
            forced = [f for fs in dims for f in fs if not r.shardable(f)]
            why = f"{op.name} must not shard factor(s) {', '.join(r.names[f] for f in forced)} " \
                f"of operand {i}" if forced else ""
            x = self.reshard(v, need, op, why)
            for f in red:
                x = self.mask(x, dims, f, fsh[f], r.sizes[f], comb, op)
            if i in once:                   # held whole by each partial result: count it once
                x = indices.count_once(Emitter(op, self.counter), mesh, x, [a for f in red for a in fsh[f]],
                                       identity(comb, I.elem_of(x.type)))
                self.gshape[x], self.layout[x] = self.shape(v), Layout(need)
            op.operands[i] = x
        ix = indexing(op)
        sharded = {d: fsh[r.operands[0][d][0]] for d in (ix.shardable if ix else ())
                   if len(r.operands[0][d]) == 1 and fsh[r.operands[0][d][0]]}
        loc = grown = None
        if sharded:                         # shift indices into this device's shard
            loc, grown = self.local_indices(op, ix, sharded)
        local_res = []
        for dims, v in zip(r.results, op.results):
            sh = tensor_sharding(mesh.name, dims, fsh, mesh)
            self.localize(v, sh)
            local_res.append(I.shape_of(v.type))
            partial = tuple(a for f in red for a in fsh[f])
            self.layout[v] = Layout(sh, partial, comb or "add")
        local_attrs(op, [self.shape(v) for v in op.operands], [I.shape_of(v.type) for v in op.operands],
                    [self.shape(v) for v in op.results], local_res)
        d = iota_dimension(op)
        if d is not None and fsh[r.results[0][d][0]]:
            self.offset_iota(op, d, fsh[r.results[0][d][0]])
        if loc is not None and ix.gather:    # gather: rows from other shards count as 0
            self.after(op, lambda em, v: indices.mask_result(em, v, loc.valid, ix))
        if grown is not None:                # scatter wrote its invalid updates to an extra row
            v = op.results[0]
            size = I.shape_of(v.type)[grown]
            v.set_type(I.make_tensor([s + (k == grown) for k, s in enumerate(I.shape_of(v.type))],
                                     I.elem_of(v.type)))
            self.after(op, lambda em, v: em.crop(v, grown, size))

    def local_indices(self, op, ix, sharded):
        """Indices shifted into this shard, never out of bounds (partition/spmd/indices.py)."""
        em = Emitter(op, self.counter)
        operand = op.operands[0]
        win = window_sizes(op, ix, self.shape(operand), I.shape_of(operand.type),
                      None if ix.gather else I.shape_of(op.operands[2].type))
        loc = indices.localize(em, self.mesh, ix, sharded, self.shape(operand), operand,
                               op.operands[ix.indices], win)
        if ix.gather:
            op.operands[ix.indices] = loc.indices
            return loc, None
        kind = update_combiner(op)
        elem = I.elem_of(op.results[0].type)
        return loc, indices.redirect_updates(em, op, ix, loc, kind, identity(kind, elem) if kind else None,
                                             sharded)

    def after(self, op, build) -> None:
        """Replace every use of op's result by build(emitter after op, result)."""
        v = op.results[0]
        new = build(Emitter(_after(op), self.counter), v)
        owner = new.owner
        v.replace_all_uses_except(new, getattr(owner, "operation", owner))
        self.gshape[new] = self.shape(v)
        self.layout[new] = self.layout[v]

    def mask(self, x, dims, f: int, axes, size: int, comb: str, op):
        """Fill the padding of an uneven sharded reduction factor with the identity."""
        if size % axes_size(axes, self.mesh) == 0:
            return x
        gshape, lay = self.shape(x), self.lay(x)
        for d, fs in enumerate(dims):
            if fs == (f,):
                em = Emitter(op, self.counter)
                shape = I.shape_of(x.type)
                start = em.mul_i32(em.shard_index(self.mesh, axes), shape[d])
                keep = em.valid_mask(shape, d, start, size)
                elem = I.elem_of(x.type)
                fill = em.broadcast(em.splat(identity(comb, elem), I.make_tensor([], elem)), x.type)
                x = em.select(keep, x, fill)
                self.gshape[x], self.layout[x] = gshape, lay
        return x

    def offset_iota(self, op, d: int, axes) -> None:
        v = op.results[0]
        em = Emitter(_after(op), self.counter)
        shape = I.shape_of(v.type)
        start = em.mul_i32(em.shard_index(self.mesh, axes), shape[d])
        start = em.op("stablehlo.convert", I.make_tensor([], I.elem_of(v.type)), [start])
        add = em._create("stablehlo.add", [v.type], [v, em.broadcast(start, v.type)])
        v.replace_all_uses_except(add.result, add)
        self.gshape[add.result] = self.shape(v)
        self.layout[add.result] = self.layout[v]

    def fail(self, msg: str, op=None):
        from ..errors import PassError
        return PassError(f"{self.who}: {msg}", op)

    # ------------------------------------------------------------------ function
    def func(self, f) -> None:
        self.seed(f)
        block = f.regions[0].blocks[0]
        mesh = self.mesh
        args = {}
        for i, a in enumerate(block.arguments):
            s = A.arg_sharding(f, i) or self.rep(len(self.shape(a)))
            s = s.closed()
            self.layout[a] = Layout(s)
            args[i] = {"rhino.global_type": ir.TypeAttr.get(a.type), "sdy.sharding": I.attr(s.to_text())}
            self.localize(a, s)
        A.update_arg_attrs(f, args)
        ret = I.block_ops(block)[-1]
        targets = []
        for i, v in enumerate(ret.operands):
            s = A.result_sharding(f, i) or self.target(v)
            targets.append(s.closed())
        # global types from the shapes seen before any localizing: a result may be an
        # argument (`return %arg0`), whose type is already local here
        res_types = [ir.TypeAttr.get(I.make_tensor(self.shape(v), I.elem_of(v.type)) if I.is_tensor(v.type)
                                     else v.type) for v in ret.operands]
        self.block(block, targets)
        for i, (t, s, v) in enumerate(zip(res_types, targets, ret.operands)):
            if I.is_tensor(v.type) and I.shape_of(v.type) != s.local_shape(I.shape_of(t.value), mesh):
                raise self.fail(f"result {i}: local type {v.type} is not {s.to_text()} of {t.value}", ret)
        A.update_result_attrs(f, {i: {"rhino.global_type": t, "sdy.sharding": I.attr(s.to_text())}
                                  for i, (t, s) in enumerate(zip(res_types, targets))})
        ftype = ir.FunctionType.get([a.type for a in block.arguments], [v.type for v in ret.operands])
        f.attributes["function_type"] = ir.TypeAttr.get(ftype)


def _after(op):
    """An anchor that inserts right after `op` (before its successor in the block)."""
    ops = I.block_ops(op.block)
    return ops[ops.index(op) + 1]


def strip_annotations(f) -> None:
    rules.strip(f)
    for op in I.walk_ops(f):
        if "sdy.sharding" in op.attributes:
            del op.attributes["sdy.sharding"]


@register
@dataclass(frozen=True)
class SpmdPartition(ModulePass):
    """Global annotated program -> one local program with explicit collectives."""
    name: ClassVar[str] = "rhino-spmd-partition"

    def apply(self, pctx: PassContext, module) -> None:
        with module.context, ir.Location.unknown():
            f, mesh = prepare(module, self.name)
            if mesh is None:
                raise self.fail("the module has no sdy.mesh; add `sdy.mesh @mesh = <[\"x\"=N]>` and "
                                "shardings (or run rhino-auto-shard) before partitioning")
            p = Partitioner(mesh, pctx, self.name)
            p.func(f)
            strip_annotations(f)
            module.operation.attributes["mhlo.num_partitions"] = I.attr(f"{mesh.size} : i32")
            module.operation.attributes["mhlo.num_replicas"] = I.attr("1 : i32")
            coll = [s for s in p.steps if s.kind != "slice"]
            pctx.stats[self.name] = {"collectives": len(coll), "bytes": total_bytes(p.steps),
                                     "kinds": sorted(s.kind for s in coll), "gathered": p.gathered}
            pctx.remark(f"{self.name}: {len(coll)} collectives, {total_bytes(p.steps):.0f} bytes per device")
            try:
                module.operation.verify()
            except ir.MLIRError as e:
                raise self.fail(f"produced invalid IR: {str(e).splitlines()[1] if len(str(e).splitlines()) > 1 else e}")
