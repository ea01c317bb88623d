"""The flags `rhino plan`, `compile`, `run` and `demo` share (DESIGN.md "CLI"), in one place.

Plan flags: --cluster --memory --level --strategy --batch-args [--plan];
training flags: --stages auto|S --microbatches auto|K --remat auto|none|selective|full
--schedule. `auto` (the default) leaves the choice to the planner; `normalize` turns
--stages/--microbatches into an int or None before any command reads them.
"""
from __future__ import annotations

import argparse

from ..errors import RhinoError


def add_plan_flags(p: argparse.ArgumentParser, with_plan: bool = True) -> None:
    p.add_argument("--cluster", metavar="SPEC", help="cluster: 1x4xcpu, 2x8xH100, 1x8xA100+1x8xV100, "
                   "or a JSON cluster file; without it the shardings in the IR are used")
    p.add_argument("--memory", metavar="SIZE", help="memory per device (80GiB, 512MiB, bytes); "
                   "default: the device profile's")
    p.add_argument("--level", choices=("O2", "O3"), default="O2", help="O2 fast search, O3 adds the ILP")
    p.add_argument("--strategy", default="auto", choices=("auto", "dp", "zero1", "zero2", "zero3", "megatron", "dp-tp"),
                   help="auto: search; otherwise that baseline plan")
    p.add_argument("--batch-args", metavar="I,J", help="argument indices whose dim 0 is the batch")
    if with_plan:
        p.add_argument("--plan", metavar="FILE", help="apply this plan.json (made by rhino plan)")


def batch_args(a) -> list[int] | None:
    if not getattr(a, "batch_args", None):
        return None
    try:
        return [int(x) for x in a.batch_args.split(",") if x.strip()]
    except ValueError:
        raise RhinoError(f"--batch-args expects comma-separated argument indices, got '{a.batch_args}'") from None


REMAT = ("auto", "none", "selective", "full")


def add_pipeline_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stages", default="auto", metavar="auto|S",
                   help="pipeline stages, each on devices/S of the cluster (default auto: the planner "
                   "weighs pipelines on multi-node clusters; 1: no pipeline)")
    p.add_argument("--microbatches", default="auto", metavar="auto|K",
                   help="micro-batches per step, dividing the batch: gradient accumulation in one "
                   "program, or a pipeline's micro-batches with --stages (default auto)")
    p.add_argument("--remat", default="auto", choices=REMAT,
                   help="activation recomputation per layer group (default auto: the planner's "
                   "choice under the memory budget)")
    p.add_argument("--schedule", choices=("1f1b", "gpipe", "inference"), default=None,
                   help="pipeline schedule (default 1f1b; a forward-only program just streams)")


def _count(a, flag: str) -> int | None:
    raw = getattr(a, flag, None)
    if raw is None or isinstance(raw, int):
        return raw
    if raw == "auto":
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise RhinoError(f"--{flag} expects auto or a positive integer, got '{raw}'")
    return n


def normalize(a) -> None:
    """--stages / --microbatches as int (or None for auto); one-line errors otherwise."""
    for flag in ("stages", "microbatches"):
        if hasattr(a, flag):
            setattr(a, flag, _count(a, flag))


def wanted(a) -> bool:
    """A pipeline was asked for: --stages S > 1 (`--stages 1` and `--microbatches K` alone
    plan a single stage, with K micro-batches accumulated in one program)."""
    return (getattr(a, "stages", None) or 1) > 1
