"""stablehlo.select_and_scatter -> strided slices, the select region, one scatter.

IREE 3.13 has no lowering for select_and_scatter ("failed to legalize operation"), and it
is the max-pool gradient of every CNN train step. The rewrite unrolls the window: it has
P = prod(window_dimensions) positions, and position p (offset `off`) of every window is one
strided slice of the padded operand, V_p = xp[off + o*stride] over the window grid O
(the source's shape).

Selection, exactly as the spec's reference interpreter and XLA fold a window in row-major
order: the first valid element is selected; a later valid element e replaces the
selection s when select(s, e) is false. With `GE` that keeps the first of equal maxima,
with `GT` the last. Elements in the op's padding are never selected; a window of padding
only selects nothing and its source value is dropped. (Measured: XLA CPU picks another of
equal values when a non-leading dim has low padding; JAX never emits that padding, it
pads with -inf itself.)

Scatter: the chosen position p of window o is operand element o*stride + offset(p) - lo;
one stablehlo.scatter with the source as updates and the op's scatter region as
combiner, onto init broadcast to the operand, legalized like any scatter (scatter.py).
Its updates run in window order, as XLA's loop does, so an element chosen by several
overlapping windows sums them in the same order (same bits).
"""
from __future__ import annotations

import itertools
import math

from ... import ir as I
from ...ir import ir
from . import scatter
from .builder import Builder, elementwise, i1, move_region, static

# windows with more positions unroll into too much IR; they stay for IREE to refuse
MAX_POSITIONS = 512


def _ints(op, name: str, default: list[int]) -> list[int]:
    return list(ir.DenseI64ArrayAttr(op.attributes[name])) if name in op.attributes else default


def _padding(op, rank: int) -> tuple[list[int], list[int]]:
    if "padding" not in op.attributes:
        return [0] * rank, [0] * rank
    flat = [int(v) for v in ir.DenseIntElementsAttr(op.attributes["padding"])]
    return flat[0::2], flat[1::2]


def _inside(b: Builder, off, grid, strides, lo, size):
    """i1 over the window grid: position `off` of the window lies in the operand, not its
    padding; None where that holds everywhere. One constant per padded dimension."""
    mask = None
    for d, (o, n, s, l, m) in enumerate(zip(off, grid, strides, lo, size)):
        row = [l <= o + k * s < l + m for k in range(n)]
        if all(row):
            continue
        text = ", ".join("true" if v else "false" for v in row)
        vec = b.constant(f"dense<[{text}]> : tensor<{n}xi1>")
        mask = b.both(mask, b.broadcast_dims(vec, I.make_tensor(grid, i1()), [d]))
    return mask


def rewrite(op, b: Builder) -> str | None:
    """Replace `op`; or say why it stays (then IREE refuses it)."""
    x, src, init = op.operands
    if not static(x, src, init):
        return "dynamic shapes"
    size, grid = I.shape_of(x.type), I.shape_of(src.type)
    rank = len(size)
    window = _ints(op, "window_dimensions", [1] * rank)
    strides = _ints(op, "window_strides", [1] * rank)
    lo, hi = _padding(op, rank)
    npos = math.prod(window)
    if npos > MAX_POSITIONS:
        return f"{npos} window positions (at most {MAX_POSITIONS} are unrolled)"
    if not all(elementwise(r) for r in op.regions):
        return "its select or scatter region is not elementwise"
    if 0 in grid or 0 in size:              # no window: every element is the init value
        result = b.broadcast(init, x.type)
    else:
        result = _unrolled(op, b, x, src, init, size, grid, window, strides, lo, hi)
    op.results[0].replace_all_uses_with(result)
    op.erase()
    return None


def _unrolled(op, b, x, src, init, size, grid, window, strides, lo, hi):
    xp = b.pad(x, init, lo, hi)
    positions = list(itertools.product(*[range(w) for w in window]))      # row-major
    i32 = ir.IntegerType.get_signless(32)
    idx_t = I.make_tensor(grid, i32)
    sel = idx = has = None            # selected value, its position, "something selected"
    for p, off in enumerate(positions):
        lim = [o + (n - 1) * s + 1 for o, n, s in zip(off, grid, strides)]
        v = b.slice(xp, list(off), lim, strides)                          # (O...)
        ok = _inside(b, off, grid, strides, lo, size)
        if sel is None:
            sel, idx, has = v, b.splat(p, idx_t), ok
            continue
        keep = b.apply_region(op.regions[0], [sel, v], grid)[0]
        take = b.negation(keep)
        if has is not None:               # nothing selected yet: the first valid one wins
            take = b.either(take, b.negation(has))
        take = b.both(take, ok)
        sel = b.select(take, v, sel)
        idx = b.select(take, b.splat(p, idx_t), idx)
        has = None if has is None or ok is None else b.either(has, ok)
    # operand coordinates of the selected element: window start + offset of position idx
    coords, inner = [], math.prod(window)
    for d, (w, s, l) in enumerate(zip(window, strides, lo)):
        inner //= w
        c = b.op("stablehlo.multiply", idx_t, [b.iota(grid, d, i32), b.splat(s, idx_t)])
        if w > 1:                         # (idx / prod(window[d+1:])) % window[d]
            off = b.op("stablehlo.divide", idx_t, [idx, b.splat(inner, idx_t)])
            off = b.op("stablehlo.remainder", idx_t, [off, b.splat(w, idx_t)])
            c = b.op("stablehlo.add", idx_t, [c, off])
        if l:
            c = b.op("stablehlo.subtract", idx_t, [c, b.splat(l, idx_t)])
        if has is not None:               # nothing selected: out of bounds, skipped
            c = b.select(has, c, b.splat(-1, idx_t))
        coords.append(b.reshape(c, grid + [1]))
    index = b.concat(coords, len(grid))                                   # (O..., R)
    rank = len(size)
    dn = I.stablehlo.ScatterDimensionNumbers.get(
        update_window_dims=[], inserted_window_dims=list(range(rank)), input_batching_dims=[],
        scatter_indices_batching_dims=[], scattered_dims_to_operand_dims=list(range(rank)),
        index_vector_dim=rank)
    new = b.create("stablehlo.scatter", [x.type], [b.broadcast(init, x.type), index, src],
                   {"scatter_dimension_numbers": dn, "indices_are_sorted": ir.BoolAttr.get(False),
                    "unique_indices": ir.BoolAttr.get(False)}, regions=1)
    move_region(op.regions[1], new.regions[0])
    # the canonical scatter IREE converts; only windows of padding only are out of bounds
    value, why = scatter.replacement(new, b.at(new), in_bounds=has is None)
    assert value is not None, why
    new.erase()
    # measured on keras-hub's ResNet stem: IREE fused the consumers into this scatter's
    # dispatch and kept the whole (2, 10, 10, 64) result on the stack ("exceeded stack
    # allocation limit of 32768 bytes"); behind a barrier it is a buffer of its own
    return b.op("stablehlo.optimization_barrier", value.type, [value])
