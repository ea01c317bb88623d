"""O3: an integer program over the decision groups, solved by HiGHS (scipy.optimize.milp).

x[g, o] = 1 when group g takes option o (one per group). Op types touching one group
add a linear cost; op types touching several groups share a "hyperedge" per distinct
set of groups, with one variable per combination of their options, tied to the x's by
marginal constraints (sum over combinations with g at o = x[g, o]) and costed by the
same evaluator as O2. Hyperedges over more than `max_arity` groups keep their extra
groups at the starting (O2) choice. Memory: the arguments' and outputs' bytes (what
stays live all step) are a linear constraint on the same variables; the full liveness
peak of the answer is checked afterwards. A time limit returns HiGHS's best answer.
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from .solve import Assignment, options


def solve_ilp(ev, start: Assignment, budget: float | None, time_limit: float = 30.0,
              max_arity: int = 3, frozen: frozenset = frozenset()) -> Assignment | None:
    sp = ev.space
    opts = options(start.mesh)
    ng, no = len(start.choice), len(opts)
    # groups each op type touches; the biggest `max_arity` stay free, the rest are pinned
    rank = {gi: gi for gi in range(ng)}                  # groups are sorted by bytes already
    edges: dict[tuple, list] = defaultdict(list)
    for t in sp.types:
        gs = sorted({gi for k in t.ops + t.res for gi in sp.keys[k][2] if gi >= 0}, key=rank.get)
        edges[tuple(sorted(gs[:max_arity]))].append(t)
    persist = defaultdict(list)                          # argument/output keys, for memory
    arg_k = [sp.vkey[v] for v in sp.arg_v.tolist()]
    out_k = [sp.vkey[v] for v in sp.out_v.tolist()]
    for k in set(arg_k) | set(out_k):
        gs = sorted({gi for gi in sp.keys[k][2] if gi >= 0})
        persist[tuple(gs[:max_arity])].append(k)
    count = {k: 0 for k in persist.values() for k in k}
    for k in arg_k + out_k:
        count[k] = count.get(k, 0) + 1

    nx = ng * no
    cols, cost, mem_coef = nx, [0.0] * nx, [0.0] * nx
    a_rows, a_cols, a_vals, lo, hi = [], [], [], [], []
    row = 0
    for gi in range(ng):                                 # one option per group
        for o in range(no):
            a_rows.append(row), a_cols.append(gi * no + o), a_vals.append(1.0)
        lo.append(1.0), hi.append(1.0)
        row += 1
    asg = start.copy()
    for gs in sorted(set(edges) | set(persist)):
        combos = list(itertools.product(range(no), repeat=len(gs)))
        base = cols
        for c in combos:
            for gi, o in zip(gs, c):
                asg.choice[gi] = opts[o]
            cost.append(sum(ev.type_cost(t, asg).time * t.count for t in edges.get(gs, ())))
            mem_coef.append(sum(count[k] * ev.local_bytes(k, asg.key_sharding(k)) for k in persist.get(gs, ())))
            cols += 1
        for gi in gs:
            asg.choice[gi] = start.choice[gi]
        if not gs:
            a_rows.append(row), a_cols.append(base), a_vals.append(1.0)
            lo.append(1.0), hi.append(1.0)
            row += 1
            continue
        for j, gi in enumerate(gs):                      # marginals: sum z[c with c_j=o] = x[gi, o]
            for o in range(no):
                for ci, c in enumerate(combos):
                    if c[j] == o:
                        a_rows.append(row), a_cols.append(base + ci), a_vals.append(1.0)
                a_rows.append(row), a_cols.append(gi * no + o), a_vals.append(-1.0)
                lo.append(0.0), hi.append(0.0)
                row += 1
    cons = [LinearConstraint(coo_matrix((a_vals, (a_rows, a_cols)), shape=(row, cols)).tocsr(), lo, hi)]
    if budget is not None:                               # in units of the budget
        cons.append(LinearConstraint(np.array(mem_coef).reshape(1, -1) / float(budget), -np.inf, 1.0))
    # seconds in units of the costliest column: HiGHS's absolute tolerances (~1e-6) would
    # otherwise call a plan a few microseconds off the optimum optimal
    cost = np.array(cost)
    cost = cost / (float(np.abs(cost).max(initial=0.0)) or 1.0)
    lb, ub = np.zeros(cols), np.ones(cols)
    for gi in frozen:                                    # pinned groups keep their axes
        lb[gi * no + opts.index(start.choice[gi])] = 1.0
    res = milp(cost, constraints=cons, integrality=np.ones(cols), bounds=Bounds(lb, ub),
               options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return None
    x = res.x[:nx].reshape(ng, no)
    out = start.copy()
    for gi in range(ng):
        out.choice[gi] = opts[int(np.argmax(x[gi]))]
    if budget is not None and ev.memory(out)["peak"] > budget:
        return None
    return out
