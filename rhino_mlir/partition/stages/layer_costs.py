"""Per-layer time and memory of a training step under one in-stage configuration.

The joint pipeline search (joint.py) splits the repeated layers of a training step into
stages; what it needs per layer comes from the single-stage planner's evaluator on the
searched (folded) graph (partition/search/evaluate.py), at one in-stage configuration:
    t   tensor-parallel ways inside the stage (the Megatron seed of planner.py on a 1-D
        mesh of t devices of one node), and
    m   examples per device in one micro-batch (the program scaled to batch m, as
        partition/search/training.py scales it for accumulation).
Data parallelism inside a stage (d ways) only adds the gradient all-reduce once per step,
which joint.py prices itself. A node of the folded graph belongs to a layer when it lies
in a run (analysis/fold.py) with one copy per layer; the rest is glue: before the first
layer or after the last one in the program (the embedding, its backward) goes to the
first stage, between them (the head, the loss) to the last.
Memory is the memory model's (train_facts.py: live intervals of the program, priced with
the configuration's local bytes): a layer's state (parameters and optimizer state, twice
unless donated), its gradients, and the activations it keeps at the point where the
backward starts under each recomputation policy (its group's interval changes applied).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...sharding import Mesh
from ..search import training as T
from ..search.solve import Assignment
from ..search.train_facts import POLICIES


@dataclass
class LayerCosts:
    t: int
    m: int
    layer_fb: float = 0.0            # s per micro-batch per layer: forward + backward
    layer_upd: float = 0.0           # s per step per layer: its update
    layer_rec: dict = field(default_factory=dict)    # policy -> s per micro-batch per layer
    glue_first: float = 0.0          # s per micro-batch (first stage)
    glue_last: float = 0.0           # s per micro-batch (last stage)
    glue_upd: float = 0.0            # s per step
    state_layer: float = 0.0         # bytes per device: parameters + optimizer state (+ new copies)
    state_glue: float = 0.0
    grad_layer: float = 0.0          # bytes per device of one layer's gradients
    grad_glue: float = 0.0
    act_layer: dict = field(default_factory=dict)    # policy -> bytes kept per micro-batch per layer
    act_first: float = 0.0           # glue activations kept per micro-batch (first stage)
    act_last: float = 0.0            # (last stage: the head's, the loss')


def layer_runs(g) -> tuple[int, list]:
    """(layer count L, runs of the folded graph with L copies)."""
    runs = list(g.fold.runs) if g.fold is not None else []
    if not runs:
        return 0, []
    L = max(r.run.copies for r in runs)
    return L, [r for r in runs if r.run.copies == L]


def costs(space, fx, ro, timer, t: int, m: int) -> LayerCosts:
    """LayerCosts at t tensor-parallel ways and m examples per device per micro-batch."""
    from ..search.planner import seeds
    g, dc = space.g, space.dc
    L, runs = layer_runs(g)
    k = fx.batch // m
    sc = T._scale(space, fx, k)
    mesh = Mesh("mesh", (("y", t),))
    choice = seeds(mesh, ro, dc)["megatron" if t > 1 else "replicated"]
    asg = Assignment(sc.space, mesh, choice)
    ev = sc.evaluator(mesh, timer)
    view = T._View(asg, sc.space)
    in_layer = np.zeros(len(g.nodes), dtype=bool)
    layer_vals = np.zeros(len(g.values), dtype=bool)
    for r in runs:
        in_layer[r.nodes[0]:r.nodes[1]] = True
        layer_vals[r.values[0]:r.values[1]] = True
    micro = sc.micro
    lo = min((r.nodes[0] for r in runs if micro[r.nodes[0]:r.nodes[1]].any()), default=0)
    hi = max((r.nodes[1] for r in runs if micro[r.nodes[0]:r.nodes[1]].any()), default=0)
    out = LayerCosts(t, m)
    for tp in sc.space.types:
        n = tp.node
        if sc.dead[n.idx]:
            continue
        c = ev.type_cost(tp, asg).time * tp.count
        if in_layer[n.idx]:
            if micro[n.idx]:
                out.layer_fb += c / L
            else:
                out.layer_upd += c / L
        elif micro[n.idx]:
            if lo <= n.idx < hi:
                out.glue_last += c
            else:
                out.glue_first += c
        else:
            out.glue_upd += c
    big = max(fx.groups, key=lambda lg: lg.layers, default=None)
    for p in POLICIES:
        rec = 0.0
        if big is not None:
            for i in big.nodes[p]:
                node = sc.space.g.nodes[i]
                rec += ev.total_values_of([node], view).time / max(1, node.mult)
        out.layer_rec[p] = rec
    lb = T._local(ev, sc, view, asg)
    mult = np.asarray(g.mult or [1] * len(g.values), dtype=np.float64)
    args = np.array(sorted(set(g.args)), dtype=np.int64)
    state = lb[args] * mult[args]
    donated = bool((fx.lv if fx.parts is None else fx.parts[1].lv).aliases)
    per_layer = layer_vals[args] | (mult[args] == L)
    out.state_layer = float(state[per_layer].sum()) / max(1, L) * (1 if donated else 2)
    out.state_glue = float(state[~per_layer].sum()) * (1 if donated else 2)
    for v, wide in fx.acc:                        # one entry per program value (copies repeat)
        b = lb[v] * (2.0 if wide else 1.0)
        if mult[v] == L and L > 1:
            out.grad_layer += b / L
        else:
            out.grad_glue += b
    if fx.parts is None:
        per, out.act_first, out.act_last = _kept(fx, lb, layer_vals, g, lo)
    else:                            # from the 4- and 6-copy programs (train_fold.py)
        fa, fb, t, _ = fx.parts
        ka, kb = _kept(fa, lb, layer_vals, g, lo), _kept(fb, lb, layer_vals, g, lo)
        x = lambda a, b: a + t * (b - a)  # noqa: E731      (local bytes may be fractional: no rounding)
        per = {pol: x(ka[0][pol], kb[0][pol]) for pol in POLICIES}
        out.act_first, out.act_last = x(ka[1], kb[1]), x(ka[2], kb[2])
    out.act_layer = {pol: b / max(1, L) for pol, b in per.items()}
    return out


def _kept(fx, lb, layer_vals, g, lo: int) -> tuple[dict, float, float]:
    """Bytes kept where the backward starts on `fx`'s walk: in all layers under each policy,
    and the glue's before the first layer and after it."""
    big = max(fx.groups, key=lambda lg: lg.layers, default=None)
    lv, p = fx.lv, fx.loss_point
    known = fx.buf >= 0
    w = np.where(known, lb[np.maximum(fx.buf, 0)], fx.gbytes).astype(np.float64)
    live = fx.buf_batch & (lv.start <= p) & (lv.end >= p)
    in_layer = known & layer_vals[np.maximum(fx.buf, 0)]
    base = float(w[live & in_layer].sum())
    per = {}
    for pol in POLICIES:
        extra = 0.0
        if big is not None and pol != "none":
            bufs, s, e, sign = big.windows[pol]
            cover = (s <= p) & (e >= p)
            extra = float((sign[cover] * w[bufs[cover]]).sum())
        per[pol] = max(0.0, base + extra)
    glue = live & ~in_layer
    producer = np.array([g.producer[v] if v >= 0 else -1 for v in fx.buf.tolist()], dtype=np.int64)
    first = glue & (producer >= 0) & (producer < lo)
    return per, float(w[first].sum()), float(w[glue & ~first].sum())
