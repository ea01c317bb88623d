"""`--check` (launch/build/check.py): passes on rounding noise, FAILS on real bugs.

The program (tests/harness/check_mutants.py) is an Adam step from zero moments of a
causal attention layer whose sequence is split over 2 devices. Its key-bias gradient is
zero in exact arithmetic, so that gradient's Adam moments and update are rounding noise
on both sides: the old rule (tolerance relative to the output itself) reported them as
FAILED. Mutants of the local program (swapped shards, a wrong partition_id offset, a
dropped all_reduce) must still FAIL, naming only outputs the mutation reaches.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from harness import check_mutants as cm
from rhino_mlir.launch.artifact import read_artifact
from rhino_mlir.launch.build.check import (NOISE_FACTOR, References, compare, noise_of, perturb,
                                           reference_outputs)
from rhino_mlir.launch.build.single_stage import compile_global

BK = ("[1]['bk']", "[2]['bk']", "[3]['bk']")      # params', m', v' of the key bias


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    text, inputs, jax_refs, paths = cm.annotated_attention(2)
    root = tmp_path_factory.mktemp("check")
    art_dir = compile_global(text, root / "art")
    art = read_artifact(art_dir, verify=False)
    local = (art_dir / "programs" / "main.mlir").read_text()
    refs = reference_outputs(art, inputs)
    outs, _ = cm.run_local_threads(local, text, inputs, root / "base")
    return dict(text=text, inputs=inputs, jax_refs=jax_refs, paths=paths, root=root,
                art_dir=art_dir, art=art, local=local, refs=refs, outs=outs)


def named(line: str) -> set[int]:
    return {int(k) for k in re.findall(r"\bout(\d+):", line)}


def test_perturb_moves_each_float_one_ulp():
    import ml_dtypes
    x = np.array([1.5, -2.25, 0.0, 3.0, np.inf, np.nan, 3e38, 1e-45, 0.1], np.float32)
    ids = np.arange(5, dtype=np.int32)
    scalar = np.float32(0.3)
    bf = np.array([1.5, -3.5, 2.0], ml_dtypes.bfloat16)
    px, pids, ps, pbf = perturb([x, ids, scalar, bf], seed=1)
    frac = [0, 1, 7, 8]                               # finite, non-integral
    moved = np.abs(px[frac].astype(np.float64) - x[frac])
    ulp = np.spacing(np.abs(x[frac])).astype(np.float64)
    assert np.all(moved > 0) and np.all(moved <= ulp * 1.0001), (moved, ulp)
    # zeros, integral values (masks, counters: 3e38 is one too), inf, nan: untouched
    assert px[2] == 0 and px[3] == 3.0 and px[6] == x[6] and np.isinf(px[4]) and np.isnan(px[5])
    assert np.array_equal(pids, ids) and pids.dtype == np.int32
    assert ps.shape == () and ps != scalar and ps.dtype == np.float32
    assert pbf.dtype == bf.dtype and np.all(pbf[:2] != bf[:2]) and pbf[2] == 2.0
    assert np.array_equal(perturb([x], seed=1)[0], px, equal_nan=True)     # seeded


def test_garbage_that_moves_between_runs_is_not_noise():
    # a read past a buffer gives other garbage on the rerun too: the noise floor must not
    # cover differences that are huge against the program's scale (issue 10: 7.5e13 "ok")
    from rhino_mlir.launch.rank.layout import ValueSpec
    spec = [ValueSpec("out0", "float32", (4,), None)]
    ref = np.array([1.0, 5.0, 3.0, 7.4e13], np.float32)
    got = {"out0": np.array([1.0, 5.0, 3.0, 2.0], np.float32)}
    refs = References([ref], noise=[7.4e13], input_scale=5.0)
    assert not compare(got, refs, spec).ok
    # noise at rounding size against the same scale still passes
    tiny = np.array([1e-26, -3e-27, 0.0, 2e-26], np.float32)
    refs = References([tiny], noise=[4e-26], input_scale=5.0)
    cr = compare({"out0": np.array([-2e-26, 1e-26, 5e-27, 0.0], np.float32)}, refs, spec)
    assert cr.ok and cr.noisy == ("out0",)


def test_noise_outputs_pass_and_old_rule_cried_wolf(case):
    art, refs, outs, paths = case["art"], case["refs"], case["outs"], case["paths"]
    bk = {paths.index(p) for p in BK}
    old = compare(outs, list(refs), art.outputs)              # no noise: the old rule
    assert not old.ok and named(old.line()) & bk, old.line()
    assert named(old.line()) <= bk, old.line()                # only the key-bias family
    cr = compare(outs, refs, art.outputs)
    assert cr.ok, cr.line()
    assert {int(n[3:]) for n in cr.noisy} <= bk and "rounding noise" in cr.line(), cr.line()
    # elsewhere the floor stays near the DESIGN.md tolerance (1e-5 of the output's size):
    # only outputs that rounding really moves get more
    for k, s in enumerate(art.outputs):
        if k not in bk:
            assert refs.noise[k] * NOISE_FACTOR < 1e-4 * np.max(np.abs(refs[k])), s.name


def test_ranks_equal_jax_within_noise(case):
    """The same rule against JAX on one device: XLA's noise from its own perturbed rerun."""
    import jax
    args = cm.attention_args()
    tree = jax.tree_util.tree_structure(args)
    f = jax.jit(cm.attention_step)
    rerun = jax.tree_util.tree_leaves(f(*jax.tree_util.tree_unflatten(tree, perturb(case["inputs"]))))
    refs = References(case["jax_refs"], noise_of(case["jax_refs"], [np.asarray(r) for r in rerun]))
    cr = compare(case["outs"], refs, case["art"].outputs)
    assert cr.ok, cr.line()


@pytest.mark.parametrize("table", [pytest.param([1, 0], id="swapped-shards"),
                                   pytest.param([0, 0], id="wrong-offset", marks=pytest.mark.slow)])
def test_wrong_shard_offset_fails(case, table):
    text, const = cm.shard_table(case["local"], table)
    outs, _ = cm.run_local_threads(text, case["text"], case["inputs"], case["root"] / f"t{table}")
    cr = compare(outs, case["refs"], case["art"].outputs)
    assert not cr.ok and cr.line().startswith("check: FAILED"), cr.line()
    hit = named(cr.line())
    assert 0 in hit, cr.line()                                # the loss itself is wrong
    assert hit <= cm.outputs_reached(case["local"], const), cr.line()


@pytest.mark.parametrize("k", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_missing_all_reduce_fails(case, k):
    text, res = cm.drop_all_reduce(case["local"], k)
    reached = cm.outputs_reached(case["local"], res)
    outs, _ = cm.run_local_threads(text, case["text"], case["inputs"], case["root"] / f"d{k}")
    cr = compare(outs, case["refs"], case["art"].outputs)
    assert not cr.ok, cr.line()
    assert named(cr.line()) and named(cr.line()) <= reached, (cr.line(), reached)


@pytest.mark.slow
def test_cli_check_on_ranks(case, tmp_path):
    """`rhino launch --check` on 2 MPI ranks: ok (noise named) on the program, FAILED
    naming outputs (exit 1) on a mutant."""
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(case["inputs"])})
    cmd = [sys.executable, "-m", "rhino_mlir.tools.rhino", "launch", "-n", "2", "--check",
           "--inputs", str(tmp_path / "in.npz")]
    good = subprocess.run(cmd[:4] + [str(case["art_dir"])] + cmd[4:], capture_output=True, text=True,
                          timeout=300)
    assert good.returncode == 0 and "check: ok" in good.stdout and "rounding noise" in good.stdout, \
        good.stdout + good.stderr
    from rhino_mlir.launch.build.single_stage import compile_local
    bad_dir = compile_local(cm.shard_table(case["local"], [1, 0])[0], tmp_path / "bad",
                            global_text=case["text"])
    bad = subprocess.run(cmd[:4] + [str(bad_dir)] + cmd[4:], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "check: FAILED (out0:" in bad.stdout, bad.stdout + bad.stderr


def test_nan_where_the_reference_has_nan_is_equal():
    # random inputs to an Adam step give NaN (sqrt of a negative v) on both sides: the
    # tolerance must come from the finite values, not turn NaN and fail everything
    from rhino_mlir.launch.rank.layout import ValueSpec
    spec = [ValueSpec("out0", "float32", (3,), None)]
    ref = np.array([1.0, np.nan, 3.0], np.float32)
    cr = compare({"out0": np.array([1.0, np.nan, 3.0000001], np.float32)}, References([ref]), spec)
    assert cr.ok and cr.errors["out0"] < 1e-6, cr.line()
    assert not compare({"out0": np.array([1.0, 2.0, 3.0], np.float32)}, References([ref]), spec).ok
