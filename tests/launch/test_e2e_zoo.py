"""End to end on 2, 4 and 8 MPI ranks: JAX program -> annotate -> rhino-propagate +
rhino-spmd-partition -> rhino-lower-collectives -> IREE -> mpiexec, equal to the same JAX
function run by XLA on one device (DESIGN.md tolerances).

Programs: the zoo MLP forward, the zoo transformer block, the MLP SGD train step with
data-parallel gradients, and an embedding gather (vocabulary-sharded table, uneven
shards). Every case checks the numbers, that the partitioned program really moved data
(rhino runtime calls), and that no rank imported jax.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhino_mlir import zoo
from rhino_mlir.frontend import annotate, lower
from rhino_mlir.launch.artifact import read_artifact
from rhino_mlir.launch.build.single_stage import compile_global
from rhino_mlir.launch.build.check import compare
from rhino_mlir.launch.rank.launcher import launch
from rhino_mlir.sharding import Mesh


def mesh(*axes) -> Mesh:
    return Mesh("mesh", tuple(axes))


# name -> n -> (mesh, {argument path regex: spec}); unmatched arguments are replicated
MLP_PARAMS = r"\[0\]\['layers'\]"
CASES = {
    "mlp_forward": {                                    # x (8, 16) -> 32 -> 8
        2: (mesh(("x", 2)), {r"^\[1\]$": ("x", None)}),                          # data
        4: (mesh(("x", 2), ("y", 2)), {r"^\[1\]$": ("x", None),                 # data x Megatron
                                       r"\[0\]\['w'\]": (None, "y"), r"\[0\]\['b'\]": ("y",),
                                       r"\[1\]\['w'\]": ("y", None)}),
        8: (mesh(("x", 2), ("y", 4)), {r"\[0\]\['w'\]": ("x", "y"),             # both axes on a
                                       r"^\[1\]$": (None, "x")}),               # contraction
    },
    "transformer_block": {                              # x (4, 8, 16), 4 heads, hidden 64
        2: (mesh(("y", 2)), {r"w_qkv|w_fc": (None, "y"), r"b_qkv|b_fc": ("y",),
                             r"w_o|w_proj": ("y", None)}),
        4: (mesh(("x", 2), ("y", 2)), {r"^\[1\]$": ("x", None, None), r"w_qkv|w_fc": (None, "y"),
                                       r"b_qkv|b_fc": ("y",), r"w_o|w_proj": ("y", None)}),
        8: (mesh(("x", 2), ("y", 4)), {r"^\[1\]$": ("x", None, None), r"w_qkv|w_fc": (None, "y"),
                                       r"b_qkv|b_fc": ("y",), r"w_o|w_proj": ("y", None)}),
    },
    "mlp_train_dp": {                                   # batch (8, 16), (8, 8) on every device
        n: (mesh(("x", n)), {r"^\[1\]\[\d\]$": ("x", None)}) for n in (2, 4, 8)
    },
    "embedding_gather": {                               # table (50, 8), ids (4, 6)
        2: (mesh(("x", 2)), {r"^\[0\]$": ("x", None)}),                          # 25 rows each
        4: (mesh(("x", 4)), {r"^\[0\]$": ("x", None)}),                          # 13, 13, 13, 11
        8: (mesh(("x", 2), ("y", 4)), {r"^\[0\]$": ("y", None), r"^\[1\]$": ("x", None)}),
    },
}
SLOW: set = set()
NO_COMM = {("mlp_forward", 2)}


def program(name: str):
    """(fn, example args) of a case; args are concrete numpy values."""
    if name == "mlp_forward":
        m = zoo.get("mlp")
        return m.fns["forward"], m.args("forward")
    if name == "transformer_block":
        m = zoo.get("transformer-block", batch=4, seq=8, d_model=16, n_head=4)
        return m.fns["forward"], m.args("forward")
    if name == "mlp_train_dp":
        m = zoo.get("mlp")
        return m.fns["train_step_sgd"], m.args("train_step_sgd")

    def gather(table, ids):                            # table (V, 8), ids (4, 6) int32
        e = table[ids]                                 # (4, 6, 8)
        return e * 2.0, jnp.sum(e, axis=(1, 2))
    rng = np.random.default_rng(3)
    return gather, (rng.standard_normal((50, 8)).astype(np.float32),
                    rng.integers(0, 50, (4, 6)).astype(np.int32))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("RHINO_CACHE", str(tmp_path_factory.mktemp("iree-cache")))
    yield
    mp.undo()


def run_case(name: str, n: int, tmp_path):
    fn, args = program(name)
    msh, specs = CASES[name][n]
    assert msh.size == n
    text, info = lower(fn, *args)
    shardings = [next((s for pat, s in specs.items() if re.search(pat, p)), None)
                 for p in info.arg_paths]
    assert any(shardings), f"{name}: no argument matched a spec"
    art_dir = compile_global(annotate(text, msh, shardings), tmp_path / "art")
    flat = [np.asarray(x) for x in jax.tree_util.tree_leaves(args)]
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(flat)})
    # ranks may outnumber cores: no IREE worker threads (launcher docs, "Rank environment")
    res = launch(art_dir, n, inputs=str(tmp_path / "in.npz"), timeout=180,
                 env={"RHINO_IREE_DRIVER": "local-sync"})
    refs = [np.asarray(r) for r in jax.tree_util.tree_leaves(jax.jit(fn)(*args))]
    art = read_artifact(art_dir, verify=False)
    return res, refs, art


@pytest.mark.parametrize("name,n", [
    pytest.param(name, n, id=f"{name}-{n}", marks=[pytest.mark.slow] if (name, n) in SLOW else [])
    for name in CASES for n in (2, 4, 8)])
def test_equals_single_device(cache, tmp_path, name, n):
    res, refs, art = run_case(name, n, tmp_path)
    assert len(res.outputs) == len(refs) == len(art.outputs)
    cr = compare(res.outputs, refs, art.outputs)
    assert cr.ok, cr.line()
    assert not res.jax_imported
    imports = art.manifest["programs"]["main"]["imports"]
    moves = [i for i in imports if i != "rhino.partition_id"]
    if (name, n) in NO_COMM:
        # batch-sharded forward: nothing to exchange, the output stays sharded like the batch
        assert not moves, imports
        assert '{"x"}' in art.outputs[0].sharding
    else:
        assert moves and res.collective_calls > 0, imports     # the ranks exchanged data
    if name == "mlp_train_dp":
        # data-parallel gradients: summed over the batch shards by an all_reduce, and the
        # updated parameters come back whole (replicated) on every rank
        assert any(i.startswith("rhino.all_reduce.sum") for i in imports), imports
        params_out = [s for s in art.outputs if s.shape != ()][:4]
        assert len(params_out) == 4 and all('"' not in (s.sharding or "") for s in params_out), \
            [s.sharding for s in params_out]                    # no axis named: replicated
