"""Recomputation and gradient accumulation as choices of a single-stage plan, and their price.

A training step's memory is mostly the activations its forward keeps for the backward.
Two ways trade time for them (DESIGN.md "Recomputation and accumulation"):
  recomputation  per layer group (partition/remat/plan.py): `selective` or `full` keep fewer
                 values and run their forward work again in the backward (rhino-remat);
  accumulation   K micro-batches of B/K rows in a loop, gradients summed in carries, the
                 update once (rhino-accumulate).
What the program allows is read once (train_facts.py); each candidate plan is then priced:
  time    the program at batch B/K (`scaled`: every value with a batch dim divided by K)
          priced by the planner's evaluator, its per-micro-batch ops K times and the rest
          (the update) once: what rhino-accumulate emits, except that partial gradients
          are completed once, after the loop (accumulate_price.py); recomputation adds
          the evaluator's price of the ops one layer of a group clones, times its
          layers, times K;
  memory  the memory model's live intervals (analysis/liveness.py) priced with the plan's
          local bytes at B/K (arguments whole), recomputation's interval changes as extra
          buffers, and the accumulators (f32 for bf16/f16 sums) live while batch-sized
          buffers are; the plan's memory is the larger of that liveness peak and XLA's sum
          (arguments + outputs - aliased + the temporaries' peak: XLA holds every result
          buffer for the whole step), as analysis/memory.py reports it, with results priced
          at @main's result shardings (a result computed sharded and returned replicated is
          the replicated output plus its shard, a temporary to the end).
The chosen plan is checked afterwards with the memory model on the rewritten program.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, replace

import numpy as np

from .accumulate_price import carry_bytes, correction
from .evaluate import Cost, Evaluator, Space
from .solve import Assignment
from .train_facts import POLICIES, Facts
from .train_memory import extrapolate, kept_at, outputs, windows, xla_temporaries

@dataclass
class Choice:
    """A candidate plan with K micro-batches and a policy per layer group, priced."""
    microbatches: int
    policies: dict                   # group -> policy
    cost: Cost
    memory: dict
    activation_bytes: float

    @property
    def time(self) -> float:
        return self.cost.time

    def remat(self, facts: Facts) -> list[dict]:
        return [{"group": lg.group, "layers": lg.layers, "policy": self.policies.get(lg.group, "none")}
                for lg in facts.groups]


# ----------------------------------------------------------------------------- scaled programs

def scaled(g, bdim: np.ndarray, k: int):
    """The searched graph at batch B/k: batch dims divided, FLOPs and bytes of the ops that
    touch them too (everything that touches the batch is linear in it)."""
    h = copy.copy(g)
    touched = bdim >= 0
    h.shapes = [s if d < 0 else s[:d] + [s[d] // k] + s[d + 1:] for s, d in zip(g.shapes, bdim.tolist())]
    nodes = []
    for n in g.nodes:
        if any(touched[v] for v in n.operands) or any(touched[v] for v in n.results):
            n = replace(n, flops=n.flops / k, bytes=float(sum(h.nbytes(v) for v in n.operands + n.results)))
        nodes.append(n)
    h.nodes = nodes
    return h


def dead_nodes(g) -> np.ndarray:
    """Nodes whose results nobody reads (an unused result of an inlined helper): a compiler
    removes them, so they cost nothing here."""
    outs = set(g.outputs)
    return np.array([bool(n.results) and n.kind != "tie" and all(not g.users[v] and v not in outs for v in n.results)
                     for n in g.nodes], dtype=bool)


def _micro_nodes(g, bdim: np.ndarray) -> np.ndarray:
    touched = bdim >= 0
    return np.array([any(touched[v] for v in n.operands) or any(touched[v] for v in n.results)
                     for n in g.nodes], dtype=bool)


class _Scale:
    """The searched program at one micro-batch count: space, micro ops, evaluators per mesh."""

    def __init__(self, space: Space, fx: Facts, k: int):
        self.k = k
        if k == 1:
            self.space = space
        else:
            self.space = Space(scaled(space.g, fx.bdim, k), space.dc)
        self.micro = _micro_nodes(self.space.g, fx.bdim)
        self.dead = dead_nodes(self.space.g)
        self.evs: dict = {}

    def evaluator(self, mesh, timer) -> Evaluator:
        key = (mesh.axes, id(timer))
        ev = self.evs.get(key)
        if ev is None:
            ev = self.evs[key] = Evaluator(self.space, mesh, timer)
        return ev


class _View:
    """Per-value shardings of an Assignment (sh[v]), for the per-node pricing calls."""

    def __init__(self, asg: Assignment, space: Space):
        self.asg, self.vkey = asg, space.vkey

    def __getitem__(self, v):
        return self.asg.key_sharding(self.vkey[v])


def _scale(space: Space, fx: Facts, k: int) -> _Scale:
    s = fx.cache.get(k)
    if s is None:
        s = fx.cache[k] = _Scale(space, fx, k)
    return s


def _shardings(cand, sc: _Scale):
    """(per-value shardings on the scaled space, Assignment or None)."""
    if cand.asg is not None:
        asg = Assignment(sc.space, cand.mesh, cand.asg.choice)
        return _View(asg, sc.space), asg
    return cand.sh, None


def _time(cand, sc: _Scale, ev: Evaluator, sh, asg) -> Cost:
    """Step time with K = sc.k micro-batches: per-micro-batch ops K times, the rest once."""
    out = Cost()
    if asg is not None:
        for t in sc.space.types:
            if not sc.dead[t.node.idx]:
                out.add(ev.type_cost(t, asg), t.count * (sc.k if sc.micro[t.node.idx] else 1))
    else:
        for n in sc.space.g.nodes:
            if not sc.dead[n.idx]:
                out.add(ev.total_values_of([n], sh), sc.k if sc.micro[n.idx] else 1)
    if cand.results is not None and asg is None:
        out.add(ev.outputs_cost(sh, cand.results))
    return out


def _local(ev: Evaluator, sc: _Scale, sh, asg) -> np.ndarray:
    sp = sc.space
    if asg is not None:
        per_key = np.array([ev.local_bytes(k, asg.key_sharding(k)) for k in range(len(sp.keys))], dtype=np.float64)
        return per_key[sp.vkey_arr]
    return np.array([ev.local_bytes(k, s) for k, s in zip(sp.vkey, sh)], dtype=np.float64)


@dataclass
class _Mem:
    """One candidate at one K, before recomputation: the memory side, on one program's walk
    (the whole program's, or each cut-short version's: Facts.parts)."""
    w: np.ndarray                    # local bytes per buffer of the liveness walk
    extra: tuple                     # accumulators as extra buffers (starts, ends, bytes)
    args: float
    outputs: float                   # at the result shardings, donated ones left out
    acc: float                       # extra's first row: the accumulators
    slots: tuple = ()                # (points where result buffers are written, their bytes)


@dataclass
class _Base:
    """One candidate at one K, before recomputation."""
    cost: Cost
    recompute: dict                  # group -> {policy: Cost of one layer's recomputation}
    mem: list                        # _Mem per walk: [the program's] or [4-copy, 6-copy]


def _base(cand, space: Space, fx: Facts, k: int, timer) -> _Base:
    sc = _scale(space, fx, k)
    ev = sc.evaluator(cand.mesh, timer)
    sh, asg = _shardings(cand, sc)
    base = getattr(cand, "base_cost", cand.cost)          # as the planner priced it (K = 1)
    cost = base if k == 1 and base is not None else _time(cand, sc, ev, sh, asg)
    if k > 1:                        # partial gradients are completed once, after the loop
        cost.add(correction(ev, fx.acc, sh, k))
    lb = _local(ev, sc, sh, asg)
    lb1 = None
    if k > 1:                        # arguments stay whole: the loop slices them
        sc1 = _scale(space, fx, 1)
        sh1, asg1 = _shardings(cand, sc1)
        lb1 = _local(sc1.evaluator(cand.mesh, timer), sc1, sh1, asg1)
    walks = fx.parts[:2] if fx.parts is not None else (fx,)
    mem = [_mem(cand, fp, k, ev, sh, lb, lb1) for fp in walks]
    rec = {}
    for lg in fx.groups:
        rec[lg.group] = {}
        for p in POLICIES:
            c = Cost()
            for n in lg.nodes[p]:
                node = sc.space.g.nodes[n]
                c.add(ev.total_values_of([node], sh), 1.0 / max(1, node.mult))
            rec[lg.group][p] = c
    return _Base(cost, rec, mem)


def _mem(cand, fx: Facts, k: int, ev: Evaluator, sh, lb: np.ndarray, lb1) -> _Mem:
    lv = fx.lv
    known = fx.buf >= 0
    w = np.where(known, lb[np.maximum(fx.buf, 0)], fx.gbytes).astype(np.int64)
    if k > 1:
        w[fx.buf_arg & known] = lb1[fx.buf[fx.buf_arg & known]]
    acc = 0.0
    if k > 1:                        # carries: the accumulators (what the loop passes through
        acc = carry_bytes(ev, fx.acc, sh, lb)     # unchanged is read in place: liveness.py)
    rs, re_, rb = _reshards(cand, fx)
    if k > 1:                        # those in the forward/backward are per micro-batch
        rb = np.where(rs <= fx.batch_end, rb // k, rb)
    extra = (np.concatenate([[0], rs]), np.concatenate([[fx.batch_end], re_]), np.concatenate([[int(acc)], rb]))
    args = float(w[fx.buf_arg].sum())
    outs, moved, slots = outputs(cand, lv, w, fx.result_of)
    if len(moved[0]):
        extra = tuple(np.concatenate([x, y]) for x, y in zip(extra, moved))
    return _Mem(w, extra, args, outs, acc, slots)


def _reshards(cand, fx: Facts) -> tuple:
    """(starts, ends, bytes) of the buffers the partitioner adds for `cand`'s shardings on
    `fx`'s walk, once."""
    seen = cand.__dict__.setdefault("reshards", {})
    got = seen.get(id(fx))
    if got is None:
        from .reshard_price import table
        sh = cand.asg.folded_shardings() if cand.asg is not None else cand.sh
        got = seen[id(fx)] = table(fx).rows(sh, cand.mesh)
    return got


def _choose(fx: Facts, b: _Base, k: int, policies: dict) -> Choice:
    cost = Cost()
    cost.add(b.cost)
    for lg in fx.groups:
        p = policies.get(lg.group, "none")
        if p != "none":
            cost.add(b.recompute[lg.group][p], lg.layers * k)
    if fx.parts is None:
        m = b.mem[0]
        prof, xla, acts = _profile(fx, m, policies)
        args, outs, acc = m.args, m.outputs, m.acc
    else:                            # the cut-short programs' memory, extrapolated point by point
        fa, fb, t, align = fx.parts
        (pa, xa, aa), (pb, xb, ab) = _profile(fa, b.mem[0], policies), _profile(fb, b.mem[1], policies)
        ma, mb = b.mem
        prof, xla = extrapolate(pa, pb[align], t), extrapolate(xa, xb[align], t)
        acts, args, outs, acc = (float(extrapolate(x, y, t)) for x, y in
                                 ((aa, ab), (ma.args, mb.args), (ma.outputs, mb.outputs), (ma.acc, mb.acc)))
    peak = max(float(prof.max(initial=0)), args + outs + float(xla.max(initial=0)))
    mem = {"peak": peak, "arguments": args, "outputs": outs,
           "temporaries": max(0.0, peak - args - outs), "activations": acts,
           "accumulators": acc}
    return Choice(k, dict(policies), cost, mem, acts)


def _profile(fx: Facts, m: _Mem, policies: dict) -> tuple:
    """(live bytes per point, XLA's temporaries per point, activations) on `fx`'s walk."""
    parts = []
    for lg in fx.groups:
        p = policies.get(lg.group, "none")
        if p != "none":
            bufs, starts, ends, signs = lg.windows[p]
            if len(bufs):
                parts.append((bufs, starts, ends, signs))
    extra = windows(parts, m.w) if parts else None
    acts = kept_at(fx, m.w, extra)
    if m.extra is not None:
        extra = m.extra if extra is None else tuple(np.concatenate([x, y]) for x, y in zip(extra, m.extra))
    return fx.lv.profile(m.w, extra=extra), xla_temporaries(fx.lv, m, extra), acts


def _policy_sets(fx: Facts, remat: str) -> list[dict]:
    gs = [lg.group for lg in fx.groups]
    if remat != "auto" or fx.training is not None:
        p = "none" if fx.training is not None else remat
        return [{g: p for g in gs}]
    if len(gs) <= 3:
        return [dict(zip(gs, ps)) for ps in itertools.product(POLICIES, repeat=len(gs))]
    return [{g: p for g in gs} for p in POLICIES]       # many groups: one policy for all


def _batch_ways(cand, fx: Facts) -> int:
    """Devices the batch is split over in `cand` (its data arguments' batch dim)."""
    from ...sharding import axes_size
    sh = cand.asg.folded_shardings() if cand.asg is not None else cand.sh
    ways = 1
    for v in fx.data:
        d = int(fx.bdim[v])
        if d >= 0 and d < len(sh[v].dims):
            ways = max(ways, axes_size(sh[v].dims[d], cand.mesh))
    return ways


def microbatch_counts(cand, fx: Facts, asked: int | None) -> list[int]:
    if asked is not None:
        return [asked]
    if fx.training is not None or not fx.batch:
        return [1]
    ways = _batch_ways(cand, fx)
    return [k for k in fx.divisors() if (fx.batch // k) % ways == 0 and k <= 64] or [1]


def best(cand, space: Space, fx: Facts, budget: float, timer, remat: str = "auto",
         microbatches: int | None = None, smallest_k: bool = False,
         bound: float = float("inf")) -> tuple[Choice | None, Choice]:
    """(fastest choice that fits `budget` or None, smallest-memory choice seen) for `cand`.
    K runs upwards: it stops at the first K with a fitting choice when `smallest_k`, and at
    a K whose step time before recomputation is already `bound` or more (a faster plan that
    fits is known)."""
    fit, small = None, None
    for k in microbatch_counts(cand, fx, microbatches):
        b = _base(cand, space, fx, k, timer)
        for ps in _policy_sets(fx, remat):
            c = _choose(fx, b, k, ps)
            if small is None or c.memory["peak"] < small.memory["peak"]:
                small = c
            if c.memory["peak"] <= budget and (fit is None or (c.time, c.memory["peak"]) < (fit.time, fit.memory["peak"])):
                fit = c
        if (fit is not None and smallest_k) or b.cost.time >= min(bound, fit.time if fit else bound):
            break
    return fit, small
