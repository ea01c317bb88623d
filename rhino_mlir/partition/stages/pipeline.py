"""Pipeline planning: stage count, stage of every op, sub-meshes, micro-batches, schedule.

`plan_pipeline(module, cluster, stages, microbatches, schedule)` returns a PipelinePlan:
  - the stage of every per-micro-batch op, from the ILP of stage_ilp.py over topological
    chunks of the op DAG (so skip connections and any fan-out are fine); post ops (the
    optimizer) and constants follow by partition/stages/tasks.py's defaults;
  - sub-meshes: stage s runs on devices [s*n, (s+1)*n) of the cluster, n = devices / S,
    data parallel over the micro-batch inside the stage (axis "d"); on a heterogeneous
    cluster each stage is priced on its own devices, so slower ones get less work;
  - micro-batch count: the given one, else the divisor of the batch with the best
    predicted step time that fits memory;
  - predictions: step time and bubble from partition/stages/schedule.py's timeline (per-task
    roofline times of analysis/cost.py, transfers at the link between the stages, the
    gradient all-reduce inside a stage), memory per stage: stage arguments (parameters,
    optimizer state), accumulated gradients, and the activations a stage keeps between
    its forward and backward times the micro-batches in flight under the schedule
    (M for gpipe, S - s for 1f1b), plus the largest per-micro-batch value twice.
Choices run over stage counts dividing the device count when `stages` is None.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ... import ir as I
from ...analysis import cost, rules
from ...cluster import Cluster
from ...errors import RhinoError
from . import stage_ilp
from .microbatch import MicroInfo, analyze
from .schedule import SCHEDULES, in_flight, timeline
from .tasks import STAGE_ATTR, Tasks, assign


@dataclass
class PipelinePlan:
    stages: int
    microbatches: int
    schedule: str
    devices_per_stage: int
    stage_of: dict                         # op index in @main's block -> stage (micro ops)
    meshes: list                           # per stage: devices, axes, device type
    step_time_s: float
    bubble: float
    stage_busy_s: list
    memory_per_stage: list
    transfer_bytes_per_microbatch: float
    fits: bool = True
    gantt: list = field(default_factory=list)       # (stage, fn, mb, start, end) predicted
    candidates: list = field(default_factory=list)  # other (stages, microbatches) evaluated

    def to_json(self) -> dict:
        d = asdict(self)
        d["stage_of"] = {str(k): v for k, v in self.stage_of.items()}
        return d

    def summary(self) -> str:
        mem = ", ".join(f"{b / 2**20:.1f}" for b in self.memory_per_stage)
        return (f"{self.stages} stage(s) x {self.devices_per_stage} device(s), {self.microbatches} "
                f"micro-batch(es), {self.schedule}: step {self.step_time_s * 1e3:.3f} ms predicted, "
                f"bubble {self.bubble:.0%}, memory per stage [{mem}] MiB")


def _op_cost(op, profile, m: int, n: int) -> float:
    """Seconds of one op per micro-batch on one of n data-parallel devices."""
    fl = sum(cost.op_flops(o) for o in [op] + list(cost.costed_ops(op)))
    by = sum(cost.op_bytes(o) for o in [op] + list(cost.costed_ops(op)))
    dt = str(I.elem_of(op.results[0].type)) if len(op.results) and I.is_tensor(op.results[0].type) else "f32"
    return cost.compute_time(fl / (m * n), by / (m * n), dt, profile)


class _Model:
    """Everything about the program that does not depend on the stage split."""

    def __init__(self, module, info: MicroInfo):
        self.module, self.info = module, info
        ops = info.ops
        self.micro = [i for i, k in enumerate(info.kind) if k == "micro"]
        self.pos = {i: p for p, i in enumerate(self.micro)}
        self.producer = {v: i for i, op in enumerate(ops) for v in op.results}
        self.flops = [float(sum(cost.op_flops(o) for o in [ops[i]] + list(cost.costed_ops(ops[i]))))
                      for i in self.micro]
        self.deps = []                                   # (producer pos, consumer pos, bytes/M)
        for i in self.micro:
            for v in ops[i].operands:
                j = self.producer.get(v)
                if j is not None and j in self.pos and j != i:
                    self.deps.append((self.pos[j], self.pos[i], float(I.nbytes(v.type))))
        self.training = any(k == "post" for k in info.kind) or bool(info.acc)
        self.arg_bytes = [I.nbytes(a.type) for a in I.main_func(module).regions[0].blocks[0].arguments]


def _profiles(cluster: Cluster, stages: int, n: int):
    return [cluster.profile(s * n) for s in range(stages)]


def _link(cluster: Cluster, a: int, b: int, n: int):
    """Link between the first devices of stages a and b."""
    x, y = a * n, b * n
    if cluster.node_of(x) != cluster.node_of(y):
        return cluster.inter_link
    return cluster.intra_link(cluster.group_of(x))


def _split(model: _Model, cluster: Cluster, stages: int, n: int, m_ref: int, slack: float,
           time_limit: float) -> dict:
    """op index -> stage for the micro ops (the ILP)."""
    info = model.info
    profs = _profiles(cluster, stages, n)
    costs = [_op_cost(info.ops[i], profs[0], m_ref, n) for i in model.micro]
    # fine enough that a cut in the forward and its mirror in the backward line up (a
    # misaligned chunk sends a layer's saved activations across), coarse enough for the
    # ILP to stay fast: at most 256 binaries (chunks x tasks)
    tasks_n = 2 * stages if model.training else stages
    target = min(len(model.micro), max(2 * stages, min(64, 256 // tasks_n)))
    ch = stage_ilp.chunk(costs, [(u, v, b / m_ref) for u, v, b in model.deps], target)
    C = len(ch.cost)
    time = np.zeros((C, stages))
    for p, i in enumerate(model.micro):
        for s in range(stages):
            time[ch.of_op[p], s] += _op_cost(info.ops[i], profs[s], m_ref, n)
    cflops = [0.0] * C
    for p, fl in enumerate(model.flops):
        cflops[ch.of_op[p]] += fl
    peaks = [p.peak("f32") for p in profs]
    share = [pk / sum(peaks) for pk in peaks]
    link = _link(cluster, 0, min(1, stages - 1), n)
    for s in range(stages - 1):
        link = link.slower(_link(cluster, s, s + 1, n))
    transfer = {e: b / link.bandwidth + link.latency for e, b in ch.edges.items()}
    tasks = stage_ilp.solve(ch, stages, model.training, time, cflops, share, transfer, m_ref,
                            slack, time_limit)
    return {i: stage_ilp.stage_of_task(tasks[ch.of_op[p]], stages) for p, i in enumerate(model.micro)}


def _evaluate(model: _Model, cluster: Cluster, tasks: Tasks, stages: int, n: int, m: int,
              kind: str) -> tuple:
    info, ops = model.info, model.info.ops
    profs = _profiles(cluster, stages, n)
    dur: dict = {}
    upd: dict = {}
    for i, t in enumerate(tasks.task):
        if t is None:
            continue
        fn, s = t
        if fn == "update":
            upd[s] = upd.get(s, 0.0) + _op_cost(ops[i], profs[s], 1, 1)
        else:
            dur[(fn, s)] = dur.get((fn, s), 0.0) + _op_cost(ops[i], profs[s], m, n)
    deps: dict = {}
    cross = 0.0
    keep = [0.0] * stages                                # activations held from F_s to B_s
    accb = [0.0] * stages
    for i, t in enumerate(tasks.task):
        if t is None or t[0] == "update":
            continue
        for v in ops[i].operands:
            j = model.producer.get(v)
            if j is None or tasks.task[j] is None or tasks.task[j] == t or tasks.task[j][0] == "update":
                continue
            b = I.nbytes(v.type) / (m if info.view.get(v) is not None else 1)
            src = tasks.task[j]
            if src[1] != t[1]:
                k = _link(cluster, src[1], t[1], n)
                deps[(src, t)] = deps.get((src, t), 0.0) + b / n / k.bandwidth + k.latency
                cross += b
            else:
                deps.setdefault((src, t), 0.0)
            if t[0] == "bwd":
                keep[t[1]] += b / n
    for v, comb in info.acc.items():
        s = tasks.stage[tasks.producer[v]]
        accb[s] += I.nbytes(v.type)
        if n > 1:                                      # gradient all-reduce inside the stage
            k = cluster.intra_link(cluster.group_of(s * n))
            upd[s] = upd.get(s, 0.0) + cost.collective_time("all_reduce", I.nbytes(v.type), n, k)
    tl = timeline(kind, stages, m, dur, [(a, b, t) for (a, b), t in deps.items()], upd)
    args_of = [set() for _ in range(stages)]
    for i, t in enumerate(tasks.task):
        if t is None:
            continue
        for v in ops[i].operands:
            if v in _args(model):
                args_of[t[1]].add(_args(model)[v])
    biggest = [0.0] * stages
    for i, t in enumerate(tasks.task):
        if t is not None and t[0] != "update":
            for r in ops[i].results:
                b = I.nbytes(r.type) / (m if info.view.get(r) is not None else 1) / n
                biggest[t[1]] = max(biggest[t[1]], b)
    mem = [int(sum(model.arg_bytes[a] for a in args_of[s]) + accb[s]
               + keep[s] * in_flight(kind, s, stages, m) + 2 * biggest[s]) for s in range(stages)]
    return tl, mem, cross


def _args(model: _Model) -> dict:
    if not hasattr(model, "_argmap"):
        block = I.main_func(model.module).regions[0].blocks[0]
        model._argmap = {a: i for i, a in enumerate(block.arguments)}
    return model._argmap


def plan_pipeline(module, cluster: Cluster, stages: int | None = None, microbatches: int | None = None,
                  schedule: str = "1f1b", batch_args: list[int] | None = None,
                  memory: int | None = None, slack: float = 0.5, time_limit: float = 10.0) -> PipelinePlan:
    """The best pipeline for `module` (global, after rhino-inline) on `cluster`."""
    if schedule not in SCHEDULES:
        raise RhinoError(f"unknown schedule '{schedule}' (choose from {', '.join(SCHEDULES)})")
    nd = cluster.num_devices
    if stages is not None and stages > nd:
        raise RhinoError(f"{stages} stages need at least {stages} devices but cluster "
                         f"'{cluster.spec}' has {nd}")
    if stages is not None and nd % stages:
        raise RhinoError(f"{stages} stages do not divide the {nd} devices of '{cluster.spec}' "
                         f"into equal sub-meshes; use a divisor of {nd}")
    budget = memory if memory is not None else cluster.memory_per_device
    with module.context, I.ir.Location.unknown():
        rules.populate(module)
        info = analyze(module, microbatches or 1, batch_args)
        model = _Model(module, info)
        if schedule == "inference" and model.training:
            schedule = "gpipe"
        stage_counts = [stages] if stages else [s for s in range(1, min(nd, 8) + 1) if nd % s == 0]
        if microbatches:
            ms = [microbatches]
        elif info.strict and info.batch:
            ms = [d for d in range(1, info.batch + 1) if info.batch % d == 0 and d <= 64]
        else:
            ms = [1]
        results = []
        for S in stage_counts:
            if S > len(model.micro):
                if stages:
                    raise RhinoError(f"{S} stages but the program has only {len(model.micro)} "
                                     f"per-micro-batch op(s); use fewer stages")
                continue
            n = nd // S
            m_ref = max(ms) if len(ms) == 1 else min(ms, key=lambda d: abs(d - 4 * S))
            given = _split(model, cluster, S, n, m_ref, slack, time_limit) if S > 1 else \
                {i: 0 for i in model.micro}
            tasks = assign(info, S, given)
            for m in ms:
                tl, mem, cross = _evaluate(model, cluster, tasks, S, n, m, schedule)
                results.append(PipelinePlan(S, m, schedule, n, given, _meshes(cluster, S, n),
                                            tl.step_s, tl.bubble, tl.busy_s, mem, cross,
                                            max(mem) <= budget, tl.rows))
    if not results:
        raise RhinoError(f"no pipeline fits the program's {len(model.micro)} per-micro-batch op(s)")
    fit = [r for r in results if r.fits]
    if not fit:
        need = min(max(r.memory_per_stage) for r in results)
        raise RhinoError(f"no pipeline fits {budget / 2**30:.2f}GiB per device on {cluster.spec}: "
                         f"the smallest needs {need / 2**30:.2f}GiB per device; use --memory "
                         f"{math.ceil(need / 2**20)}MiB or more devices")
    best = min(fit, key=lambda r: (r.step_time_s, r.stages, r.microbatches))
    best.candidates = [{"stages": r.stages, "microbatches": r.microbatches, "step_time_s": r.step_time_s,
                        "bubble": r.bubble, "memory_bytes": max(r.memory_per_stage), "fits": r.fits}
                       for r in results]
    return best


def evaluate_split(module, cluster: Cluster, stage_of: dict, stages: int, microbatches: int,
                   schedule: str = "1f1b", batch_args: list[int] | None = None) -> PipelinePlan:
    """Predictions for a given stage of every op (e.g. a split made for another cluster)."""
    n = cluster.num_devices // stages
    with module.context, I.ir.Location.unknown():
        rules.populate(module)
        info = analyze(module, microbatches, batch_args)
        model = _Model(module, info)
        tasks = assign(info, stages, {int(k): v for k, v in stage_of.items()})
        tl, mem, cross = _evaluate(model, cluster, tasks, stages, n, microbatches, schedule)
    return PipelinePlan(stages, microbatches, schedule, n, dict(stage_of), _meshes(cluster, stages, n),
                        tl.step_s, tl.bubble, tl.busy_s, mem, cross, True, tl.rows)


def _meshes(cluster: Cluster, stages: int, n: int) -> list:
    return [{"devices": list(range(s * n, (s + 1) * n)), "axes": [["d", n]],
             "device": cluster.group_of(s * n).profile.name} for s in range(stages)]


def annotate(module, plan: PipelinePlan) -> None:
    """Write the plan's stages as `rhino.stage` on @main's ops (per-micro-batch ops only)."""
    write_stage_attrs(module, plan.stage_of)


def write_stage_attrs(module, stage_of: dict) -> None:
    """`rhino.stage` on @main's ops: {op index (terminator excluded) -> stage}."""
    with module.context:
        block = I.main_func(module).regions[0].blocks[0]
        ops = [op for op in I.block_ops(block)][:-1]
        i64 = I.ir.IntegerType.get_signless(64)
        for i, s in stage_of.items():
            ops[int(i)].attributes[STAGE_ATTR] = I.ir.IntegerAttr.get(i64, int(s))
