"""Accumulated gradients are completed once per step, not once per micro-batch.

With K micro-batches training.py prices every per-micro-batch op K times, the reshards of its
results included. For an accumulated value (a gradient, the loss sum: train_facts' `acc`)
whose op leaves a partial result (its reduction factor is sharded, e.g. over the data axes),
rhino-spmd-partition keeps the accumulator carry partial (partition/spmd/carry.py): the
collective that completes it (all_reduce, or reduce_scatter to a sharded target) runs once,
after the loop, in the carry's type (f32 for bf16/f16 sums, `wide`). `correction` is what
that changes in the K-fold price: + the completion once in the carry's type, - K completions
in the value's own type.
"""
from __future__ import annotations

from .evaluate import Cost, Evaluator
from ..spmd.strategy import Layout, Tensor, choose, partial_axes, steps


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
        if n.rule is None or n.comb is None or n.kind in ("tie", "opaque"):
            continue
        res_sh = [sh[r] for r in n.results]
        for ops, count in n.bindings():
            layouts = [Layout(sh[o]) for o in ops]
            ops_t = [Tensor(tuple(g.shapes[o]), g.ebytes[o]) for o in ops]
            fsh = choose(n.rule, n.comb, res_sh, layouts, ops_t, [_t(g, r) for r in n.results], mesh)
            if not partial_axes(n.rule, fsh):
                continue                                  # complete: resharded in the body
            for carried, times in ((False, -k), (wide, 1)):
                res_t = [_t(g, r, 4 if carried else None) for r in n.results]
                result_steps = steps(n.rule, n.comb, fsh, res_sh, layouts, ops_t, res_t, mesh)[len(ops):]
                out.add(ev._comm(result_steps), times * n.trips * count)
    return out


def _t(g, v, ebytes=None) -> Tensor:
    return Tensor(tuple(g.shapes[v]), ebytes or g.ebytes[v])
