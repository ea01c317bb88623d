"""Accumulated gradients are completed once per step, not once per micro-batch.

With K micro-batches training.py prices every per-micro-batch op K times, the reshards of its
results included. For an accumulated value (a gradient, the loss sum: train_facts' `acc`)
whose op leaves a partial result (its reduction factor is sharded, e.g. over the data axes),
rhino-spmd-partition keeps the accumulator carry partial (partition/spmd/carry.py): the
collective that completes it (all_reduce, or reduce_scatter to a sharded target) runs once,
after the loop, in the carry's type (f32 for bf16/f16 sums, `wide`). `correction` is what
that changes in the K-fold price: + the completion once in the carry's type, - K completions
in the value's own type. Such a carry has its contribution's sharding, not the plan's (a
ZeRO-2 gradient is carried whole): `carry_bytes` is what the carries take per device.
"""
from __future__ import annotations

from .evaluate import Cost, Evaluator
from ..spmd.strategy import Layout, Tensor, choose, partial_axes, steps
from ...sharding.factors import tensor_sharding


def correction(ev: Evaluator, acc, sh, k: int) -> Cost:
    """Cost to add to the K-fold price for the accumulated values `acc` ((value id, wide) as in
    train_facts.Facts.acc) under per-value shardings `sh` (negative times)."""
    g, mesh, out = ev.g, ev.mesh, Cost()
    seen = set()
    for v, wide in acc:
        p = g.producer[v]
        if p < 0 or p in seen:
            continue
        seen.add(p)
        n = g.nodes[p]
        for ops, count in n.bindings() if _priced(n) else ():
            kept = _partial(ev, n, ops, sh)
            if kept is None:
                continue                                  # complete: resharded in the body
            fsh, layouts, ops_t = kept
            res_sh = [sh[r] for r in n.results]
            for carried, times in ((False, -k), (wide, 1)):
                res_t = [_t(g, r, 4 if carried else None) for r in n.results]
                result_steps = steps(n.rule, n.comb, fsh, res_sh, layouts, ops_t, res_t, mesh)[len(ops):]
                out.add(ev._comm(result_steps), times * n.trips * count)
    return out


def carry_bytes(ev: Evaluator, acc, sh, lb) -> float:
    """Bytes per device of the accumulator carries of `acc` (f32 for `wide` sums): each at its
    contribution's sharding when kept partial, else at the plan's (`lb`: local bytes per value)."""
    g, total = ev.g, 0.0
    counts: dict = {}                 # the copies of a folded layer's gradient share a value id
    for x in acc:
        counts[x] = counts.get(x, 0) + 1
    for (v, wide), times in counts.items():
        b = float(lb[v])
        p = g.producer[v]
        n = g.nodes[p] if p >= 0 else None
        kept = _partial(ev, n, n.operands, sh) if n is not None and _priced(n) else None
        if kept is not None:
            dims = n.rule.results[n.results.index(v)]
            b = ev.local_bytes(ev.space.vkey[v], tensor_sharding(ev.mesh.name, dims, kept[0], ev.mesh))
        total += b * (2.0 if wide else 1.0) * times
    return total


def _priced(n) -> bool:
    return n.rule is not None and n.comb is not None and n.kind not in ("tie", "opaque")


def _partial(ev: Evaluator, n, ops, sh):
    """(factor sharding, operand layouts, operand tensors) of node `n` on operands `ops` when
    its result is partial (as strategy.choose decides for the partitioner), else None."""
    g = ev.g
    layouts = [Layout(sh[o]) for o in ops]
    ops_t = [_t(g, o) for o in ops]
    fsh = choose(n.rule, n.comb, [sh[r] for r in n.results], layouts, ops_t, [_t(g, r) for r in n.results], ev.mesh)
    return (fsh, layouts, ops_t) if partial_axes(n.rule, fsh) else None


def _t(g, v, ebytes=None) -> Tensor:
    return Tensor(tuple(g.shapes[v]), ebytes or g.ebytes[v])
