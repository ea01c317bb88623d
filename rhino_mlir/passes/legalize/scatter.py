"""stablehlo.scatter -> the one canonical scatter IREE converts, with explicit bounds.

IREE 3.13 converts a scatter to iree_linalg_ext.scatter only when indices are
(N, K) with the index vector last, the K indexed operand dims are the leading ones with
window size 1, and every other update window spans its whole operand dim; other forms
fail ("expected indices to be equal to batch rank or batch rank + 1", "shape of update
value dim#1 must match original value"), rank-0 operands crash iree-compile, and the
generated loop has no bounds check (an out-of-bounds index writes past the buffer).

Every scatter with one operand and static shapes becomes, exactly:
  components  index vector components, each an operand dim: the given ones
              (scatter_dims_to_operand_dims), one iota per batching dim pair (the update
              at batch position b goes to operand index b there), and a 0 for each other
              dim whose update window is partial (its window starts at 0);
  operand     transposed so the component dims come first, in component order;
  windows     a component dim with a window wider than 1 is unrolled into the batch:
              start + t for t < w, the window's updates along with it;
  indices     (B..., [E...], K) -> (N, K);  updates (B..., [E...], rest...) -> (N, rest...);
  bounds      a window is in bounds when 0 <= start <= size - w for every given
              component (XLA's rule; out-of-bounds windows are skipped whole). Others get
              the combiner's identity as update at index 0 (x + -0.0, x * 1, max(x, -inf),
              ... leave every x unchanged), or, with no identity (overwrite, custom
              regions), index `size` of one padding row cut off afterwards.
The update region moves over unchanged; unique_indices becomes false (redirected
updates share index 0) and indices_are_sorted false.
"""
from __future__ import annotations

import math

from ... import ir as I
from ...ir import ir
from .builder import Builder, i1, move_region, static

SHD = I.stablehlo.ScatterDimensionNumbers

_BITS = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "ui8": 8, "ui16": 16, "ui32": 32, "ui64": 64}


def _identity(region, elem: ir.Type):
    """The value e with f(x, e) == x for every x, for a one-op region f; else None."""
    ops = I.block_ops(region.blocks[0])
    args = list(region.blocks[0].arguments)
    if len(ops) != 2 or len(ops[0].operands) != 2 or ops[1].operands[0] != ops[0].results[0]:
        return None
    if set(ops[0].operands) != set(args):
        return None
    kind, e = ops[0].name.removeprefix("stablehlo."), str(elem)
    if e in ("f16", "bf16", "f32", "f64"):
        return {"add": -0.0, "multiply": 1.0, "maximum": float("-inf"),
                "minimum": float("inf")}.get(kind)
    if e == "i1":
        return {"or": False, "xor": False, "maximum": False, "add": False,
                "and": True, "minimum": True, "multiply": True}.get(kind)
    if e in _BITS:
        n, signed = _BITS[e], not e.startswith("u")
        top = (1 << (n - 1)) - 1 if signed else (1 << n) - 1
        low = -(1 << (n - 1)) if signed else 0
        return {"add": 0, "or": 0, "xor": 0, "multiply": 1, "maximum": low, "minimum": top,
                "and": -1 if signed else top}.get(kind)
    return None


def _constant_in_bounds(indices, check) -> bool:
    """Indices from a constant whose every window is in bounds: nothing to mask."""
    owner = indices.owner
    owner = getattr(owner, "operation", owner)
    if not isinstance(owner, ir.Operation) or owner.name != "stablehlo.constant":
        return False
    vals = [int(v) for v in ir.DenseIntElementsAttr(owner.attributes["value"])]
    return check(vals)


def rewrite(op, b: Builder) -> str | None:
    """Replace `op` by the canonical scatter; or say why it stays ("legal": nothing to do)."""
    value, why = replacement(op, b)
    if value is None:
        return why
    op.results[0].replace_all_uses_with(value)
    op.erase()
    return None


def replacement(op, b: Builder, in_bounds: bool = False):
    """(the value that replaces `op`'s result, None) or (None, why it stays).
    `in_bounds`: the caller knows every window is inside the operand (no mask)."""
    if len(op.results) != 1:
        return None, "variadic scatter (IREE converts one operand only)"
    x, ind, upd = op.operands
    if not static(x, ind, upd):
        return None, "dynamic shapes"
    if str(I.elem_of(ind.type)) not in _BITS:
        return None, f"index type {I.elem_of(ind.type)}"
    dn = SHD(op.attributes["scatter_dimension_numbers"])
    size, ishape, ushape = I.shape_of(x.type), I.shape_of(ind.type), I.shape_of(upd.type)
    if 0 in ushape or 0 in size:            # no update lands: the operand is the result
        return x, None
    plan = _Plan(dn, size, ishape, ushape)
    if plan.canonical and _constant_in_bounds(ind, plan.in_bounds):
        return None, "legal"
    return _emit(op, b, plan, x, ind, upd, in_bounds), None


class _Plan:
    """Where every dim of operand, indices and updates goes (no IR)."""

    def __init__(self, dn, size, ishape, ushape):
        uwd, ins = list(dn.update_window_dims), set(dn.inserted_window_dims)
        ibd, sibd = list(dn.input_batching_dims), list(dn.scatter_indices_batching_dims)
        sdod, ivd = list(dn.scattered_dims_to_operand_dims), dn.index_vector_dim
        self.implicit = ivd == len(ishape)
        self.ibatch = [d for d in range(len(ishape)) if d != ivd]        # index batch dims
        self.batch = [ishape[d] for d in self.ibatch]                    # B
        self.unit = False                     # no component at all: prepend a unit dim
        rank = len(size)
        windims = [d for d in range(rank) if d not in ins and d not in ibd]
        self.upos = dict(zip(windims, uwd))   # operand dim -> its update window dim
        w = {d: ushape[self.upos[d]] if d in self.upos else 1 for d in range(rank)}
        # (operand dim, kind, argument): "col" j of the index vector, "iota" over batch dim k, "zero"
        comps = [(d, "col", j) for j, d in enumerate(sdod)]
        comps += [(o, "iota", self.ibatch.index(i)) for o, i in zip(ibd, sibd)]
        comps += [(d, "zero", None) for d in range(rank) if d not in sdod and d not in ibd and w[d] < size[d]]
        if not comps:
            self.unit, size = True, [1] + list(size)
            w = {d + 1: s for d, s in w.items()} | {0: 1}
            self.upos = {d + 1: u for d, u in self.upos.items()}
            comps = [(0, "zero", None)]
        self.size, self.w, self.comps = list(size), w, comps
        idx = [d for d, _, _ in comps]
        self.rest = [d for d in range(len(size)) if d not in idx]
        self.perm = idx + self.rest
        self.expanded = [d for d in idx if w[d] > 1]
        self.ubatch = [k for k in range(len(ushape)) if k not in uwd]    # update batch dims
        self.canonical = (not self.unit and not self.expanded and len(self.batch) == 1 and not ibd
                          and ivd == 1 and sdod == list(range(len(sdod))) and ins == set(sdod)
                          and uwd == list(range(1, 1 + len(self.rest))) and self.rest == windims
                          and len(comps) == len(sdod))
        self.sdod = sdod

    def in_bounds(self, flat: list[int]) -> bool:
        k = len(self.sdod)
        lims = [self.size[d] - self.w[d] for d in self.sdod]
        return all(0 <= flat[i + j] <= lims[j] for i in range(0, len(flat), k) for j in range(k))


def _emit(op, b: Builder, plan: _Plan, x, ind, upd, in_bounds: bool):
    elem = I.elem_of(ind.type)
    t = elem if str(elem) in ("i32", "i64") else ir.IntegerType.get_signless(64)
    B, E = plan.batch, [plan.w[d] for d in plan.expanded]
    full = B + E                                                          # (B..., E...)
    # index vector last: (B..., K0)
    if plan.implicit:
        iv = b.reshape(ind, B + [1])
    else:
        ivd = [d for d in range(len(I.shape_of(ind.type))) if d not in plan.ibatch][0]
        iv = b.transpose(ind, plan.ibatch + [ivd])
    iv = b.convert(iv, t)
    nb = len(B)
    comps, valid = [], None
    for d, kind, arg in plan.comps:
        if kind == "col":
            c = b.reshape(b.slice(iv, [0] * nb + [arg], B + [arg + 1]), B)
        if kind == "col" and not in_bounds:
            lo = b.compare(c, b.splat(0, c.type), "GE")
            hi = b.compare(c, b.splat(plan.size[d] - plan.w[d], c.type), "LE")
            valid = b.both(valid, b.both(lo, hi))
        if kind == "iota":
            c = b.iota(B, arg, t)
        elif kind == "zero":
            c = b.splat(0, I.make_tensor(B, t))
        c = b.broadcast_dims(c, I.make_tensor(full, t), list(range(nb)))
        if d in plan.expanded:           # start + t over the unrolled window
            c = b.op("stablehlo.add", c.type, [c, b.iota(full, nb + plan.expanded.index(d), t)])
        comps.append(b.reshape(c, full + [1]))
    n = math.prod(full)
    index = b.reshape(b.concat(comps, len(full)), [n, len(comps)])     # (N, K)
    # updates: (B..., unit windows of components, E..., rest...) -> (N, rest...)
    ud = plan.ubatch + [plan.upos[d] for d in plan.perm[:len(comps)]
                        if d in plan.upos and d not in plan.expanded]
    ud += [plan.upos[d] for d in plan.expanded] + [plan.upos[d] for d in plan.rest if d in plan.upos]
    rest = [plan.size[d] for d in plan.rest]
    updates = b.reshape(b.transpose(upd, ud), [n] + rest)
    operand = b.reshape(x, plan.size) if plan.unit else x
    operand = b.transpose(operand, plan.perm)
    dump = False
    if valid is not None:
        valid = b.reshape(b.broadcast_dims(valid, I.make_tensor(full, i1()), list(range(nb))), [n])
        ident = _identity(op.regions[0], I.elem_of(x.type))
        keep_ix = b.broadcast_dims(valid, I.make_tensor([n, len(comps)], i1()), [0])
        if ident is not None:
            keep_u = b.broadcast_dims(valid, I.make_tensor([n] + rest, i1()), [0])
            updates = b.select(keep_u, updates, b.splat(ident, updates.type))
            index = b.select(keep_ix, index, b.splat(0, index.type))
        else:                            # a padding row at index size[0] takes them
            dump = True
            first = plan.size[plan.perm[0]]
            spare = b.concat([b.splat(first, I.make_tensor([n, 1], t))]
                             + ([b.splat(0, I.make_tensor([n, len(comps) - 1], t))] if len(comps) > 1 else []), 1)
            index = b.select(keep_ix, index, spare)
            rank = len(plan.perm)
            zero = b.reshape(b.slice(operand, [0] * rank, [1] * rank), [])
            operand = b.pad(operand, zero, [0] * rank, [1] + [0] * (rank - 1))
    k = len(comps)
    dn = SHD.get(update_window_dims=list(range(1, 1 + len(rest))), inserted_window_dims=list(range(k)),
                 input_batching_dims=[], scatter_indices_batching_dims=[],
                 scattered_dims_to_operand_dims=list(range(k)), index_vector_dim=1)
    new = b.create("stablehlo.scatter", [operand.type], [operand, index, updates],
                    {"scatter_dimension_numbers": dn, "indices_are_sorted": ir.BoolAttr.get(False),
                     "unique_indices": ir.BoolAttr.get(False)}, regions=1)
    move_region(op.regions[0], new.regions[0])
    out = new.results[0]
    if dump:
        shape = I.shape_of(out.type)
        out = b.slice(out, [0] * len(shape), [shape[0] - 1] + shape[1:])
    inverse = [plan.perm.index(d) for d in range(len(plan.perm))]
    out = b.transpose(out, inverse)
    return b.reshape(out, I.shape_of(x.type)) if plan.unit else out
