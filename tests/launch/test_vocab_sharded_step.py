"""Issue 10's rank SIGSEGV, reproduced small: a vocabulary-sharded embedding train step.

keras-hub's GPT-2 train step planned under a tight budget on 4 ranks shards the token
embedding over the vocabulary. Each device then shifts the token ids by its shard's start,
so most ids point outside its local rows, in the forward gather and in the gradient's
scatter-add. IREE 3.13 neither clamps a gather index nor skips an out-of-bounds scatter
update: the scatter wrote past the local table into the rank's heap ("double free or
corruption", SIGSEGV in the next malloc of the rhino module; with worker threads, silently
wrong gradients instead). The same local program is right on XLA, which honours the
StableHLO bounds rules; the ranks' buffers were not at fault.

The program here has the same shape of problem in ~40 ops: a tied embedding (gather for
the input, a matmul against the table for the logits), cross-entropy, SGD. Planned by
`rhino run` under the smallest budget that fits on 4 CPU ranks, the table is sharded on
the vocabulary; the run must finish and match JAX on one device.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness.product_run import local_arg_types, rhino_run, tightest_budget
from rhino_mlir.launch.build.check import compare
from rhino_mlir.launch.rank.layout import ValueSpec

V, H, B, S = 256, 16, 2, 8


def tied_embedding_step(table, w, ids, labels):
    import jax
    import jax.numpy as jnp

    def loss(table, w):
        h = jnp.tanh(table[ids] @ w)                   # (B, S, H): gather rows of the table
        logits = h @ table.T                           # (B, S, V): the tied output layer
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))
    lval, (g_table, g_w) = jax.value_and_grad(loss, argnums=(0, 1))(table, w)   # scatter-add
    return lval, table - 0.1 * g_table, w - 0.1 * g_w


def test_vocab_sharded_embedding_step_on_4_ranks(tmp_path):
    import jax
    from rhino_mlir.frontend import lower
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((V, H)).astype(np.float32),
            rng.standard_normal((H, H)).astype(np.float32),
            rng.integers(0, V, (B, S)).astype(np.int32),
            rng.integers(0, V, (B, S)).astype(np.int32))
    text, _ = lower(tied_embedding_step, *args)
    (tmp_path / "step.mlir").write_text(text)
    np.savez(tmp_path / "in.npz", **{f"arg{i}": a for i, a in enumerate(args)})
    budget = tightest_budget(tmp_path / "step.mlir", "1x4xcpu")
    # local-sync: no IREE worker threads (4 ranks on 2 cores); it is also where the
    # out-of-bounds scatter crashed the rank instead of corrupting numbers quietly
    r = rhino_run(tmp_path / "step.mlir", tmp_path / "in.npz", tmp_path / "run", 4, "1x4xcpu",
                  budget, env={"RHINO_IREE_DRIVER": "local-sync"})
    assert r.returncode == 0, f"--memory {budget}: {r.stdout}{r.stderr}"
    table_type = local_arg_types(r.artifact)[0]
    if table_type != f"tensor<{V // 4}x{H}xf32>":
        pytest.fail(f"the planner no longer shards the table on the vocabulary at --memory "
                    f"{budget} (local {table_type}): this test lost its condition")
    assert r.check_line.startswith("check: ok"), r.stdout
    refs = [np.asarray(x) for x in jax.jit(tied_embedding_step)(*args)]
    specs = [ValueSpec(f"out{i}", str(x.dtype), x.shape, None) for i, x in enumerate(refs)]
    cr = compare(r.outputs, refs, specs)
    assert cr.ok, cr.line()
