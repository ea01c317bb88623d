"""The planner: mesh shapes x strategies, evaluated by the cost and memory models.

For every 1-D and 2-D mesh of the cluster's devices it prices the baselines (data
parallel, Megatron tensor parallel, both) and, for `auto`, searches from them
(solve.py: O2 coordinate descent; O3 adds the ILP of ilp.py, keeping the better).
O3 also tries strided (sub-axis) splits from the best plan. It returns the fastest plan that fits the per-device memory budget (among plans within
1% of the fastest, the one using the least memory), or raises an error naming the
smallest budget that any explored plan needs.

Repeated layers are found in the program's text first (analysis/repeats.py) and the
search runs on the folded graph (analysis/fold.py: the glue and one copy of each run),
so its time does not grow with depth; the shardings are expanded to every value of the
program at the end (`Result.shardings`, `Plan.values`).

A training step's plans also get their best micro-batch count and recomputation per layer
group (train_plan.py), priced by the same evaluator; a plan near the budget is checked on
the rewritten program through `Request.check`. When nothing fits, NoPlanFits carries what
the pipeline search (partition/stages/joint.py) needs to try next.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

from ... import ir as I
from ...analysis import fold, graph, repeats, rules
from ...cluster import Cluster
from ...errors import RhinoError
from ...sharding import Mesh, TensorSharding
from . import train_plan
from .coarsen import dim_classes
from .evaluate import Evaluator, Space
from .plan import Plan, Prediction
from .plan_values import groups_summary as _groups, value_names as _value_names, value_texts as _value_texts  # noqa: F401
from .roles import roles
from .solve import Assignment, descend, shrink_memory
from .space import meshes
from .timer import Timer

STRATEGIES = ("auto", "dp", "zero1", "zero2", "zero3", "megatron", "dp-tp")


@dataclass
class Request:
    cluster: Cluster
    level: str = "O2"
    strategy: str = "auto"
    batch_args: list[int] | None = None
    mesh: tuple | None = None                    # pin a mesh shape ((name, size), ...)
    progress: Callable[[str], None] | None = None
    fold: bool = True                            # search one copy of each run of repeated layers
    fold_first: bool = True                      # and take the training facts from short versions
    #                                              of the program (train_fold.py)
    remat: str = "auto"                          # auto | none | selective | full (training.py)
    microbatches: int | None = None              # accumulated micro-batches; None: the planner's
    check: Callable | None = None                # (module, graph, candidate, budget) -> fits, for
                                                 # plans with recomputation/micro-batches (tools/train_check.py)


@dataclass
class Candidate:
    name: str
    mesh: Mesh
    asg: Assignment | None
    time: float
    memory: dict
    cost: object = None
    sh: list | None = None                       # per-value shardings (plans not made of groups)
    results: list | None = None                  # @main result shardings, when not the values'
    fold: object = None                          # the searched graph's Fold, if folded

    def folded(self) -> list:
        """One sharding per value of the searched graph."""
        return self.sh if self.sh is not None else self.asg.folded_shardings()

    def shardings(self) -> list:
        """One sharding per value of the program (graph.build's numbering)."""
        sh = self.folded()
        return sh if self.fold is None else self.fold.expand(sh)


class Result:
    """The chosen plan. `shardings` has one entry per value of the program's graph
    (`graph`: graph.build's, built on first use when the search ran on a folded one;
    `n_nodes`, its node count, does not need it)."""

    def __init__(self, plan: Plan, shardings: list, graph, mesh: Mesh, candidates: list, results: list,
                 module=None):
        self.plan, self.shardings, self.mesh = plan, shardings, mesh
        self.candidates, self.results = candidates, results
        self._graph, self._module = graph, module
        self.n_nodes = graph.n_full_nodes

    @property
    def graph(self):
        if self._graph.fold is not None:
            self._graph = _full_graph(self._module)
        return self._graph


def _full_graph(module):
    with module.context, I.ir.Location.unknown():
        return graph.build(module)


def program_sha(module) -> str:
    return hashlib.sha256(I.print_module(module).encode()).hexdigest()


def seeds(mesh: Mesh, ro, dc) -> dict[str, list]:
    """Baselines as group choices: replicated, dp, megatron, dp-tp."""
    names = [n for n, s in mesh.axes if s > 1]
    from ...sharding import AxisRef
    every = tuple(AxisRef(n) for n in names)
    groups_of = lambda cs: {dc.group_of[c] for c in cs}  # noqa: E731
    batch, model = groups_of(ro.batch_classes), groups_of(ro.model_classes) - groups_of(ro.batch_classes)
    n = len(dc.groups)
    out = {"replicated": [()] * n}
    out["dp"] = [every if gi in batch else () for gi in range(n)]
    out["megatron"] = [every if gi in model else () for gi in range(n)]
    if len(names) == 2:
        out["dp-tp"] = [(AxisRef(names[0]),) if gi in batch else (AxisRef(names[1]),) if gi in model else ()
                        for gi in range(n)]
    return out


def plan_module(module, req: Request) -> Result:
    if req.strategy not in STRATEGIES:
        raise RhinoError(f"unknown strategy '{req.strategy}' (choose from {', '.join(STRATEGIES)})")
    if req.level not in ("O2", "O3"):
        raise RhinoError(f"unknown level '{req.level}' (choose O2 or O3)")
    say = req.progress or (lambda s: None)
    t0 = time.perf_counter()
    text = I.print_module(module)
    sha = hashlib.sha256(text.encode()).hexdigest()
    with module.context, I.ir.Location.unknown():
        rules.populate(module)
        t1 = time.perf_counter()
        g = _search_graph(module, text if req.fold else None)
    dc = dim_classes(g)
    ro = roles(g, dc, req.batch_args)
    t2 = time.perf_counter()
    budget = req.cluster.memory_per_device
    timer = Timer(req.cluster)
    ir_mesh, pins = pinned(module, g, dc)
    if ir_mesh is not None and ir_mesh.size != req.cluster.num_devices:
        raise RhinoError(f"the program's shardings use mesh @{ir_mesh.name} of {ir_mesh.size} devices but "
                         f"cluster {req.cluster.spec} has {req.cluster.num_devices}; drop the annotations "
                         f"or plan for {ir_mesh.size} devices")
    frozen = frozenset(pins)
    shapes = [req.mesh] if req.mesh else [ir_mesh.axes] if ir_mesh is not None and pins else \
        meshes(req.cluster.num_devices)
    space = Space(g, dc)
    fx = train_plan.facts_for(module, g, dc, ro, req)
    cands: list[Candidate] = []
    for axes in shapes:
        mesh = Mesh("mesh", tuple(axes))
        ev = Evaluator(space, mesh, timer)
        base = []
        for name, choice in seeds(mesh, ro, dc).items():
            for gi, axes in pins.items():
                choice[gi] = axes
            asg = Assignment(space, mesh, choice)
            base.append(_candidate(name, mesh, asg, ev))
            say(f"{_mesh_text(mesh)} {name}")
        cands += base
        if len(mesh.axes) == 1 and req.strategy in ("auto", "zero1", "zero2", "zero3"):
            cands += _zero(g, ro, mesh, ev, base)
        if req.strategy == "auto":                     # search from the best seed that fits
            start = min(base, key=lambda c: (c.memory["peak"] > budget, c.time))
            a2 = start.asg.copy()
            if ev.memory(a2)["peak"] > budget:
                shrink_memory(ev, a2, budget, frozen=frozen)
            descend(ev, a2, budget, frozen=frozen)
            cands.append(_candidate(f"auto<{start.name}", mesh, a2, ev))
            if fx is not None:                         # recomputation/accumulation make room:
                fast = min(base, key=lambda c: c.time)  # also the fastest plan, memory aside
                a4 = descend(ev, fast.asg.copy(), None, frozen=frozen)
                cands.append(_candidate(f"auto<{fast.name}*", mesh, a4, ev))
    t3 = time.perf_counter()
    if req.level == "O3" and req.strategy == "auto":
        from .ilp import solve_ilp
        best = _pick([c for c in cands if c.asg is not None], "auto", budget)
        if best is not None:
            ev = Evaluator(space, best.mesh, timer)
            a3 = best.asg.copy()                       # strided (sub-axis) splits too
            descend(ev, a3, budget, frozen=frozen, strided=True)
            cands.append(_candidate("auto<strided", best.mesh, a3, ev))
            asg = solve_ilp(ev, best.asg, budget, frozen=frozen)
            if asg is not None:
                cands.append(_candidate("auto<ilp", best.mesh, asg, ev))
    if fx is not None:                           # each plan with its best micro-batches / recomputation
        say("recomputation and accumulation")
        cands += train_plan.price_candidates(cands, space, fx, budget, timer, req.remat, req.microbatches)
    explored = list(cands)
    best = _pick(cands, req.strategy, budget)
    big = req.level == "O2" and g.n_full_nodes > VERIFY_MAX_OPS
    full = []                                # the unfolded graph, built if the full model is asked
    for _ in range(6):                       # the finalist near the budget: check with the full model
        trained = getattr(best, "train", None) is not None
        if best is None or best.memory["peak"] <= (train_plan.VERIFY_ABOVE if trained else VERIFY_ABOVE) * budget:
            break
        if big:
            if best.memory["peak"] * MARGIN <= budget:
                break
        else:
            if not full:
                full.append(g if g.fold is None else _full_graph(module))
            if (req.check is None or req.check(module, full[0], best, budget)) if trained else \
                    _model_fits(module, full[0], best, budget):
                break
        cands.remove(best)
        best = _pick(cands, req.strategy, budget)
    t4 = time.perf_counter()
    context = train_plan.Context(space, fx, ro, timer)
    if best is None:
        need = min(max(c.memory["peak"], c.memory.get("model_peak", 0)) for c in explored)
        raise train_plan.NoPlanFits(f"no plan fits {_size(budget)} per device on {req.cluster.spec}: the "
                                    f"smallest plan found needs {_size(need)} per device; use --memory "
                                    f"{_size_ceil(need)} or more devices", context,
                                    _baselines(explored, budget))
    timings = {"parse_and_inline_s": None, "rules_s": t1 - t0, "coarsen_s": t2 - t1, "solve_s": (t3 - t2) + (t4 - t3),
               "total_s": t4 - t0}
    if g.fold is not None:                   # [ops per copy, copies] of each run searched once
        timings["repeats"] = [[r.period, r.copies] for r in g.fold.reps.runs]
    fsh = best.folded()
    results = best.results or [fsh[v] for v in g.outputs]
    plan = _to_plan(best, fsh, results, cands, g, sha, req, budget, timings)
    train_plan.fill_plan(plan, best, fx)
    sh = fsh if g.fold is None else g.fold.expand(fsh)
    out = Result(plan, sh, full[0] if full else g, best.mesh, cands, results, module)
    out.context = context
    return out


def _search_graph(module, text: str | None):
    """The folded graph when `text` (the printed module) shows repeated layers, else the full one."""
    if text is not None:
        f = I.main_func(module)
        block = f.regions[0].blocks[0]
        reps = repeats.find(text, f.attributes["sym_name"].value, [str(a.type) for a in block.arguments],
                            len(block.operations))
        if reps is not None:
            return fold.build(module, reps)
    return graph.build(module)


def pinned(module, g, dc) -> tuple[Mesh | None, dict[int, tuple]]:
    """Shardings already on @main's arguments: fixed decisions for their dims' groups."""
    from ...sharding import annotations as A
    mesh = A.module_mesh(module, "rhino plan")
    pins: dict[int, tuple] = {}
    if mesh is None:
        return None, pins
    for i, a in enumerate(g.args):
        s = A.arg_sharding(g.func, i)
        if s is None:
            continue
        for d, axes in enumerate(s.dims):
            c = dc.of.get((a, d))
            if c is not None and (axes or any(not o for o in s.open_dims[d:d + 1]) or not s.open_dims):
                pins.setdefault(dc.group_of[c], tuple(axes))
    return mesh, pins


# The search's liveness sweep is within about +-25% of analysis/memory.py (which has
# fusion and reshard buffers and is checked against XLA); a plan whose sweep passes
# this share of the budget is checked with that model before it is chosen.
VERIFY_ABOVE = 0.6
# ...except at O2 on programs this big (the model walks the IR: seconds), where the sweep
# must leave this margin instead.
VERIFY_MAX_OPS = 50_000
MARGIN = 1.25


def _model_fits(module, g, cand: Candidate, budget: int) -> bool:
    from ..spmd.memory import memory_report
    sh = cand.shardings()
    rep = memory_report(module, shardings={g.values[v]: s for v, s in enumerate(sh)}, mesh=cand.mesh)
    cand.memory["model_peak"] = max(rep.peak, rep.xla_comparable)
    return cand.memory["model_peak"] <= budget


def _zero(g, ro, mesh, ev, base) -> list[Candidate]:
    from . import zero
    dp = next((c for c in base if c.name == "dp"), None)
    if dp is None:
        return []
    out = []
    for level in zero.LEVELS:
        z = zero.plan(g, ro, mesh, dp.folded(), level)
        if z is None:
            return out
        sh, results = z
        c = ev.total_values(sh, base=(dp.cost, dp.folded()))
        c.add(ev.outputs_cost(sh, results))
        out.append(Candidate(level, mesh, None, c.time, ev.memory_values(sh), c, sh, results, g.fold))
    return out


def _candidate(name, mesh, asg, ev) -> Candidate:
    c = ev.total(asg)
    return Candidate(name, mesh, asg, c.time, ev.memory(asg), c, fold=ev.g.fold)


def _pick(cands, strategy: str, budget: int) -> Candidate | None:
    def ok(c):
        if strategy == "auto":
            return True
        return c.name == strategy
    fits = [c for c in cands if ok(c) and c.memory["peak"] <= budget]
    if not fits:
        return None
    # within 1% of the fastest, keep the one with the most memory to spare
    fastest = min(c.time for c in fits)
    return min((c for c in fits if c.time <= fastest * 1.01), key=lambda c: (c.memory["peak"], c.time))


def _mesh_text(mesh: Mesh) -> str:
    return "x".join(f"{n}={s}" for n, s in mesh.axes)


def _unit(n: float) -> tuple[str, int]:
    return next(((u, k) for u, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)) if n >= k), ("B", 1))


def _size(n: float) -> str:
    u, k = _unit(n)
    return f"{n / k:.2f}{u}"


def _size_ceil(n: float) -> str:
    """A round size at or above n, for the --memory hint."""
    u, k = _unit(n)
    return f"{-(-n // (k / 10)) / 10:g}{u}"


def _baselines(cands, budget) -> list[dict]:
    """Each baseline on its fastest mesh that fits (else its fastest), as the plan reports it."""
    base = []
    for name in train_plan.BASELINES + tuple(f"{n}/full" for n in train_plan.EXPERT):
        bc = [x for x in cands if x.name == name]
        fit = [x for x in bc if x.memory["peak"] <= budget]
        pick = min(fit or bc, key=lambda x: x.time) if bc else None
        if pick:
            base.append({"name": name, "mesh": [list(a) for a in pick.mesh.axes], "step_time_s": pick.time,
                         "compute_s": pick.cost.compute, "comm_s": pick.cost.comm,
                         "memory_per_device_bytes": pick.memory["peak"], "fits": bool(fit),
                         **train_plan.baseline_fields(pick)})
    return base


def _to_plan(best: Candidate, sh, results, cands, g, sha, req: Request, budget, timings) -> Plan:
    """The plan of `best`; `sh` has one sharding per value of the searched graph `g`."""
    c = best.cost
    values = _value_texts(g, sh)
    base = _baselines(cands, budget)
    pred = Prediction(c.time, c.compute, c.comm, int(best.memory.get("model_peak", best.memory["peak"])),
                      {k: int(v) for k, v in best.memory.items() if k != "peak_node"}, c.bytes_by_axis)
    return Plan(sha, req.cluster.spec, [list(a) for a in best.mesh.axes], req.strategy,
                req.level, pred, [sh[a].to_text() for a in g.args], values, _groups(best), base, timings, budget,
                [r.to_text() for r in results])
