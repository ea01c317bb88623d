"""Accumulated gradients are completed once per step, not once per micro-batch.

With K micro-batches training.py prices every per-micro-batch op K times, the reshards of its
results included. For an accumulated value (a gradient, the loss sum: train_facts' `acc`)
whose op leaves a partial result (its reduction factor is sharded, e.g. over the data axes),
rhino-spmd-partition keeps the accumulator carry partial (partition/spmd/carry.py): the
collective that completes it (all_reduce, or reduce_scatter to a sharded target) runs once,
after the loop. `completions` is that collective's price per step, which the K-fold count
holds K - 1 times too often. Sums of bf16/f16 values (accumulated in f32, `wide`) are converted
before they are added, so the partitioner completes them in the body: they stay K times.
"""
from __future__ import annotations

from .evaluate import Cost, Evaluator
from ..spmd.strategy import Layout, Tensor, choose, partial_axes, steps


def completions(ev: Evaluator, acc, sh) -> Cost:
    """Collectives completing the partial results of the accumulated values `acc` ((value id,
    wide) as in train_facts.Facts.acc) under per-value shardings `sh`, once each."""
    g, mesh, out = ev.g, ev.mesh, Cost()
    t = lambda v: Tensor(tuple(g.shapes[v]), g.ebytes[v])  # noqa: E731
    seen = set()
    for v, wide in acc:
        p = g.producer[v]
        if wide or p < 0 or p in seen:
            continue
        seen.add(p)
        n = g.nodes[p]
        if n.rule is None or n.comb is None or n.kind in ("tie", "opaque"):
            continue
        res_sh = [sh[r] for r in n.results]
        for ops, count in n.bindings():
            layouts = [Layout(sh[o]) for o in ops]
            ops_t, res_t = [t(o) for o in ops], [t(r) for r in n.results]
            fsh = choose(n.rule, n.comb, res_sh, layouts, ops_t, res_t, mesh)
            if not partial_axes(n.rule, fsh):
                continue                                  # complete: resharded in the body
            result_steps = steps(n.rule, n.comb, fsh, res_sh, layouts, ops_t, res_t, mesh)[len(ops):]
            out.add(ev._comm(result_steps), n.trips * count)
    return out
