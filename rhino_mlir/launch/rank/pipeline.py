"""The pipeline controller: one stage's schedule as a task graph, over any transport.

A pipelined program (passes/pipeline_split.py) is a set of stage functions and a table of
boundary values. Each stage runs its tasks in the order of partition/stages/schedule.py (gpipe,
1f1b, inference), then its `update`, once. A task gathers its inputs (a whole or micro-batch-sliced
argument, a value stashed by an earlier task of this stage, one received from another
stage, or an accumulated value), calls the function and routes every result: to the
stashes and peers that consume it, into the accumulator of a value reduced over the
batch (combined across micro-batches with its combiner), and into the step's outputs.
Sends are asynchronous and receives block, so any schedule that is a topological order
per stage cannot deadlock.

`Stage` is transport-agnostic: `simulate` runs every stage in one process (tests, the
pass's own checks), launch/rank/pipeline_rank.py runs one stage per MPI rank group. Pure numpy:
rank processes import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...errors import RhinoError
from ...partition.stages.schedule import SCHEDULES, in_flight, schedule   # noqa: F401 (re-exported)

_COMBINE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


class PipelineError(RhinoError):
    """A pipeline that cannot run as asked."""


@dataclass
class Transport:
    """How a stage reaches its peers; `simulate` and pipeline_rank.py implement it."""
    send: Callable[[int, str, int | None, object], None]     # (dst stage, value id, mb, array)
    recv: Callable[[int, str, int | None], object]            # (src stage, value id, mb) -> array


@dataclass
class Stage:
    """One stage of the table, run by `call(fn name, inputs) -> outputs`."""
    table: dict
    stage: int
    call: Callable[[str, list], list]
    args: Callable[[str, int, int, int | None], object]      # (fn, input k, arg, mb) -> array
    transport: Transport
    kind: str = "gpipe"
    trace: list = field(default_factory=list)                 # (fn, mb, t0, t1) per task
    clock: Callable[[], float] | None = None

    def __post_init__(self):
        t = self.table
        self.fns = {f["name"]: f for f in t["functions"] if f["stage"] == self.stage}
        self.values = t["values"]
        self.stash: dict = {}
        self.left: dict = {}
        self.acc: dict = {}
        self.outputs: dict = {}                                # value id -> {mb: array} | array
        self.main_out = {o["value"] for o in t["outputs"] if "value" in o}

    def tasks(self) -> list[tuple[str, int | None]]:
        return schedule(self.kind, self.stage, self.table["stages"], self.table["microbatches"],
                        set(self.fns))

    # ------------------------------------------------------------------ inputs
    def _local_uses(self, vid: str) -> int:
        return sum(1 for t, _, _ in self.values[vid]["consumers"] if t == self.stage)

    def _take(self, key, src: int | None):
        if key not in self.stash:
            if src is None:
                raise PipelineError(f"stage {self.stage}: value {key[0]} of micro-batch {key[1]} "
                                    "is used before it is produced (schedule out of order)")
            self.stash[key] = self.transport.recv(src, *key)
            self.left[key] = self._local_uses(key[0])
        x = self.stash[key]
        self.left[key] -= 1
        if self.left[key] <= 0:
            del self.stash[key], self.left[key]
        return x

    def _input(self, fn: str, k: int, e: dict, mb: int | None):
        if e["kind"] == "arg":
            return self.args(fn, k, e["arg"], mb if e.get("dim") is not None else None)
        vid = e["value"]
        v = self.values[vid]
        src = None if v["stage"] == self.stage else v["stage"]
        if v["kind"] == "acc" and fn == "update":
            if src is None:
                return self.acc[vid]
            return self._take((vid, None), src)
        key = (vid, None if v["fn"] == "update" else mb)
        return self._take(key, src)

    # ------------------------------------------------------------------ outputs
    def _route(self, vid: str, mb: int | None, x) -> None:
        v = self.values[vid]
        if v["kind"] == "acc" and mb is not None:
            prev = self.acc.get(vid)
            self.acc[vid] = x if prev is None else _COMBINE[v["combiner"]](prev, x)
            return
        key = (vid, mb)
        sent = set()
        for t, fn, _ in v["consumers"]:
            if t == self.stage:
                if key not in self.stash:
                    self.stash[key] = x
                    self.left[key] = self._local_uses(vid)
            elif t not in sent:
                sent.add(t)
                self.transport.send(t, vid, mb, x)
        if vid in self.main_out:
            if mb is None:
                self.outputs[vid] = x
            else:
                self.outputs.setdefault(vid, {})[mb] = x

    def _flush_acc(self) -> None:
        """After the last micro-batch: accumulated values go to other stages' updates."""
        for vid, x in sorted(self.acc.items()):
            v = self.values[vid]
            for t in sorted({t for t, fn, _ in v["consumers"] if t != self.stage}):
                self.transport.send(t, vid, None, x)
            if vid in self.main_out:
                self.outputs[vid] = x

    def run(self) -> dict:
        """Run every task of this stage; returns this stage's share of the step's outputs."""
        for fn, mb in self.tasks():
            if fn == "update":
                self._flush_acc()
            self.step(fn, mb)
        if "update" not in self.fns:
            self._flush_acc()
        return self.outputs

    def remote(self, fn: str, mb: int | None) -> list[tuple[int, str, int | None]]:
        """(source stage, value id, micro-batch) this task still has to receive."""
        out = []
        for e in self.fns[fn]["inputs"]:
            if e["kind"] != "value":
                continue
            v = self.values[e["value"]]
            if v["stage"] == self.stage:
                continue
            key = (e["value"], None if v["fn"] == "update" or (v["kind"] == "acc" and fn == "update") else mb)
            if key not in self.stash:
                out.append((v["stage"], *key))
        return out

    def step(self, fn: str, mb: int | None) -> None:
        f = self.fns[fn]
        ins = [self._input(fn, k, e, mb) for k, e in enumerate(f["inputs"])]
        t0 = self.clock() if self.clock else 0.0
        outs = self.call(fn, ins)
        if self.clock:
            self.trace.append((fn, mb, t0, self.clock()))
        if len(outs) != len(f["outputs"]):
            raise PipelineError(f"stage {self.stage} @{fn} returned {len(outs)} values, "
                                f"expected {len(f['outputs'])}")
        for vid, x in zip(f["outputs"], outs):
            self._route(vid, mb, x)


# ----------------------------------------------------------------------------- global values

def micro_slice(x: np.ndarray, dim: int | None, mb: int | None, m: int) -> np.ndarray:
    """Micro-batch `mb` of `x`: the mb-th of m contiguous chunks along `dim`."""
    if dim is None or mb is None:
        return x
    n = x.shape[dim] // m
    return np.ascontiguousarray(np.take(x, range(mb * n, (mb + 1) * n), axis=dim))


def assemble_outputs(table: dict, per_value: dict, args: list) -> list[np.ndarray]:
    """@main's results from the outputs of every stage (global arrays)."""
    m = table["microbatches"]
    out = []
    for o in table["outputs"]:
        if "arg" in o:
            out.append(np.asarray(args[o["arg"]]))
            continue
        vid = o["value"]
        v = table["values"][vid]
        x = per_value[vid]
        if isinstance(x, dict):
            if v["dim"] is None:
                x = x[max(x)]
            else:
                x = np.concatenate([x[i] for i in range(m)], axis=v["dim"])
        out.append(np.asarray(x))
    return out


def simulate(table: dict, call: Callable[[int, str, list], list], args: list,
             kind: str = "gpipe") -> list[np.ndarray]:
    """Every stage in one process, round-robin over ready tasks: the reference semantics."""
    m = table["microbatches"]
    box: dict = {}

    def make(s: int) -> Stage:
        def send(t, vid, mb, x):
            box[(s, t, vid, mb)] = x

        def recv(src, vid, mb):
            return box.pop((src, s, vid, mb))
        ins = {f["name"]: f["inputs"] for f in table["functions"] if f["stage"] == s}
        return Stage(table, s, lambda fn, xs: call(s, fn, xs),
                     lambda fn, k, a, mb: micro_slice(np.asarray(args[a]), ins[fn][k].get("dim"), mb, m),
                     Transport(send, recv), kind)

    stages = [make(s) for s in range(table["stages"])]
    todo = {s: st.tasks() for s, st in enumerate(stages)}
    flushed: set[int] = set()
    while any(todo.values()):
        progress = False
        for s, st in enumerate(stages):
            while todo[s]:
                fn, mb = todo[s][0]
                if fn == "update" and s not in flushed:
                    st._flush_acc()
                    flushed.add(s)
                if any((src, s, vid, k) not in box for src, vid, k in st.remote(fn, mb)):
                    break
                st.step(fn, mb)
                todo[s].pop(0)
                progress = True
            if not todo[s] and s not in flushed:
                st._flush_acc()
                flushed.add(s)
                progress = True
        if not progress:
            raise PipelineError("pipeline deadlock: no stage can make progress "
                                f"({ {s: t[0] for s, t in todo.items() if t} })")
    merged: dict = {}
    for st in stages:
        merged.update(st.outputs)
    return assemble_outputs(table, merged, args)
