"""Partitioner regressions on the product path: rhino-spmd-partition -> IREE -> MPI ranks
-> output assembly, against XLA on one device (issue 10; programs in
tests/harness/partitioner_cases.py, their XLA-oracle tests beside the code they test).

  index ops    scatter (add / max / overwrite) and gather with two index batch dims on a
               row-sharded table, indices outside the shard and outside the table: IREE
               wrote past the buffer (SIGSEGV on 4 ranks) where XLA skips the update;
  convolution  uneven spatial shards with strides, padding and dilations;
  pass-through results of `rhino run` (the argument itself, under another sharding).
"""
from __future__ import annotations

import numpy as np
import pytest

from harness.partitioner_cases import conv_program, index_program, passthrough_program
from harness.xla_oracle import assert_close, run_global
from rhino_mlir.launch.build.single_stage import compile_global
from rhino_mlir.launch.rank.launcher import launch
from rhino_mlir.tools.rhino import main as rhino_main


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("RHINO_CACHE", str(tmp_path_factory.mktemp("iree-cache")))
    yield
    mp.undo()


def run_ranks(text: str, args, n: int, tmp_path) -> list[np.ndarray]:
    art = compile_global(text, tmp_path / "art")
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(args)})
    # ranks may outnumber cores: no IREE worker threads (launcher docs, "Rank environment")
    res = launch(art, n, inputs=str(tmp_path / "in.npz"), timeout=180,
                 env={"RHINO_IREE_DRIVER": "local-sync"})
    assert not res.jax_imported
    return [res.outputs[f"out{i}"] for i in range(len(res.outputs))]


@pytest.mark.parametrize("n,implicit", [(4, False), pytest.param(2, True, marks=pytest.mark.slow)])
def test_index_ops_on_iree_ranks_equal_xla(cache, tmp_path, n, implicit):
    text, args = index_program(n, implicit)
    got = run_ranks(text, args, n, tmp_path)
    refs = run_global(text, args)
    assert len(got) == len(refs) == 5
    for i, (g, r) in enumerate(zip(got, refs)):
        assert_close(g, r, what=f"out{i}")


@pytest.mark.parametrize("n,case", [
    (4, (3, 3, 2, 2, 2, (1, 1), True)),            # strides 2, lhs and rhs dilation 2, NCHW
    pytest.param(8, (5, 3, 2, 1, 2, (1, 1), False), marks=pytest.mark.slow),
])
def test_conv_on_uneven_spatial_shards_on_iree_ranks(cache, tmp_path, n, case):
    text, args = conv_program(n, *case)
    (got,) = run_ranks(text, args, n, tmp_path)
    (ref,) = run_global(text, args)
    assert_close(got, ref, what="conv")


@pytest.mark.parametrize("n", [2, 4])
def test_rhino_run_passthrough_results(cache, tmp_path, capsys, n):
    text, (x,) = passthrough_program(n)
    src = tmp_path / "prog.mlir"
    src.write_text(text)
    np.savez(tmp_path / "in.npz", arg0=x)
    rc = rhino_main(["run", str(src), "-n", str(n), "-o", str(tmp_path / "art"), "--check",
                     "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "out.npz"),
                     "--timeout", "180"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "check: ok" in out.out
    with np.load(tmp_path / "out.npz", allow_pickle=False) as z:
        assert sorted(z.files) == [f"out{i}" for i in range(5)]
        for k in z.files:
            np.testing.assert_array_equal(z[k], x, err_msg=k)
