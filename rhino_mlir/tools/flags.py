"""The flags `rhino plan`, `compile`, `run` and `demo` share (DESIGN.md "CLI"), in one place.

Plan flags: --cluster --memory --level --strategy --batch-args [--plan];
pipeline flags: --stages --microbatches --schedule.
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


def add_pipeline_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stages", type=int, metavar="N",
                   help="pipeline stages (each on devices/N of the cluster); default: no pipeline")
    p.add_argument("--microbatches", type=int, metavar="M",
                   help="micro-batches per step (must divide the batch); default 1")
    p.add_argument("--schedule", choices=("1f1b", "gpipe", "inference"), default=None,
                   help="pipeline schedule (default 1f1b; a forward-only program just streams)")


def wanted(a) -> bool:
    """A pipeline was asked for (`--stages 1` asks for one stage: no pipeline)."""
    return (getattr(a, "stages", None) or 1) > 1 or (getattr(a, "microbatches", None) or 1) > 1
