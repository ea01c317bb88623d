"""Local gather/scatter on a sharded addressed dimension (see analysis/indexing.py).

Each device subtracts its shard's start from the index component of every sharded
addressed dimension. A gather then reads clamped rows for indices outside its shard:
`valid` marks the in-shard ones and `mask_result` zeroes the rest, leaving a partial
sum over the shard axes; a scatter needs no mask (out-of-bounds updates are skipped).
"""
from __future__ import annotations

from ... import ir as I
from ...ir import ir
from ...sharding import Mesh


def shift(em, mesh: Mesh, ix, sharded: dict, local_operand, indices):
    """(shifted indices, i1 validity over the index tensor's batch dims or None)."""
    it = ir.RankedTensorType(indices.type)
    shape, elem = list(it.shape), it.element_type
    vd = ix.vector_dim
    batch = [s for k, s in enumerate(shape) if k != vd]
    i1 = ir.IntegerType.get_signless(1)
    valid = None
    for d, axes in sorted(sharded.items()):
        c = I.shape_of(local_operand.type)[d]
        start = em.op("stablehlo.convert", I.make_tensor([], elem), [em.mul_i32(em.shard_index(mesh, axes), c)])
        comp = ix.addressed.index(d)
        full = em.broadcast(start, indices.type)
        if vd < len(shape):                          # only this component of the index vector
            pos = em.op("stablehlo.iota", I.make_tensor(shape, ir.IntegerType.get_signless(32)), [],
                        {"iota_dimension": I.attr(f"{vd} : i64")})
            here = em.op("stablehlo.compare", I.make_tensor(shape, i1),
                         [pos, em.splat(comp, pos.type)],
                         {"comparison_direction": I.attr("#stablehlo<comparison_direction EQ>")})
            full = em.select(here, full, em.splat(0, indices.type))
        indices = em.op("stablehlo.subtract", indices.type, [indices, full])
        if ix.gather:
            k = indices
            if vd < len(shape):                      # this component, as a tensor over batch dims
                lo = [0] * len(shape)
                hi = list(shape)
                lo[vd], hi[vd] = comp, comp + 1
                k = em.slice(indices, lo, hi)
                k = em.reshape(k, batch)
            kt = ir.RankedTensorType(k.type)
            ge = em.op("stablehlo.compare", I.make_tensor(kt.shape, i1), [k, em.splat(0, k.type)],
                       {"comparison_direction": I.attr("#stablehlo<comparison_direction GE>")})
            lt = em.op("stablehlo.compare", I.make_tensor(kt.shape, i1), [k, em.splat(c, k.type)],
                       {"comparison_direction": I.attr("#stablehlo<comparison_direction LT>")})
            ok = em.op("stablehlo.and", ge.type, [ge, lt])
            valid = ok if valid is None else em.op("stablehlo.and", ok.type, [valid, ok])
    return indices, valid


def mask_result(em, result, valid, ix):
    """Zero the gathered rows whose index fell outside this device's shard."""
    rt = ir.RankedTensorType(result.type)
    batch_dims = [k for k in range(rt.rank) if k not in ix.offset_dims]
    keep = em.broadcast_dims(valid, I.make_tensor(list(rt.shape), ir.IntegerType.get_signless(1)), batch_dims)
    return em.select(keep, result, em.splat(0, result.type))
