"""The planner's side of recomputation and accumulation: every candidate priced, checked.

training.py prices one candidate at one micro-batch count and recomputation policy;
here the planner's candidates get their best choice (the fastest that fits, searched
plans stopping at a K already slower than a known fit; the baselines searched in full),
the expert's baselines (each with full recomputation and the smallest accumulation that
fits) are added, and requests the program does not allow are refused in one line. The
planner checks a chosen plan near the budget with the memory model on the program as it
will be partitioned, through `Request.check` (tools/train_check.py: the passes it runs
sit above this layer).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from ...errors import RhinoError
from .evaluate import Space
from .train_facts import POLICIES, Facts
from .training import Choice, best

REMAT_CHOICES = ("auto",) + POLICIES


@dataclass
class Context:
    """What the single-stage search saw, for the pipeline search that follows (stages/joint.py)."""
    space: Space
    facts: Facts | None              # None: not a training step
    roles: object
    timer: object


class NoPlanFits(RhinoError):
    """No single-stage plan fits; `context` lets a pipeline search try next."""

    def __init__(self, msg: str, context: Context, baselines: list | None = None):
        super().__init__(msg)
        self.context = context
        self.baselines = baselines or []        # priced all the same, none fitting


# The expert's baselines: each with full recomputation and the smallest accumulation that fits.
EXPERT = ("dp", "zero3", "megatron", "dp-tp")
BASELINES = ("dp", "zero1", "zero2", "zero3", "megatron", "dp-tp")


def price_candidates(cands: list, space: Space, fx: Facts, budget: float, timer, remat: str,
                     microbatches: int | None) -> list:
    """Give each candidate its best (K, recomputation) in place (`train`, time, cost, memory
    from the memory model); returns the expert variants (dp/full, ...) as new candidates."""
    bound = float("inf")              # searched plans stop at a K already slower than a fit;
    for c in sorted(cands, key=lambda c: (c.name in BASELINES, c.time)):   # baselines in full
        fit, small = best(c, space, fx, budget, timer, remat, microbatches,
                          bound=float("inf") if c.name in BASELINES else bound)
        _set(c, fit or small)
        if fit is not None:
            bound = min(bound, fit.time)
    extra = []
    for c in cands:
        if c.name in EXPERT and fx.training is None and remat == "auto":
            fit, small = best(c, space, fx, budget, timer, "full", microbatches, smallest_k=True)
            v = copy.copy(c)
            v.name = f"{c.name}/full"
            _set(v, fit or small)
            extra.append(v)
    return extra


def _set(c, ch: Choice) -> None:
    if not hasattr(c, "base_cost"):
        c.base_cost = c.cost
    c.train, c.cost, c.time = ch, ch.cost, ch.time
    c.memory = dict(ch.memory, model_peak=ch.memory["peak"])


def check_request(fx: Facts, remat: str, microbatches: int | None) -> None:
    """One-line errors for choices the program does not allow."""
    if fx.training is not None:
        why = fx.training.split(": ", 1)[-1]
        if remat in ("selective", "full"):
            raise RhinoError(f"--remat {remat}: {why}")
        if microbatches not in (None, 1):
            raise RhinoError(f"--microbatches {microbatches}: {why}")
        return
    if microbatches not in (None, 1) and not fx.batch:
        raise RhinoError(f"--microbatches {microbatches}: @main's batch cannot be split into micro-batches "
                         f"(a value reduced over the whole batch is mixed back into per-example work); "
                         f"use --microbatches 1")
    if microbatches is not None and fx.batch and fx.batch % microbatches:
        raise RhinoError(f"--microbatches {microbatches} does not divide the batch of {fx.batch}; choose one "
                         f"of {', '.join(map(str, fx.divisors()))}")


def baseline_fields(c) -> dict:
    """The training choice of a baseline row: micro-batches and one word for recomputation."""
    ch = getattr(c, "train", None)
    if ch is None:
        return {"microbatches": 1, "remat": "none"}
    ps = set(ch.policies.values()) - {"none"}
    return {"microbatches": ch.microbatches,
            "remat": "none" if not ps else ps.pop() if len(ps) == 1 else "mixed"}


# training.py's memory is the memory model's on the program before the rewrite (within
# about 15% of it after); a plan above this share of the budget is checked (Request.check)
VERIFY_ABOVE = 0.8


def facts_for(module, g, dc, ro, req) -> Facts | None:
    """What recomputation and accumulation can do for the planner's request (train_facts.py),
    or None when the program is not a training step (its plans are priced as before)."""
    from . import train_facts
    if req.remat not in REMAT_CHOICES:
        raise RhinoError(f"unknown recomputation '{req.remat}' (choose from {', '.join(REMAT_CHOICES)})")
    fx = train_facts.facts(module, g, dc, ro, req.batch_args, getattr(req, "fold_first", True))
    check_request(fx, req.remat, req.microbatches)
    return fx if fx.training is None else None


def fill_plan(plan, best, fx: Facts | None) -> None:
    """The Plan's microbatches / remat / activation_bytes from the chosen candidate."""
    ch = getattr(best, "train", None)
    if fx is not None and ch is not None:
        plan.microbatches, plan.remat = ch.microbatches, ch.remat(fx)
        plan.activation_bytes = int(ch.activation_bytes)
