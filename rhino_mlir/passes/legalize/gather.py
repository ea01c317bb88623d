"""stablehlo.gather -> the same gather on start indices clamped as the spec says.

The spec (and XLA) clamp every start index into [0, operand_dim - slice_size] before
slicing, so an out-of-range index reads the nearest whole window. IREE 3.13 (llvm-cpu)
does not in every form: f32[3] gathered with an explicit index vector (indices (7, 1),
collapsed dim 0) at [-1, 5, 100, -100, -3] returned garbage (2.6e-22, zeros) where XLA
returns elements 0 and 2. Every gather's start indices therefore pass through one
stablehlo.clamp against their bounds (per index-vector component: the dim it starts in,
from start_index_map); in-range indices are unchanged. A gather whose indices are an
in-range constant, or are clamped to those bounds already (a second run), stays.
"""
from __future__ import annotations

from ... import ir as I
from ...ir import ir
from .builder import Builder, static

GDN = I.stablehlo.GatherDimensionNumbers


def _int_range(elem: ir.Type) -> tuple[int, int] | None:
    if not isinstance(elem, ir.IntegerType):
        return None
    t = ir.IntegerType(elem)
    n = t.width
    return (0, (1 << n) - 1) if t.is_unsigned else (-(1 << (n - 1)), (1 << (n - 1)) - 1)


def _constant_ints(v) -> list[int] | None:
    """The values of a constant (or a broadcast_in_dim of one), else None."""
    owner = getattr(v.owner, "operation", v.owner)
    if not isinstance(owner, ir.Operation):
        return None
    if owner.name == "stablehlo.broadcast_in_dim":
        return _constant_ints(owner.operands[0])
    if owner.name != "stablehlo.constant":
        return None
    return [int(x) for x in ir.DenseIntElementsAttr(owner.attributes["value"])]


def _components(ishape: list[int], ivd: int, flat: list[int]) -> list[list[int]]:
    """Row-major `flat` indices split per index-vector component (along `ivd`)."""
    if ivd == len(ishape):
        return [flat]
    inner = 1
    for s in ishape[ivd + 1:]:
        inner *= s
    k = ishape[ivd]
    return [[v for n, v in enumerate(flat) if (n // inner) % k == j] for j in range(k)]


def _already(ind, hi: list[int]) -> bool:
    """Indices produced by a clamp to exactly [0, hi] (what this rewrite emits)."""
    owner = getattr(ind.owner, "operation", ind.owner)
    if not isinstance(owner, ir.Operation) or owner.name != "stablehlo.clamp":
        return False
    lo_v, hi_v = _constant_ints(owner.operands[0]), _constant_ints(owner.operands[2])
    return lo_v is not None and hi_v is not None and set(lo_v) == {0} and \
        (hi_v == hi or (len(set(hi)) == 1 and set(hi_v) == set(hi)))


def rewrite(op, b: Builder) -> str | None:
    x, ind = op.operands[0], op.operands[1]
    if not static(x, ind):
        return "dynamic shapes"
    elem = I.elem_of(ind.type)
    rng = _int_range(elem)
    if rng is None:
        return f"index type {elem}"
    dn = GDN(op.attributes["dimension_numbers"])
    sim, ivd = list(dn.start_index_map), dn.index_vector_dim
    if not sim:
        return "legal"                            # no start index: nothing to clamp
    sizes = list(ir.DenseI64ArrayAttr(op.attributes["slice_sizes"]))
    oshape, ishape = I.shape_of(x.type), I.shape_of(ind.type)
    hi = [min(oshape[d] - sizes[d], rng[1]) for d in sim]   # narrow index types cannot exceed it
    const = _constant_ints(ind)
    if const is not None and all(0 <= v <= h for comp, h in zip(_components(ishape, ivd, const), hi)
                                 for v in comp):
        return "legal"
    if _already(ind, hi):
        return "legal"
    scalar = I.make_tensor([], elem)
    lo_t = b.splat(0, scalar)
    if len(set(hi)) == 1:                         # one bound for every component: rank 0
        hi_t = b.splat(hi[0], scalar)
    else:
        row = b.constant(f"dense<[{', '.join(map(str, hi))}]> : tensor<{len(hi)}x{elem}>")
        hi_t = b.broadcast_dims(row, ind.type, [ivd])
        lo_t = b.broadcast(lo_t, ind.type)
    op.operands[1] = b.op("stablehlo.clamp", ind.type, [lo_t, ind, hi_t])
    return None
