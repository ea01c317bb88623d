"""Pipelines searched jointly: stages, sub-mesh, micro-batches, in-stage plan and recomputation.

Like Alpa's inter-operator pass, but over the repeated layers of a training step: for every
stage count S (dividing the devices), tensor-parallel ways t inside a stage (within a node),
data-parallel ways d = N / (S t), examples per device per micro-batch m (so M = B / (m d)
micro-batches) and recomputation policy, the layers are split into S contiguous stages that
balance the 1F1B step under the memory budget, from per-layer costs of the single-stage
evaluator (layer_costs.py):
    stage time per micro-batch  T_s = l_s (fwd+bwd + recomputation) + glue + send/receive
    step (1F1B)                 sum_s T_s + (M - 1) max_s T_s + max_s (update + gradient all-reduce)
    memory of stage s           l_s (state + gradients) + min(S - s, M) micro-batches of kept
                                activations + one layer's (its backward) + the glue's
The split: the smallest bottleneck T such that every stage holds at most
min(memory cap, (T - glue) / per-layer) layers and they add up to L (exact for identical
layers). The Megatron-style 3-D baseline (TP within a node, PP across nodes, DP over the
rest, 1F1B, full recomputation, one example per device per micro-batch, the fewest stages
that fit) is one point of the same space, priced by the same model.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from ...analysis import cost
from ..search.train_facts import POLICIES
from .layer_costs import LayerCosts, costs, layer_runs


@dataclass
class JointPlan:
    stages: int
    tp: int
    dp: int
    microbatches: int
    micro_batch_per_device: int
    remat: str
    layers_per_stage: list
    stage_time_s: list                   # per micro-batch, forward + backward
    update_s: float
    step_time_s: float
    memory_per_stage: list
    fits: bool
    mfu: float = 0.0
    activation_bytes: float = 0.0       # per device, the fullest stage's micro-batches in flight
    schedule: str = "1f1b"
    name: str = "auto"

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"{self.stages} stage(s) x (tp {self.tp} x dp {self.dp}), {self.microbatches} micro-batch(es) "
                f"of {self.micro_batch_per_device}/device, remat {self.remat}, layers {self.layers_per_stage}: "
                f"step {self.step_time_s:.3f} s predicted, MFU {self.mfu:.1%}, memory per stage max "
                f"{max(self.memory_per_stage) / 2**30:.2f} GiB")


@dataclass
class Search:
    best: JointPlan | None
    baseline: JointPlan | None           # Megatron-style 3-D
    evaluated: int = 0
    seconds: float = 0.0
    candidates: list = field(default_factory=list)


def _split(L: int, S: int, a: float, glue: list[float], cap: list[int]) -> list[int] | None:
    """Layers per stage minimizing max_s (l_s a + glue_s), 1 <= l_s <= cap_s, sum = L."""
    if any(c < 1 for c in cap) or sum(cap) < L or L < S:
        return None
    ts = sorted({l * a + gs for s, gs in enumerate(glue) for l in range(1, cap[s] + 1)})
    lo, hi = 0, len(ts) - 1

    def take(T):
        return [min(cap[s], int((T - glue[s]) / a + 1e-9)) if a > 0 else cap[s] for s in range(S)]
    while lo < hi:
        mid = (lo + hi) // 2
        ls = take(ts[mid])
        if min(ls) >= 1 and sum(ls) >= L:
            hi = mid
        else:
            lo = mid + 1
    ls = take(ts[lo])
    if min(ls) < 1 or sum(ls) < L:
        return None
    over = sum(ls) - L
    for s in sorted(range(S), key=lambda s: -(ls[s] * a + glue[s])):
        cut = min(over, ls[s] - 1)
        ls[s] -= cut
        over -= cut
    return ls


class _Model:
    def __init__(self, space, fx, ro, timer, cluster, budget: float):
        self.space, self.fx, self.ro, self.timer = space, fx, ro, timer
        self.cluster, self.budget = cluster, budget
        self.L, _ = layer_runs(space.g)
        self.N = cluster.num_devices
        self.per_node = cluster.devices_per_node
        self.cache: dict = {}
        g = space.g
        self.flops = float(sum(n.flops * n.mult * n.trips for n in g.nodes))
        dtype = next((g.dtypes[a] for a in g.args if g.dtypes[a].startswith(("f", "bf"))), "f32")
        self.peak = timer.profile.peak(dtype)

    def layer(self, t: int, m: int) -> LayerCosts:
        key = (t, m)
        if key not in self.cache:
            self.cache[key] = costs(self.space, self.fx, self.ro, self.timer, t, m)
        return self.cache[key]

    def link(self, span: int):
        """The link a group spanning `span` consecutive devices runs at."""
        if span > self.per_node:
            return self.cluster.inter_link
        return self.cluster.intra_link(self.cluster.group_of(0))

    def plan(self, S: int, t: int, m: int, pol: str, name: str = "auto") -> JointPlan | None:
        fx, L = self.fx, self.L
        n = self.N // S
        d = n // t
        if m * d == 0 or fx.batch % (m * d):
            return None
        M = fx.batch // (m * d)
        c = self.layer(t, m)
        per = c.layer_fb + c.layer_rec[pol]
        hop = self.link(n + 1 if n < self.per_node else self.per_node + 1)
        send = 2 * (fx.boundary * m / t / hop.bandwidth + hop.latency) if S > 1 else 0.0
        glue = [send + (c.glue_first if s == 0 else 0.0) + (c.glue_last if s == S - 1 else 0.0) for s in range(S)]
        cap, fixed = [], []
        for s in range(S):
            inflight = min(S - s, M)
            f = c.act_layer["none"]                       # the layer in its backward
            if s == 0:
                f += c.state_glue + c.grad_glue + inflight * c.act_first
            if s == S - 1:
                f += (c.state_glue + c.grad_glue if S > 1 else 0.0) + c.act_last
            each = c.state_layer + c.grad_layer + inflight * c.act_layer[pol]
            fixed.append(f)
            cap.append(min(L, int((self.budget - f) // each)) if each > 0 else L)
        ls = _split(L, S, per, glue, cap)
        fits = ls is not None
        if ls is None:                                    # how much it would need: equal split
            ls = [L // S + (1 if s < L % S else 0) for s in range(S)]
            if min(ls) < 1:
                return None
        ts = [ls[s] * per + glue[s] for s in range(S)]
        mem = [fixed[s] + ls[s] * (c.state_layer + c.grad_layer + min(S - s, M) * c.act_layer[pol]) for s in range(S)]
        dp_link = self.link(n)                            # replicas of a stage, t apart
        upd = max(ls[s] * c.layer_upd + (c.glue_upd if s in (0, S - 1) else 0.0)
                  + (cost.collective_time("all_reduce", ls[s] * c.grad_layer + (c.grad_glue if s in (0, S - 1) else 0),
                                          d, dp_link) if d > 1 else 0.0) for s in range(S))
        step = sum(ts) + (M - 1) * max(ts) + upd
        mfu = self.flops / (step * self.N * self.peak) if step > 0 else 0.0
        acts = max(min(S - s, M) * (ls[s] * c.act_layer[pol] + (c.act_first if s == 0 else 0.0))
                   + (c.act_last if s == S - 1 else 0.0) for s in range(S))
        return JointPlan(S, t, d, M, m, pol, ls, ts, upd, step, [int(x) for x in mem], fits, mfu, acts, name=name)


def _tps(n: int, per_node: int) -> list[int]:
    return [t for t in (1, 2, 4, 8, 16) if t <= min(n, per_node) and n % t == 0]


def search(space, fx, ro, timer, cluster, budget: float, stages: int | None = None,
           remat: str = "auto", microbatch_sizes=(1, 2, 4, 8)) -> Search:
    """The fastest pipeline that fits (stage counts >= 2, or `stages`), and the Megatron-style
    3-D baseline, for a training step whose searched graph has repeated layers."""
    t0 = time.perf_counter()
    model = _Model(space, fx, ro, timer, cluster, budget)
    L, N = model.L, model.N
    out = Search(None, None)
    if L < 2 or fx.training is not None or not fx.batch:
        return out
    pols = POLICIES if remat == "auto" else (remat,)
    counts = [stages] if stages else [S for S in range(2, min(L, N) + 1) if N % S == 0]
    ms = [m for m in microbatch_sizes if fx.batch % m == 0]
    for S in counts:
        n = N // S
        for t in _tps(n, model.per_node):
            for m in ms:
                for pol in pols:
                    p = model.plan(S, t, m, pol)
                    out.evaluated += p is not None
                    if p is not None and p.fits and (out.best is None or p.step_time_s < out.best.step_time_s):
                        out.best = p
    out.baseline = megatron_3d(model)
    out.seconds = time.perf_counter() - t0
    return out


def megatron_3d(model: _Model) -> JointPlan | None:
    """TP = a node's devices, PP over nodes (the fewest stages that fit), DP over the rest,
    1F1B, full recomputation, one example per device per micro-batch."""
    nodes = max(1, model.N // model.per_node)
    t = max(_tps(model.per_node, model.per_node) or [1])
    last = None
    for S in [s for s in range(2, min(nodes, model.L) + 1) if nodes % s == 0]:
        p = model.plan(S, t, 1, "full", name="megatron-3d")
        if p is None:
            continue
        last = p
        if p.fits:
            return p
    return last

