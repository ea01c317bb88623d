"""Stage assignment on the op DAG: an ILP over topological chunks (HiGHS via scipy).

The per-micro-batch ops of @main, in program order (a topological order of any DAG,
skip connections included), are cut into C chunks of about equal cost. Each chunk gets
one task of the pipeline, in task order F_0 < ... < F_{S-1} < B_{S-1} < ... < B_0
(training) or F_0 < ... < F_{S-1} (inference); stage(F_s) = stage(B_s) = s.

    x[c,t] in {0,1}    chunk c runs in task t;   sum_t x[c,t] = 1
    y[c,s] = x[c,F_s] + x[c,B_s]                 chunk c is on stage s
    rank(u) <= rank(v) for every edge u -> v     (sum_t rank_t x[u,t] <= sum_t rank_t x[v,t])
    z[e] >= y[u,s] - y[v,s] for all s            edge e crosses stages (z in [0, 1])
    T >= sum_c time[c,s] * y[c,s]                the slowest stage, per micro-batch
    sum_c y[c,s] >= 1                            no empty stage
    (1 - slack) * share[s] <= sum_c flops[c] * y[c,s] / total flops <= (1 + slack) * share[s]
    minimize (M + S - 1) * T + M * sum_e z[e] * transfer[e]
`time[c,s]` is the chunk's time on stage s's devices, so a stage of slower devices gets
proportionally less work; `share[s]` is its share of the cluster's peak FLOP/s. The
bubble is the (S - 1) / M factor of a synchronous schedule; the exact timeline is
partition/stages/schedule.py's. The balance constraint is dropped if it makes the ILP infeasible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import RhinoError


@dataclass
class Chunks:
    of_op: list[int]                   # micro-op position -> chunk
    cost: list[float]                  # chunk -> reference cost (any unit)
    edges: dict                        # (chunk u, chunk v) -> bytes per micro-batch, u < v


def chunk(costs: list[float], deps: list[tuple[int, int, float]], target: int) -> Chunks:
    """Consecutive chunks of about equal cost; deps = (producer pos, consumer pos, bytes)."""
    n = len(costs)
    target = max(1, min(target, n))
    # half cost, half op count: a few heavy ops (the matmuls) must not swallow the chunks
    tc = sum(costs) or 1.0
    w = [0.5 * c / tc + 0.5 / n for c in costs]
    total = sum(w)
    raw, acc = [], 0.0
    for i in range(n):               # the slot that holds the op's midpoint, then renumbered
        raw.append(min(target - 1, int((acc + w[i] / 2) * target / total)))
        acc += w[i]
    ids: dict[int, int] = {}
    of = [ids.setdefault(r, len(ids)) for r in raw]
    k = len(ids) - 1
    cost = [0.0] * (k + 1)
    for i, c in enumerate(costs):
        cost[of[i]] += c
    edges: dict = {}
    for u, v, b in deps:
        cu, cv = of[u], of[v]
        if cu != cv:
            key = (min(cu, cv), max(cu, cv))
            edges[key] = edges.get(key, 0.0) + b
    return Chunks(of, cost, edges)


def solve(ch: Chunks, stages: int, training: bool, time: np.ndarray, flops: list[float],
          share: list[float], transfer: dict, m: int, slack: float = 0.5,
          time_limit: float = 10.0) -> list[int]:
    """Task index per chunk (0..S-1 forward, S..2S-1 backward of stage 2S-1-t)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix
    C = len(ch.cost)
    if stages > C:
        raise RhinoError(f"{stages} stages but the program has only {C} independent piece(s) of "
                         f"per-micro-batch work; use at most {C} stages")
    nt = 2 * stages if training else stages
    stage_of_t = [t if t < stages else 2 * stages - 1 - t for t in range(nt)]
    edges = sorted(ch.edges)
    nx, ne = C * nt, len(edges)
    nv = nx + ne + 1
    X = lambda c, t: c * nt + t  # noqa: E731
    Tv = nx + ne
    # times in units of the largest one: HiGHS's absolute tolerances (1e-6..1e-7) would
    # otherwise swallow the differences between splits of a microsecond-sized program
    unit = max(float(np.max(time, initial=0.0)), max(transfer.values(), default=0.0)) or 1.0
    time = np.asarray(time, dtype=np.float64) / unit

    def build(balance: bool):
        rows, lb, ub = [], [], []

        def row(entries, lo, hi):
            rows.append(entries)
            lb.append(lo)
            ub.append(hi)
        for c in range(C):
            row({X(c, t): 1.0 for t in range(nt)}, 1, 1)
        for u, v in edges:
            e = {}
            for t in range(nt):
                e[X(u, t)] = e.get(X(u, t), 0.0) + t
                e[X(v, t)] = e.get(X(v, t), 0.0) - t
            row(e, -np.inf, 0)
        for k, (u, v) in enumerate(edges):
            for s in range(stages):
                e = {nx + k: -1.0}
                for t in range(nt):
                    if stage_of_t[t] == s:
                        e[X(u, t)] = e.get(X(u, t), 0.0) + 1.0
                        e[X(v, t)] = e.get(X(v, t), 0.0) - 1.0
                row(e, -np.inf, 0)
        tot = sum(flops) or 1.0
        for s in range(stages):
            ts = [t for t in range(nt) if stage_of_t[t] == s]
            row({**{X(c, t): float(time[c, s]) for c in range(C) for t in ts}, Tv: -1.0}, -np.inf, 0)
            row({X(c, t): 1.0 for c in range(C) for t in ts}, 1, np.inf)
            if balance and sum(flops) > 0:
                row({X(c, t): flops[c] / tot for c in range(C) for t in ts},
                    (1 - slack) * share[s], min(1.0, (1 + slack) * share[s]))
        A = lil_matrix((len(rows), nv))
        for i, e in enumerate(rows):
            for j, a in e.items():
                A[i, j] = a
        return LinearConstraint(A.tocsr(), lb, ub)

    obj = np.zeros(nv)
    obj[Tv] = m + stages - 1
    for k, e in enumerate(edges):
        obj[nx + k] = m * transfer.get(e, 0.0) / unit
    integrality = np.r_[np.ones(nx), np.zeros(ne + 1)]
    bounds = Bounds(np.zeros(nv), np.r_[np.ones(nx + ne), np.inf])
    for balance in (True, False):
        res = milp(obj, constraints=build(balance), integrality=integrality, bounds=bounds,
                   options={"time_limit": time_limit, "disp": False, "mip_rel_gap": 0.02})
        if res.x is not None:
            x = res.x[:nx].reshape(C, nt)
            return [int(np.argmax(x[c])) for c in range(C)]
    raise RhinoError(f"no assignment of the program to {stages} pipeline stages respects the "
                     f"data dependencies ({res.message}); use fewer stages")


def stage_of_task(t: int, stages: int) -> int:
    return t if t < stages else 2 * stages - 1 - t
