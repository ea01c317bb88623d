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
Recomputation is chosen per stage: stage 0 keeps S micro-batches of activations in flight,
the last stage one, so early stages need recomputation where late ones do not. The split:
the smallest bottleneck T at which every stage, under the policy that lets it hold the most
layers within min(memory cap(policy), (T - glue) / per-layer(policy)), holds enough layers
for all L (exact for identical layers); surplus layers come off where they cost most and
each stage then runs its fastest policy that fits (`_choose`). `--remat P` forces P on every
stage; auto also tries each policy on every stage (the same bottleneck, sometimes a smaller
fill-and-drain sum). The Megatron-style 3-D baseline (TP within a node, PP across nodes, DP
over the rest, 1F1B, full recomputation everywhere, one example per device per micro-batch,
the fewest stages that fit) is one point of the same space, priced by the same model.

Sub-meshes: every stage gets N/S devices, so a stage boundary is one send per device of
G/(N/S) examples' activations (G examples per micro-batch) whatever each stage's t. With
`sub_meshes=True` each stage also picks its own t (m = G t / (N/S) examples per device) as
one more option of the same split. Measured (identical layers, this cost model): the GPT-3
175B shape on 128x8xH100 never gains from it (budgets 32 to 120 GiB: every stage keeps the
same t); the 16-layer test GPT (d 64) on 4x8 CPU-profile devices gains 5-30% at 10-12% of
its unconstrained memory, where stage 0 takes a wider t instead of fewer layers. It stays off by default because the pipeline compile
path (launch/build/pipelined.py) builds one mesh shape for all stages (JointPlan.tp, dp);
`tp_per_stage` carries each stage's t when it is on.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import asdict, dataclass, field

import numpy as np

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
    remat: str                           # "none" | "selective" | "full" when every stage agrees, else "mixed"
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
    remat_per_stage: list = field(default_factory=list)   # the repeated layers' policy, one per stage
    tp_per_stage: list = field(default_factory=list)      # t of each stage's (N/S/t x t) sub-mesh; tp: stage 0's

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        pol = self.remat if self.remat != "mixed" else "per stage " + "/".join(_short(self.remat_per_stage))
        return (f"{self.stages} stage(s) x (tp {self.tp} x dp {self.dp}), {self.microbatches} micro-batch(es) "
                f"of {self.micro_batch_per_device}/device, remat {pol}, layers {self.layers_per_stage}: "
                f"step {self.step_time_s:.3f} s predicted, MFU {self.mfu:.1%}, memory per stage max "
                f"{max(self.memory_per_stage) / 2**30:.2f} GiB")


def _short(pols: list[str]) -> list[str]:
    """Runs of equal policies as `policy xN` (96 stages stay one line)."""
    out, i = [], 0
    while i < len(pols):
        j = i
        while j < len(pols) and pols[j] == pols[i]:
            j += 1
        out.append(pols[i] + (f" x{j - i}" if j - i > 1 else ""))
        i = j
    return out


def summary_policy(pols: list[str]) -> str:
    return pols[0] if pols and all(p == pols[0] for p in pols) else "mixed"


@dataclass
class Search:
    best: JointPlan | None
    baseline: JointPlan | None           # Megatron-style 3-D
    evaluated: int = 0
    seconds: float = 0.0
    candidates: list = field(default_factory=list)


def _split(L: int, S: int, a: float, glue: list[float], cap: list[int]) -> list[int] | None:
    """Layers per stage minimizing max_s (l_s a + glue_s), 1 <= l_s <= cap_s, sum = L."""
    r = _choose(L, [[(a, glue[s], cap[s])] for s in range(S)])
    return None if r is None else r[0]


def _choose(L: int, options: list[list[tuple]]) -> tuple[list[int], list[int]] | None:
    """(layers per stage, the option each stage runs) minimizing the bottleneck
    max_s (l_s a + g) when stage s may run any of its options (a: time per layer, g: its fixed
    time, c: the most layers its memory holds), 1 <= l_s <= c, sum = L.

    At a bottleneck T stage s holds k_s(T) = max over options of min(c, (T - g) / a) layers,
    which only grows with T, so the smallest feasible T (sum k_s >= L) is found by bisection
    over the values l a + g; then layers come off where they cost most until the sum is L,
    and each stage takes its fastest option that holds what it kept (exact for the bottleneck)."""
    S = len(options)
    if L < S or S == 0:
        return None
    W = max(len(o) for o in options)
    A, G = np.ones((S, W)), np.zeros((S, W))          # a missing option holds no layer
    C = np.zeros((S, W), dtype=np.int64)
    for s, opts in enumerate(options):
        for i, (a, g, c) in enumerate(opts):
            A[s, i], G[s, i], C[s, i] = max(a, 1e-30), g, min(max(c, 0), L - S + 1)
    most = C.max(axis=1)
    if most.min() < 1 or most.sum() < L:
        return None
    ls_ = np.arange(1, int(most.max()) + 1, dtype=np.float64)
    fits = ls_[None, None, :] <= C[:, :, None]
    vals = ls_[None, None, :] * A[:, :, None] + G[:, :, None]       # (S, W, l)
    ts = np.unique(vals[fits])
    F = np.where(fits, vals, np.inf).min(axis=1)                     # (S, l): the fastest option holding l

    def take(T):
        k = np.minimum(C, np.floor((T - G) / A + 1e-9))
        return np.maximum(k, 0).max(axis=1).astype(np.int64)
    lo, hi = 0, len(ts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        ks = take(ts[mid])
        if ks.min() >= 1 and ks.sum() >= L:
            hi = mid
        else:
            lo = mid + 1
    ls = take(ts[lo]).tolist()
    if min(ls) < 1 or sum(ls) < L:
        return None
    # drop the surplus where a layer costs most (then from the slowest stage): the bottleneck
    # only falls, and the sum of stage times (the 1F1B fill and drain) with it
    heap = [(-(F[s, l - 1] - F[s, l - 2]), -F[s, l - 1], s) for s, l in enumerate(ls) if l > 1]
    heapq.heapify(heap)
    for _ in range(sum(ls) - L):
        _, _, s = heapq.heappop(heap)
        ls[s] -= 1
        l = ls[s]
        if l > 1:
            heapq.heappush(heap, (-(F[s, l - 1] - F[s, l - 2]), -F[s, l - 1], s))
    pick = []
    for s, l in enumerate(ls):
        ok = [i for i in range(W) if C[s, i] >= l]
        pick.append(min(ok, key=lambda i: (l * A[s, i] + G[s, i], A[s, i])))
    return ls, pick


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

    def plan(self, S: int, t: int, m: int, pols, name: str = "auto") -> JointPlan | None:
        """S stages of (dp x tp t), m examples per device per micro-batch; `pols`: one policy
        for every stage, or several that each stage chooses from."""
        d = (self.N // S) // t
        return self.plan_meshes(S, m * d, [t], pols, name)

    def plan_meshes(self, S: int, G: int, tps: list[int], pols, name: str = "auto") -> JointPlan | None:
        """S stages of N/S devices each, G examples per micro-batch; each stage runs as
        (N/S/t x t) for one t of `tps` (m = G t / (N/S) examples per device) and one policy of
        `pols`. The stage boundary carries G/(N/S) examples' activations per device whatever t."""
        fx, L = self.fx, self.L
        pols = (pols,) if isinstance(pols, str) else tuple(pols)
        n = self.N // S
        if G < 1 or fx.batch % G:
            return None
        M = fx.batch // G
        cfg = []                                          # (t, d, m, costs)
        for t in tps:
            if n % t or (G * t) % n or G * t < n:
                continue
            m = G * t // n
            cfg.append((t, n // t, m, self.layer(t, m)))
        if not cfg:
            return None
        hop = self.link(n + 1 if n < self.per_node else self.per_node + 1)
        send = 2 * (fx.boundary * G / n / hop.bandwidth + hop.latency) if S > 1 else 0.0
        keys, opts, glue, fixed = [], [], [], []
        for s in range(S):
            inflight = min(S - s, M)
            row, gs, fs = [], [], []
            for ci, (t, d, m, c) in enumerate(cfg):
                g = send + (c.glue_first if s == 0 else 0.0) + (c.glue_last if s == S - 1 else 0.0)
                f = c.act_layer["none"]                   # the layer in its backward
                if s == 0:
                    f += c.state_glue + c.grad_glue + inflight * c.act_first
                if s == S - 1:
                    f += (c.state_glue + c.grad_glue if S > 1 else 0.0) + c.act_last
                for pol in pols:
                    each = c.state_layer + c.grad_layer + inflight * c.act_layer[pol]
                    cap = min(L, int((self.budget - f) // each)) if each > 0 else L
                    row.append((c.layer_fb + c.layer_rec[pol], g, cap))
                    gs.append(g)
                    fs.append(f)
                    if s == 0:
                        keys.append((ci, pol))
            opts.append(row)
            glue.append(gs)
            fixed.append(fs)
        r = _choose(L, opts)
        fits = r is not None
        if r is None:                                     # how much it would need: equal split, least memory
            ls = [L // S + (1 if s < L % S else 0) for s in range(S)]
            if min(ls) < 1:
                return None
            pick = [max(range(len(row)), key=lambda i: (row[i][2], -row[i][0])) for row in opts]
        else:
            ls, pick = r
        st = [cfg[keys[i][0]] for i in pick]              # each stage's (t, d, m, costs)
        chosen = [keys[i][1] for i in pick]
        inflight = [min(S - s, M) for s in range(S)]
        ts = [ls[s] * opts[s][pick[s]][0] + glue[s][pick[s]] for s in range(S)]
        mem = [fixed[s][pick[s]] + ls[s] * (st[s][3].state_layer + st[s][3].grad_layer
                                            + inflight[s] * st[s][3].act_layer[chosen[s]]) for s in range(S)]
        dp_link = self.link(n)                            # replicas of a stage, t apart
        upd = 0.0
        for s, (t, d, m, c) in enumerate(st):
            ends = s in (0, S - 1)
            ar = (cost.collective_time("all_reduce", ls[s] * c.grad_layer + (c.grad_glue if ends else 0), d, dp_link)
                  if d > 1 else 0.0)
            upd = max(upd, ls[s] * c.layer_upd + (c.glue_upd if ends else 0.0) + ar)
        step = sum(ts) + (M - 1) * max(ts) + upd
        mfu = self.flops / (step * self.N * self.peak) if step > 0 else 0.0
        acts = max(inflight[s] * (ls[s] * c.act_layer[chosen[s]] + (c.act_first if s == 0 else 0.0))
                   + (c.act_last if s == S - 1 else 0.0) for s, (_, _, _, c) in enumerate(st))
        t, d, m, _ = st[0]
        return JointPlan(S, t, d, M, m, summary_policy(chosen), ls, [float(x) for x in ts], float(upd), float(step),
                         [int(round(x)) for x in mem], fits, float(mfu), float(acts), name=name, remat_per_stage=chosen,
                         tp_per_stage=[x[0] for x in st])


def _tps(n: int, per_node: int) -> list[int]:
    return [t for t in (1, 2, 4, 8, 16) if t <= min(n, per_node) and n % t == 0]


def search(space, fx, ro, timer, cluster, budget: float, stages: int | None = None,
           remat: str = "auto", microbatch_sizes=(1, 2, 4, 8), sub_meshes: bool = False) -> Search:
    """The fastest pipeline that fits (stage counts >= 2, or `stages`), and the Megatron-style
    3-D baseline, for a training step whose searched graph has repeated layers.
    `sub_meshes`: also let each stage choose its tensor-parallel ways (module docstring)."""
    t0 = time.perf_counter()
    model = _Model(space, fx, ro, timer, cluster, budget)
    L, N = model.L, model.N
    out = Search(None, None)
    if L < 2 or fx.training is not None or not fx.batch:
        return out
    # auto: each policy everywhere, and each stage its own (the uniform ones stay in: dropping
    # layers where they cost most need not give the least total time, only the least bottleneck)
    choices = [*POLICIES, POLICIES] if remat == "auto" else [remat]
    counts = [stages] if stages else [S for S in range(2, min(L, N) + 1) if N % S == 0]
    ms = [m for m in microbatch_sizes if fx.batch % m == 0]
    for S in counts:
        n = N // S
        for t in _tps(n, model.per_node):
            for m in ms:
                for pol in choices:
                    p = model.plan(S, t, m, pol)
                    out.evaluated += p is not None
                    if p is not None and p.fits and (out.best is None or p.step_time_s < out.best.step_time_s):
                        out.best = p
        if sub_meshes:                                  # t per stage, same micro-batch of G examples
            tps = _tps(n, model.per_node)
            for G in sorted({m * (n // t) for t in tps for m in ms}):
                for pol in choices:
                    p = model.plan_meshes(S, G, tps, pol)
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

