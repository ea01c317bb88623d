"""What a local program communicates: every collective, its types, group and bytes.

For assertions such as "a data-parallel MLP forward emits no collective" or "a
Megatron MLP emits exactly one all_reduce of B x D". Bytes are per device on the wire
(ring model) and come from rhino_mlir.analysis.cost, the planner's own formulas, so
the check compares the IR against the same model the planner prices with; the local
fallback below is only used if that module is missing.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rhino_mlir import ir as I

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "collective_permute")

try:
    from rhino_mlir.analysis.cost import collective_bytes as _cost_bytes
except ImportError:                                    # pragma: no cover
    _cost_bytes = None


@dataclass(frozen=True)
class Collective:
    kind: str                     # one of KINDS
    operand_types: tuple[str, ...]
    result_types: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]   # replica groups, or (source, target) pairs
    reducer: str | None           # "add", "maximum", ... for all_reduce / reduce_scatter
    bytes: float                  # per-device bytes on the wire
    in_loop: bool                 # inside a while/case body (runs per iteration)

    @property
    def group_size(self) -> int:
        return 1 if self.kind == "collective_permute" else (len(self.groups[0]) if self.groups else 0)

    def __str__(self) -> str:
        return (f"{self.kind} {', '.join(self.operand_types)} -> {', '.join(self.result_types)} "
                f"groups of {self.group_size} ({self.bytes:g} B)")


def _dense_rows(attr) -> tuple[tuple[int, ...], ...]:
    d = I.ir.DenseIntElementsAttr(attr)
    shape = I.shape_of(attr.type)
    vals = [int(v) for v in d]
    if len(shape) != 2 or not shape[0] * shape[1]:
        return ()
    return tuple(tuple(vals[i * shape[1]:(i + 1) * shape[1]]) for i in range(shape[0]))


def _ring_bytes(kind: str, op) -> float:
    """Fallback (only without analysis/cost.py): ring formulas per device."""
    ops = sum(I.nbytes(v.type) for v in op.operands)
    res = sum(I.nbytes(v.type) for v in op.results)
    if kind == "collective_permute":
        return float(ops)
    n = len(_dense_rows(op.attributes["replica_groups"])[0])
    if kind == "all_gather":
        return (n - 1) / n * res
    if kind == "all_reduce":
        return 2 * (n - 1) / n * ops
    return (n - 1) / n * ops                           # reduce_scatter, all_to_all


def _reducer(op) -> str | None:
    if not op.regions or not op.regions[0].blocks:
        return None
    names = [o.operation.name for o in op.regions[0].blocks[0].operations]
    body = [n for n in names if n != "stablehlo.return"]
    return ",".join(n.removeprefix("stablehlo.") for n in body) or None


def _walk(root, in_loop=False):
    for region in root.regions:
        for block in region.blocks:
            for op in block.operations:
                op = op.operation
                yield op, in_loop
                yield from _walk(op, in_loop or op.name in ("stablehlo.while", "stablehlo.case",
                                                            "stablehlo.if"))


def collectives(local_text: str) -> list[Collective]:
    """Every collective in the module (all functions), in walk order."""
    ctx = I.new_context()
    mod = I.parse_module(local_text, ctx)
    out = []
    with ctx:
        for op, in_loop in _walk(mod.operation):
            kind = op.name.removeprefix("stablehlo.")
            if not op.name.startswith("stablehlo.") or kind not in KINDS:
                continue
            key = "source_target_pairs" if kind == "collective_permute" else "replica_groups"
            nbytes = _cost_bytes(op) if _cost_bytes is not None else _ring_bytes(kind, op)
            out.append(Collective(kind, tuple(str(v.type) for v in op.operands),
                                  tuple(str(v.type) for v in op.results),
                                  _dense_rows(op.attributes[key]), _reducer(op), float(nbytes),
                                  in_loop))
    return out


def count(local_text: str) -> Counter:
    """Collectives by kind, e.g. Counter({'all_reduce': 1})."""
    return Counter(c.kind for c in collectives(local_text))


def total_bytes(local_text: str) -> float:
    """Per-device bytes of all collectives (each counted once, loops not unrolled)."""
    return sum(c.bytes for c in collectives(local_text))


def materialized_globals(local_text: str) -> list[str]:
    """Values whose type is the global type of a sharded argument or result.

    The contract says a sharded value is never rebuilt at global size unless a
    need_replication/permutation factor forces it; this lists candidates (by type,
    so an unrelated tensor of the same type shows up too) as 'op : type'."""
    from .signature import signature, tensor_text
    sig = signature(local_text)
    wanted = {tensor_text(v.global_shape, v.dtype) for v in sig.args + sig.results
              if v.global_shape is not None and v.global_shape != v.shape}
    ctx = I.new_context()
    mod = I.parse_module(local_text, ctx)
    found = []
    with ctx:
        for op, _ in _walk(mod.operation):
            for r in op.results:
                if str(r.type) in wanted:
                    found.append(f"{op.name} : {r.type}")
    return found
