"""Pipeline schedules: the task order of each stage, and its predicted timeline.

    gpipe      F(0) .. F(M-1), then B(0) .. B(M-1)                  (M in flight)
    1f1b       min(S-1-s, M) warm-up forwards, then F(i+w)/B(i) alternating, then the
               remaining backwards                                   (S-s in flight)
    inference  F(0) .. F(M-1)
and the stage's `update` once at the end. A stage without backward ops (the last stage
of a training step computes its own gradient in F) just runs its forwards.
`timeline` plays a schedule on task durations and cross-stage transfer times (a stage
runs one task at a time; a task starts when its stage is free and its inputs arrived):
the predicted step time, the bubble and a Gantt chart's rows. Pure Python: the planner
and the rank processes (launch/rank/pipeline.py) both use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import RhinoError

SCHEDULES = ("gpipe", "1f1b", "inference")


def schedule(kind: str, stage: int, stages: int, m: int, fns) -> list[tuple[str, int | None]]:
    """Tasks of one stage in execution order: (fn, micro-batch), ('update', None) last."""
    if kind not in SCHEDULES:
        raise RhinoError(f"unknown schedule '{kind}' (choose from {', '.join(SCHEDULES)})")
    has_f, has_b = "fwd" in fns, "bwd" in fns
    if kind == "inference" and has_b:
        raise RhinoError("schedule 'inference' runs no backward functions but the program has "
                         "them; use gpipe or 1f1b")
    out: list[tuple[str, int | None]] = []
    if not has_b or not has_f or kind == "gpipe":
        out += [("fwd", i) for i in range(m)] if has_f else []
        out += [("bwd", i) for i in range(m)] if has_b else []
    else:
        warm = min(stages - 1 - stage, m)
        out += [("fwd", i) for i in range(warm)]
        for i in range(m - warm):
            out += [("fwd", i + warm), ("bwd", i)]
        out += [("bwd", i) for i in range(m - warm, m)]
    if "update" in fns:
        out.append(("update", None))
    return out


def in_flight(kind: str, stage: int, stages: int, m: int) -> int:
    """Micro-batches whose saved activations a stage holds at most at once."""
    return min(stages - stage, m) if kind == "1f1b" else m


@dataclass
class Timeline:
    step_s: float
    bubble: float                                   # idle fraction of stage-time
    busy_s: list[float]
    rows: list = field(default_factory=list)        # (stage, fn, mb, start, end)


def timeline(kind: str, stages: int, m: int, dur: dict, deps: list, update: dict | None = None) -> Timeline:
    """Play the schedule. dur[(fn, s)] = seconds per micro-batch; deps = [((fn, s), (fn2, s2),
    transfer seconds)] within one micro-batch; update[s] = seconds of stage s's update,
    which starts after the stage's last task and the updates it depends on (none here)."""
    fns = {s: {fn for fn, t in dur if t == s} | ({"update"} if update and s in update else set())
           for s in range(stages)}
    order = {s: schedule(kind, s, stages, m, fns[s]) for s in range(stages)}
    into: dict = {}
    for src, dst, t in deps:
        into.setdefault(dst, []).append((src, t))
    done: dict = {}
    free = [0.0] * stages
    pos = [0] * stages
    rows = []
    last_micro = [0.0] * stages
    while any(pos[s] < len(order[s]) for s in range(stages)):
        moved = False
        for s in range(stages):
            while pos[s] < len(order[s]):
                fn, mb = order[s][pos[s]]
                if fn == "update":
                    start = max(free[s], max(last_micro))
                    end = start + (update or {}).get(s, 0.0)
                else:
                    need = [(done.get((src, mb)), t) for src, t in into.get((fn, s), [])]
                    if any(d is None for d, _ in need):
                        break
                    start = max([free[s]] + [d + t for d, t in need])
                    end = start + dur[(fn, s)]
                    done[((fn, s), mb)] = end
                    last_micro[s] = end
                rows.append((s, fn, mb, start, end))
                free[s] = end
                pos[s] += 1
                moved = True
        if not moved:
            raise RhinoError("schedule deadlock in the timeline: a stage waits for a task that "
                             "never runs (the stage order of the dependencies is not pipelinable)")
    step = max(free) if rows else 0.0
    busy = [sum(e - b for st, _, _, b, e in rows if st == s) for s in range(stages)]
    bubble = 1.0 - sum(busy) / (stages * step) if step > 0 else 0.0
    return Timeline(step, bubble, busy, rows)
