"""Loops whose body calls several collectives, on MPI ranks through IREE (the shape of every
accumulated data-parallel train step: one all_reduce per reduced value, each micro-batch).

IREE 3.13 with its default reusable (indirect) command buffers rejects such a body at run
time once it holds three or more imports ("indirect buffer reference slot 0 is out range");
launch/build/iree_compile.py turns them off. Fails without that flag."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhino_mlir.frontend import annotate, lower
from rhino_mlir.launch.artifact import read_artifact
from rhino_mlir.launch.build.check import compare
from rhino_mlir.launch.build.single_stage import compile_global
from rhino_mlir.launch.rank.launcher import launch
from rhino_mlir.sharding import Mesh


def loop_of_reductions(x):
    # x (8, 4) sharded on rows: each iteration all-reduces x^T x, sum(x) and sum over rows
    def body(i, c):
        a, b, d = c
        return a + x.T @ x, b + jnp.sum(x) * i, d + jnp.sum(x, axis=0)
    return jax.lax.fori_loop(0, 3, body, (jnp.zeros((4, 4)), jnp.zeros(()), jnp.zeros((4,))))


@pytest.mark.parametrize("n", [2, 4])
def test_three_collectives_per_iteration(tmp_path, n):
    x = np.arange(32.0, dtype=np.float32).reshape(8, 4) / 7.0
    text, _ = lower(loop_of_reductions, x)
    art_dir = compile_global(annotate(text, Mesh("mesh", (("x", n),)), [("x", None)]), tmp_path / "art")
    np.savez(tmp_path / "in.npz", arg0=x)
    res = launch(art_dir, n, inputs=str(tmp_path / "in.npz"), timeout=180)
    assert res.collective_calls >= 3 * 3                      # three per iteration, three iterations
    refs = [np.asarray(r) for r in jax.jit(loop_of_reductions)(x)]
    cr = compare(res.outputs, refs, read_artifact(art_dir).outputs)
    assert cr.ok, cr.line()
