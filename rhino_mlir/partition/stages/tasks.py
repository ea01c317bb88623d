"""Stage of every op, and the task (stage function) it runs in.

Per micro-batch, the tasks of an S-stage pipeline run in the order
    F_0 < F_1 < ... < F_{S-1} < B_{S-1} < ... < B_0          (then U, once per step)
(`fwd` / `bwd` of each stage). An op of stage s runs in F_s unless it depends on a value
of a later task (the loss of the last stage, the gradient coming back from stage s+1), in
which case it runs in B_s: the stage's ops are cut at every dependency on a later task.
A dependency on B_t of an earlier stage t < s cannot be scheduled (it would run after
B_s) and is an error naming both ops. `post` ops (partition/stages/microbatch.py) run in U_s,
the stage's `update`; the update functions of different stages run in an order that
respects their mutual dependencies (`update_order`).

Ops without `rhino.stage` take the stage of their first producer that has one (operands
in order), else of their first user that has one, else stage 0. Constant ops are cloned
into every function that uses them: their stage does not matter.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import ir as I
from ...errors import RhinoError
from .microbatch import MicroInfo

FWD, BWD, UPDATE = "fwd", "bwd", "update"
STAGE_ATTR = "rhino.stage"


class StageError(RhinoError):
    """Stage annotations that no pipeline schedule can run."""


@dataclass
class Tasks:
    stages: int
    stage: list[int]                       # per op of MicroInfo.ops
    task: list                             # per op: (fn, stage) or None (const)
    update_order: list[int]                # stages whose @update runs, in order
    producer: dict                         # value -> op index (top-level op results)

    def functions(self) -> list[tuple[int, str]]:
        """(stage, fn) of every non-empty function, in schedule order of one step."""
        used = {t for t in self.task if t is not None}
        order = [(FWD, s) for s in range(self.stages)] + \
                [(BWD, s) for s in reversed(range(self.stages))] + \
                [(UPDATE, s) for s in self.update_order]
        return [(s, fn) for fn, s in order if (fn, s) in used]


def rank(fn: str, s: int, n: int) -> int:
    return s if fn == FWD else 2 * n - 1 - s


def _attr_stage(op) -> int | None:
    if STAGE_ATTR not in op.attributes:
        return None
    return I.ir.IntegerAttr(op.attributes[STAGE_ATTR]).value


def _name(op) -> str:
    v = op.results[0] if len(op.results) else None
    return f"{I.value_name(v) if v is not None else '%?'} ({op.name})"


def op_stages(info: MicroInfo, producer: dict, given: dict | None = None) -> list[int]:
    """Stage per op: `given` (op index -> stage) or rhino.stage, then the defaults above."""
    ops = info.ops
    st = [given.get(i) for i in range(len(ops))] if given is not None else [_attr_stage(op) for op in ops]
    for i, op in enumerate(ops):                        # first producer with a stage
        if st[i] is None:
            for v in op.operands:
                j = producer.get(v)
                if j is not None and st[j] is not None:
                    st[i] = st[j]
                    break
    users: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        for v in op.operands:
            j = producer.get(v)
            if j is not None:
                users.setdefault(j, []).append(i)
    for i in reversed(range(len(ops))):                  # else first user with a stage
        if st[i] is None:
            st[i] = next((st[u] for u in users.get(i, []) if st[u] is not None), None)
    return [0 if s is None else s for s in st]


def assign(info: MicroInfo, stages: int = 0, given: dict | None = None) -> Tasks:
    """Stage and task of every op; `stages` = 0 means max(rhino.stage) + 1."""
    ops = info.ops
    producer = {v: i for i, op in enumerate(ops) for v in op.results}
    st = op_stages(info, producer, given)
    micro = [i for i, k in enumerate(info.kind) if k != "const"]
    n = stages or (max((st[i] for i in micro), default=0) + 1)
    for i in micro:
        if not 0 <= st[i] < n:
            raise StageError(f"{_name(ops[i])} has rhino.stage = {st[i]} but the pipeline has "
                             f"{n} stage(s) (0..{n - 1})")
    empty = sorted(set(range(n)) - {st[i] for i, k in enumerate(info.kind) if k == "micro"})
    if empty:
        raise StageError(f"stage(s) {', '.join(map(str, empty))} of {n} hold no per-micro-batch op; "
                         f"use fewer stages (the program has {sum(k == 'micro' for k in info.kind)} "
                         f"such ops)")
    task: list = [None] * len(ops)
    for i, op in enumerate(ops):
        if info.kind[i] != "micro":
            continue
        s = st[i]
        need = rank(FWD, s, n)
        for v in op.operands:
            j = producer.get(v)
            if j is None or task[j] is None or task[j][0] == UPDATE:
                continue
            need = max(need, rank(*task[j], n))
        if need <= rank(FWD, s, n):
            task[i] = (FWD, s)
        elif need <= rank(BWD, s, n):
            task[i] = (BWD, s)
        else:
            late = next(ops[producer[v]] for v in op.operands
                        if producer.get(v) is not None and task[producer[v]] is not None
                        and rank(*task[producer[v]], n) > rank(BWD, s, n))
            raise StageError(f"{_name(op)} in stage {s} uses {_name(late)}, which runs later (in "
                             f"the backward part of an earlier stage); give them stages that "
                             f"decrease along the backward pass")
    deps: dict[int, set[int]] = {}
    for i, op in enumerate(ops):
        if info.kind[i] == "post":
            task[i] = (UPDATE, st[i])
            deps.setdefault(st[i], set())
    for i, op in enumerate(ops):
        if info.kind[i] == "post":
            for v in op.operands:
                j = producer.get(v)
                if j is not None and task[j] is not None and task[j][0] == UPDATE and st[j] != st[i]:
                    deps[st[i]].add(st[j])
    return Tasks(n, st, task, _update_order(deps), producer)


def _update_order(deps: dict[int, set[int]]) -> list[int]:
    """Stages with an update, dependencies first (then higher stages first: the loss)."""
    order, done = [], set()
    todo = sorted(deps, reverse=True)
    while todo:
        ready = [s for s in todo if deps[s] <= done]
        if not ready:
            raise StageError(f"the update step needs values across stages {sorted(todo)} in both "
                             f"directions (e.g. global gradient clipping); not supported yet")
        order.append(ready[0])
        done.add(ready[0])
        todo.remove(ready[0])
    return order
