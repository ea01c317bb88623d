"""Local gather/scatter on a sharded addressed dimension (see analysis/indexing.py).

Each device subtracts its shard's start from the index component of every sharded
addressed dimension. No emitted index ever points outside the local operand: IREE 3.13
neither clamps a gather index nor skips an out-of-bounds scatter update (it reads and
writes past the buffer: garbage, or a crash), so nothing may rely on either.
  gather   indices are clamped as the spec says (global start in [0, G - 1]), shifted,
           marked `valid` when inside this shard, and clamped into it; `mask_result`
           zeroes the rows read for invalid indices (the shards are then summed).
  scatter  an update is `valid` when its global window is in bounds (XLA skips the rest)
           and its row lies in this shard; invalid ones go to index 0 with the body's
           identity as update (add/mul/min/max bodies), or for any other body (overwrite)
           to one extra row appended to the operand and cropped off after the op.
The emitted scatter drops `unique_indices` / `indices_are_sorted`: redirected updates
share an index.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import ir as I
from ...ir import ir
from ...sharding import Mesh


def _i1():
    return ir.IntegerType.get_signless(1)


def _cmp(em, a, b, direction: str):
    return em.op("stablehlo.compare", I.make_tensor(I.shape_of(a.type), _i1()), [a, b],
                 {"comparison_direction": I.attr(f"#stablehlo<comparison_direction {direction}>")})


def _and(em, a, b):
    return b if a is None else em.op("stablehlo.and", a.type, [a, b])


def _per_component(em, ix, values, t):
    """Tensor of the index type `t` holding values[k] at component k of every index."""
    rt = ir.RankedTensorType(t)
    if ix.vector_dim >= rt.rank:
        return em.splat(values[0], t)
    vec = em.constant(f"dense<[{', '.join(str(int(v)) for v in values)}]> : "
                      f"tensor<{len(values)}x{rt.element_type}>")
    return em.broadcast_dims(vec, t, [ix.vector_dim])


def _all_components(em, ix, ok):
    """i1 over the index batch dims: every component of the index is ok."""
    shape = I.shape_of(ok.type)
    vd = ix.vector_dim
    if vd >= len(shape):
        return ok
    batch = [s for k, s in enumerate(shape) if k != vd]
    out = None
    for k in range(shape[vd]):
        lo, hi = [0] * len(shape), list(shape)
        lo[vd], hi[vd] = k, k + 1
        out = _and(em, out, em.reshape(em.slice(ok, lo, hi), batch))
    return out


@dataclass
class Local:
    """The local index tensor, and i1 over its batch dims: the index belongs here."""
    indices: object
    valid: object


def localize(em, mesh: Mesh, ix, sharded: dict, global_operand, local_operand, indices,
             window) -> Local:
    """Shift, check and (gather) clamp the indices; `window` is the local window size per
    operand dim (analysis/indexing.window_sizes), `sharded` maps operand dims to mesh axes."""
    it = ir.RankedTensorType(indices.type)
    shape, t = list(it.shape), indices.type
    local = I.shape_of(local_operand.type)
    hi_local = [local[d] - window[d] for d in ix.addressed]            # largest start here
    hi_global = [global_operand[d] - 1 if d in sharded else hi_local[k]  # largest start at all
                 for k, d in enumerate(ix.addressed)]
    zero = em.splat(0, t)
    off = None                                   # this shard's start, on sharded components
    for d, axes in sorted(sharded.items()):
        start = em.op("stablehlo.convert", I.make_tensor([], it.element_type),
                      [em.mul_i32(em.shard_index(mesh, axes), local[d])])
        full = em.broadcast(start, t)
        if ix.vector_dim < len(shape):           # only this component of the index vector
            pos = em.op("stablehlo.iota", t, [], {"iota_dimension": I.attr(f"{ix.vector_dim} : i64")})
            full = em.select(_cmp(em, pos, em.splat(ix.addressed.index(d), t), "EQ"), full, zero)
        off = full if off is None else em.op("stablehlo.add", t, [off, full])
    hg, hl = _per_component(em, ix, hi_global, t), _per_component(em, ix, hi_local, t)
    x = indices
    if ix.gather:                                # the spec's clamp, on global indices
        x = em.op("stablehlo.clamp", t, [zero, x, hg])
        x = em.op("stablehlo.subtract", t, [x, off])
        ok = _and(em, _cmp(em, x, zero, "GE"), _cmp(em, x, hl, "LE"))
        return Local(em.op("stablehlo.clamp", t, [zero, x, hl]), _all_components(em, ix, ok))
    ok = _and(em, _cmp(em, x, zero, "GE"), _cmp(em, x, hg, "LE"))
    x = em.op("stablehlo.subtract", t, [x, off])
    ok = _and(em, ok, _and(em, _cmp(em, x, zero, "GE"), _cmp(em, x, hl, "LE")))
    return Local(x, _all_components(em, ix, ok))


def mask_result(em, result, valid, ix):
    """Zero the gathered rows whose index fell outside this device's shard."""
    rt = ir.RankedTensorType(result.type)
    batch_dims = [k for k in range(rt.rank) if k not in ix.offset_dims]
    keep = em.broadcast_dims(valid, I.make_tensor(list(rt.shape), _i1()), batch_dims)
    return em.select(keep, result, em.splat(0, result.type))


def _where_valid(em, ix, valid, x, fallback):
    """x where its index is valid, else fallback (both of the index type)."""
    keep = valid
    rank = len(I.shape_of(x.type))
    if ix.vector_dim < rank:
        dims = [k for k in range(rank) if k != ix.vector_dim]
        keep = em.broadcast_dims(valid, I.make_tensor(I.shape_of(x.type), _i1()), dims)
    return em.select(keep, x, fallback)


def redirect_updates(em, op, ix, loc: Local, kind: str | None, identity, sharded: dict):
    """Point a scatter's invalid updates somewhere harmless (see the module docstring).

    Sets the op's index and update operands (and, for the extra row, its operand); returns
    the dim the operand grew along by one row (the caller crops the result), or None."""
    x = loc.indices
    t = x.type
    upd = op.operands[2]
    ut = ir.RankedTensorType(upd.type)
    scatter_dims = [k for k in range(ut.rank) if k not in ix.update_window_dims]
    op.attributes["unique_indices"] = ir.BoolAttr.get(False)
    op.attributes["indices_are_sorted"] = ir.BoolAttr.get(False)
    if kind is not None:                         # add the identity at index 0
        op.operands[1] = _where_valid(em, ix, loc.valid, x, em.splat(0, t))
        keep = em.broadcast_dims(loc.valid, I.make_tensor(list(ut.shape), _i1()), scatter_dims)
        fill = em.broadcast(em.splat(identity, I.make_tensor([], ut.element_type)), upd.type)
        op.operands[2] = em.select(keep, upd, fill)
        return None
    d = min(sharded)                             # write into one extra row along d
    operand = op.operands[0]
    rows = I.shape_of(operand.type)[d]
    op.operands[0] = em.pad_to(operand, d, rows + 1)
    spare = [rows if a == d else 0 for a in ix.addressed]
    op.operands[1] = _where_valid(em, ix, loc.valid, x, _per_component(em, ix, spare, t))
    return d


def count_once(em, mesh: Mesh, x, axes, fill) -> ir.Value:
    """`x` on the first device of every group over `axes`, `fill` (the combiner's identity)
    on the others: what a scatter left partial over `axes` scatters into, so that the
    operand is counted once when the partial results are combined (local_rules.counted_once)."""
    first = _cmp(em, em.shard_index(mesh, axes), em.splat(0, I.make_tensor([], ir.IntegerType.get_signless(32))),
                 "EQ")
    keep = em.broadcast(first, I.make_tensor(I.shape_of(x.type), _i1()))
    return em.select(keep, x, em.broadcast(em.splat(fill, I.make_tensor([], I.elem_of(x.type))), x.type))
