"""`rhino run` of a CNN train step with max pooling on 2 MPI ranks, --check.

The backward of the max pool is a stablehlo.select_and_scatter, which IREE 3.13 refuses:
the run only compiles through rhino-legalize-for-iree (in the lowering pipeline and in
--check's one-device reference). The ranks' outputs must also equal the same JAX train
step run by XLA on one device (DESIGN.md tolerances). ReLU zeros make whole pooling
windows tie, so the gradient depends on which element the select picks.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from harness.xla_oracle import assert_close
from rhino_mlir.frontend import lower
from rhino_mlir.tools.rhino import main as rhino_main


def forward(params, x):
    y = lax.conv_general_dilated(x, params["conv"], (1, 1), "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = jax.nn.relu(y + params["bias"])                                   # (B, 8, 8, 8)
    y = lax.reduce_window(y, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")   # (B, 4, 4, 8)
    return y.reshape(y.shape[0], -1) @ params["dense"]                    # (B, 10)


def train_step(params, x, labels):
    def loss(p):
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(forward(p, x)) * labels, axis=-1))
    value, grads = jax.value_and_grad(loss)(params)
    return jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads), value


@pytest.mark.slow
def test_cnn_train_step_with_max_pool_on_two_ranks(tmp_path, capsys):
    rng = np.random.default_rng(0)
    params = {"bias": rng.standard_normal(8).astype(np.float32) * 0.1 - 0.3,    # many ReLU zeros
              "conv": rng.standard_normal((3, 3, 3, 8)).astype(np.float32) * 0.3,
              "dense": rng.standard_normal((128, 10)).astype(np.float32) * 0.1}
    x = rng.standard_normal((4, 8, 8, 3)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 4)]
    text, _ = lower(train_step, params, x, labels)           # as `rhino export` writes it
    assert "stablehlo.select_and_scatter" in text
    prog = tmp_path / "cnn.mlir"
    prog.write_text(text)
    leaves = jax.tree_util.tree_leaves((params, x, labels))   # argument order of @main
    np.savez(tmp_path / "in.npz", **{f"arg{i}": a for i, a in enumerate(leaves)})
    rc = rhino_main(["run", str(prog), "-n", "2", "--cluster", "1x2xcpu", "--strategy", "dp",
                     "-o", str(tmp_path / "art"), "--inputs", str(tmp_path / "in.npz"),
                     "--outputs", str(tmp_path / "out.npz"), "--check"])
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    assert "check: ok" in out.out + out.err
    assert "select_and_scatter" in (tmp_path / "art" / "programs" / "main.mlir").read_text()
    got = np.load(tmp_path / "out.npz")
    want = jax.tree_util.tree_leaves(jax.jit(train_step)(params, x, labels))
    assert len(got.files) == len(want) == 4
    for i, w in enumerate(want):
        assert_close(got[f"out{i}"], np.asarray(w), np.asarray(w).dtype, f"out{i} vs XLA")
