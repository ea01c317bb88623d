"""Lower StableHLO collectives to calls into the `rhino` runtime module (or keep them).

Why: IREE compiles every StableHLO collective, but its CPU drivers implement none of
them ("collectives not implemented"), and its CUDA channels need a provider that the
Python runtime cannot install (FACTS.md, IREE 3.13). In `mode=import` each collective
and `partition_id` becomes a `func.call` to a private declaration `@rhino.<name>`; IREE
turns the declaration into a VM import that the per-rank runtime
(`rhino_mlir/launch/rank/runtime.py`) satisfies over MPI. The static parameters (reduce kind,
replica groups, dims, pairs) are encoded in the name (`collective_imports.py`) because a VM
import is bound by name alone. In `mode=native` the collectives stay for IREE's own NCCL
channels (CUDA under MPI); the pass then only checks they are lowerable.

Runs after `rhino-spmd-partition` (input: a local program whose collectives carry
`use_global_device_ids` and replica groups of device indices) and before
`rhino-strip-sharding`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as rir
from ..analysis.local_rules import collective_kind
from ..collective_imports import Collective
from .base import ModulePass, PassContext, register

# combiner (analysis/local_rules.py) -> the runtime's reduce kind (collective_imports.py)
_REDUCE_KIND = {"add": "sum", "mul": "prod", "min": "min", "max": "max"}
_COLLECTIVES = ("stablehlo.all_reduce", "stablehlo.all_gather", "stablehlo.reduce_scatter",
                "stablehlo.all_to_all", "stablehlo.collective_permute")
_IDS = ("stablehlo.partition_id", "stablehlo.replica_id")


@register
@dataclass(frozen=True)
class LowerCollectives(ModulePass):
    """Replace stablehlo collectives and partition_id by calls into the rhino runtime module."""
    name: ClassVar[str] = "rhino-lower-collectives"
    mode: str = "import"

    def apply(self, pctx: PassContext, module) -> None:
        if self.mode not in ("import", "native"):
            raise self.fail(f"unknown mode '{self.mode}' (expected import or native)")
        ops = [op for op in rir.walk_ops(module.operation)
               if op.name in _COLLECTIVES or op.name in _IDS]
        coll = [(op, self._describe(op)) for op in ops]
        if self.mode == "native":
            return
        with module.context, rir.ir.Location.unknown():
            decls = _Declarations(module)
            for op, descs in coll:
                self._replace(op, descs, decls)
        if coll:
            pctx.remark(f"{self.name}: {len(coll)} collective(s) -> "
                        f"{len(decls.names)} rhino import(s)")

    # ------------------------------------------------------------------ reading

    def _describe(self, op) -> list[Collective]:
        """One Collective per operand (all_reduce / all_to_all may be variadic)."""
        name = op.name
        if name == "stablehlo.replica_id":
            return []                       # mhlo.num_replicas = 1: always 0
        if name == "stablehlo.partition_id":
            return [Collective("partition_id")]
        kind = name.split(".", 1)[1]
        groups = self._groups(op, "replica_groups") if kind != "collective_permute" else ()
        if kind in ("all_reduce", "all_gather", "reduce_scatter") and groups \
                and "use_global_device_ids" not in op.attributes:
            raise self.fail(f"{name} has replica groups without use_global_device_ids; "
                            "groups must list device indices (rhino-spmd-partition emits them)", op)
        red = self._reduce_kind(op) if kind in ("all_reduce", "reduce_scatter") else ""
        n = len(op.operands)
        if kind == "all_reduce":
            return [Collective(kind, reduce=red, groups=groups)] * n
        if kind == "all_gather":
            return [Collective(kind, groups=groups, dim=self._int(op, "all_gather_dim"))] * n
        if kind == "reduce_scatter":
            return [Collective(kind, reduce=red, groups=groups,
                               dim=self._int(op, "scatter_dimension"))]
        if kind == "all_to_all":
            c = Collective(kind, groups=groups, split_dim=self._int(op, "split_dimension"),
                           concat_dim=self._int(op, "concat_dimension"))
            return [c] * n
        pairs = tuple(tuple(p) for p in self._groups(op, "source_target_pairs"))
        return [Collective(kind, pairs=pairs)]

    def _groups(self, op, attr: str) -> tuple[tuple[int, ...], ...]:
        if attr not in op.attributes:
            return ()
        a = rir.ir.DenseIntElementsAttr(op.attributes[attr])
        shape = rir.shape_of(a.type)
        flat = list(a)
        if len(shape) != 2:
            raise self.fail(f"{op.name}: {attr} has rank {len(shape)} but expected rank 2", op)
        rows = [tuple(x for x in flat[i * shape[1]:(i + 1) * shape[1]] if x >= 0)
                for i in range(shape[0])]
        return tuple(r for r in rows if r)

    def _int(self, op, attr: str) -> int:
        return rir.ir.IntegerAttr(op.attributes[attr]).value

    def _reduce_kind(self, op) -> str:
        kind = collective_kind(op)
        if kind is not None:
            return _REDUCE_KIND[kind]
        body = [o.operation for o in op.regions[0].blocks[0].operations]
        inner = ", ".join(o.name for o in body[:-1])
        raise self.fail(f"{op.name} reduces with '{inner}' but only a single add, multiply, "
                        "minimum or maximum is supported; complete such reductions with "
                        "all_gather + a local reduce", op)

    # ------------------------------------------------------------------ rewriting

    def _replace(self, op, descs: list[Collective], decls: "_Declarations") -> None:
        I = rir.ir
        ip = I.InsertionPoint(op)
        if op.name == "stablehlo.replica_id":
            zero = I.DenseElementsAttr.get_splat(op.results[0].type,
                                                 I.IntegerAttr.get(rir.elem_of(op.results[0].type), 0))
            new = [rir.stablehlo.ConstantOp(zero, ip=ip).result]
        elif op.name == "stablehlo.partition_id":
            t = op.results[0].type
            sym = decls.get(descs[0], [], [t])
            new = [rir.func.CallOp([t], sym, [], ip=ip).result]
        else:
            new = []
            for c, arg, res in zip(descs, op.operands, op.results):
                sym = decls.get(c, [arg.type], [res.type])
                new.append(rir.func.CallOp([res.type], sym, [arg], ip=ip).result)
        for old, nv in zip(op.results, new):
            old.replace_all_uses_with(nv)
        op.erase()


class _Declarations:
    """One private `func.func @rhino.<name>` per distinct (collective, types)."""

    def __init__(self, module):
        self.module = module
        self.names: dict[tuple, str] = {}
        self.tags: dict[Collective, int] = {}
        body = module.body
        self.ip = rir.ir.InsertionPoint.at_block_begin(body)
        # names already declared (pass run twice, or hand-written imports) stay valid
        self.taken = {f.attributes["sym_name"].value for f in rir.funcs(module)}

    def get(self, c: Collective, ins: list, outs: list) -> str:
        key = (c, tuple(str(t) for t in ins), tuple(str(t) for t in outs))
        if key in self.names:
            return self.names[key]
        tag = self.tags.get(c, 0)
        while c.symbol(tag) in self.taken and c.kind != "partition_id":
            tag += 1
        self.tags[c] = tag + 1
        sym = c.symbol(tag)
        if sym not in self.taken:
            ftype = rir.ir.FunctionType.get(ins, outs)
            rir.func.FuncOp(sym, ftype, visibility="private", ip=self.ip)
            self.taken.add(sym)
        self.names[key] = sym
        return sym
