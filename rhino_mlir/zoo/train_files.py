"""A zoo model's train step with the files `rhino train` reads: `rhino export --train-files DIR`.

    text, files = write_train_files(model, DIR, batches=3)

The step is lowered with its parameters and optimizer state donated (`tf.aliasing_output`),
which is what makes them carried state for `rhino train`; DIR gets
    init.npz           argJ = the global starting value of every carried argument (seeded
                       parameters, zero Adam moments and step; bf16 stored as uint16 bits)
    data/argJ.npy      every other argument (the batch) stacked over `batches` different
                       batches: shape (batches, *global shape); step k reads index k mod batches
Written under DIR.tmp-<pid> and renamed, so a failure leaves nothing half-written.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RhinoError


@dataclass
class TrainFiles:
    init: Path                  # DIR/init.npz
    data: Path                  # DIR/data
    n_carried: int              # arguments 0..n_carried-1 are carried
    n_outputs: int              # results of the step; the last is the loss


def _npy(x) -> np.ndarray:
    a = np.asarray(x)
    return a.view(np.uint16) if a.dtype.name == "bfloat16" else a


def write_train_files(model, out: str | Path, batches: int = 3, seed: int = 0) -> tuple[str, TrainFiles]:
    """(the donated train step's StableHLO, the files written under `out`)."""
    import jax
    if "train_step" not in model.fns:
        raise RhinoError(f"model '{model.name}' has no train_step; --train-files needs one")
    if batches < 1:
        raise RhinoError(f"--batches must be at least 1, got {batches}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RhinoError(f"{out} exists and is not empty; give a new directory for --train-files")
    text, info = model.lower("train_step", donate_argnums=(0, 1))
    params, opt, _ = model.args("train_step", seed=seed)
    carried = jax.tree_util.tree_leaves((params, opt))
    data = [model.batch(seed=seed + s) for s in range(batches)]
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "data").mkdir(parents=True)
        np.savez(tmp / "init.npz", **{f"arg{j}": _npy(x) for j, x in enumerate(carried)})
        leaves = [jax.tree_util.tree_leaves(b) for b in data]
        for b in range(len(leaves[0])):
            np.save(tmp / "data" / f"arg{len(carried) + b}.npy", np.stack([_npy(bt[b]) for bt in leaves]))
        if out.exists():
            out.rmdir()
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return text, TrainFiles(out / "init.npz", out / "data", len(carried), len(info.result_paths))
