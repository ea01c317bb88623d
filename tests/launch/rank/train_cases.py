"""Train-step artifacts, their --init/--data files and the same loop in JAX on one device.

A case is a zoo model's "train_step" (forward + backward + Adam) lowered with its
parameters and optimizer state donated (tf.aliasing_output), so `rhino train` carries
them; the batch is the data: `steps_in_data` different batches, step k uses k mod that.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from rhino_mlir import zoo
from rhino_mlir.zoo.train_files import write_train_files


@dataclass
class Case:
    text: str                     # the global program
    init: Path                    # npz: argJ for every carried argument
    data: Path                    # DIR/argJ.npy for every batch argument
    n_carried: int
    loss_key: str                 # out<i> of the loss in the metrics records
    model: object
    batches: list


def make_case(tmp: Path, name: str, steps_in_data: int = 3, **cfg) -> Case:
    """The product's `rhino export --train-files` (zoo/train_files.py) under tmp/files."""
    m = zoo.get(name, **cfg)
    tmp.mkdir(parents=True, exist_ok=True)
    text, tf = write_train_files(m, tmp / "files", batches=steps_in_data)
    batches = [m.batch(seed=s) for s in range(steps_in_data)]
    return Case(text, tf.init, tf.data, tf.n_carried, f"out{tf.n_outputs - 1}", m, batches)


def reference(case: Case, steps: int) -> tuple[list[float], dict[str, np.ndarray]]:
    """Per-step losses and final carried values (argJ) of the same loop in JAX, one device."""
    params, opt, _ = case.model.args("train_step")
    step = jax.jit(case.model.fns["train_step"])
    losses = []
    for k in range(steps):
        params, opt, loss = step(params, opt, case.batches[k % len(case.batches)])
        losses.append(float(loss))
    leaves = jax.tree_util.tree_leaves((params, opt))
    return losses, {f"arg{j}": np.asarray(x) for j, x in enumerate(leaves)}


def compile_case(case: Case, out: Path, cluster: str, strategy: str = "auto", stages: int = 1,
                 microbatches: int = 1) -> Path:
    """`rhino compile` of the case's program: planned for `cluster`, or pipelined."""
    if stages > 1 or microbatches > 1:
        from rhino_mlir.launch.build.pipelined import compile_pipeline
        return compile_pipeline(case.text, out, cluster, stages, microbatches)
    from rhino_mlir.launch.build.single_stage import compile_global
    from rhino_mlir.tools.plan_cmd import plan_text
    a = argparse.Namespace(cluster=cluster, memory=None, level="O2", strategy=strategy,
                           batch_args=None, plan=None)
    planned, plan = plan_text(a, case.text, "train_step", progress=False)
    return compile_global(planned, out, plan_text=plan.to_json() if plan else None)


def close(got: np.ndarray, want: np.ndarray, rtol: float) -> bool:
    """DESIGN.md's float tolerance: rtol with atol = rtol * max|reference|."""
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return bool(np.allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1e-30)))


def worst(final: dict, want: dict, rtol: float) -> list[str]:
    """Names of the carried arrays that differ from the reference."""
    assert sorted(final) == sorted(want), (sorted(final), sorted(want))
    return [k for k in want if not close(final[k], want[k], rtol)]
