"""End to end under mpiexec: compile hand-written local programs, launch, compare.

Local programs are written by hand until rhino-spmd-partition lands (tests/launch/programs).
"""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from rhino_mlir.errors import RhinoError
from rhino_mlir.launch.artifact import read_artifact
from rhino_mlir.launch.build.single_stage import compile_local
from rhino_mlir.launch.rank.launcher import LaunchError, launch
from rhino_mlir.tools.rhino import main as rhino_main

import dtype_program

PROGRAMS = Path(__file__).parent / "programs"


def expected_collectives(a, b):
    """Global outputs of collectives_4.mlir and their shardings (see the program)."""
    i32 = np.arange(4, dtype=np.int32)
    return [(a, '#sdy.sharding<@mesh, [{"x"}, {}]>'),
            (a, '#sdy.sharding<@mesh, [{}, {"y"}]>'),
            (a[:4, :4] + a[:4, 4:] + a[4:, :4] + a[4:, 4:], None),
            (a[:4] + a[4:], '#sdy.sharding<@mesh, [{"x"}, {"y"}]>'),
            (b, '#sdy.sharding<@mesh, [{"y"}, {}]>'),
            (b, '#sdy.sharding<@mesh, [{}, {"y"}]>'),
            (np.concatenate([a[:, 4:], a[:, :4]], 1), '#sdy.sharding<@mesh, [{"x"}, {"y"}]>'),
            (i32, '#sdy.sharding<@mesh, [{"x", "y"}]>')]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    old = os.environ.get("RHINO_CACHE")
    os.environ["RHINO_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("RHINO_CACHE", None)
    else:
        os.environ["RHINO_CACHE"] = old


@pytest.fixture(scope="module")
def dot_art(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("a") / "dot"
    return compile_local((PROGRAMS / "dot_allreduce_2.mlir").read_text(), out,
                         global_text=(PROGRAMS / "dot_global.mlir").read_text())


def _inputs(tmp_path, **arrays):
    p = tmp_path / "in.npz"
    np.savez(p, **arrays)
    return str(p)


def test_dot_allreduce_2_ranks(dot_art, tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    res = launch(dot_art, 2, inputs=_inputs(tmp_path, arg0=a, arg1=b),
                 outputs=str(tmp_path / "out.npz"), timeout=60)
    np.testing.assert_allclose(res.outputs["out0"], np.tanh(a @ b), rtol=1e-5, atol=1e-5)
    assert res.collective_calls == 1
    assert not res.jax_imported            # DESIGN: rank processes never import jax
    with np.load(tmp_path / "out.npz", allow_pickle=False) as z:
        assert z.files == ["out0"]


def test_collectives_4_ranks(cache, tmp_path):
    art = compile_local((PROGRAMS / "collectives_4.mlir").read_text(), tmp_path / "art")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((8, 8)).astype(np.float32), rng.standard_normal((8, 8)).astype(np.float32)
    res = launch(art, 4, inputs=_inputs(tmp_path, arg0=a, arg1=b), timeout=90)
    for k, (want, _) in enumerate(expected_collectives(a, b)):
        np.testing.assert_allclose(res.outputs[f"out{k}"], want, rtol=1e-6, atol=1e-5, err_msg=f"out{k}")


@pytest.mark.slow
def test_every_dtype_2_ranks(cache, tmp_path):
    art = compile_local(dtype_program.program(), tmp_path / "art")
    xs = dtype_program.inputs()
    from rhino_mlir.launch.rank.layout import to_wire
    res = launch(art, 2, inputs=_inputs(tmp_path, **{f"arg{k}": to_wire(x) for k, x in enumerate(xs)}),
                 timeout=90)
    dtype_program.check([res.outputs[f"out{k}"] for k in range(len(res.outputs))], xs)


def test_cli_run_check(dot_art, capsys):
    rc = rhino_main(["launch", str(dot_art), "-n", "2", "--check", "--timeout", "60"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "check: ok, max error" in out


def test_killed_rank_is_named_within_timeout(dot_art):
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match=r"rank 1 on \S+ killed by signal 9 \(SIGKILL\)"):
        launch(dot_art, 2, timeout=30, env={"RHINO_TEST_KILL_RANK": "1"})
    assert time.monotonic() - t0 < 30


def test_hung_rank_hits_timeout(dot_art):
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match=r"timed out after 3 s: rank 1 stuck in 'loading'; "
                                          r"rank 0 waiting in 'running'"):
        launch(dot_art, 2, timeout=3, env={"RHINO_TEST_HANG_RANK": "1"})
    assert time.monotonic() - t0 < 10


def test_hostfile_localhost_twice(dot_art, tmp_path):
    hf = tmp_path / "hosts"
    hf.write_text("localhost:1\nlocalhost:1\n")
    res = launch(dot_art, 2, hostfile=str(hf), mpiexec_args=["-launcher", "fork"], timeout=60)
    assert res.outputs["out0"].shape == (4, 5)


@pytest.mark.slow
def test_hostfile_two_hosts_two_ranks_each(cache, tmp_path):
    art = compile_local((PROGRAMS / "collectives_4.mlir").read_text(), tmp_path / "art")
    hf = tmp_path / "hosts"
    hf.write_text("localhost:2\nlocalhost:2\n")
    res = launch(art, 4, hostfile=str(hf), mpiexec_args=["-launcher", "fork"], timeout=90)
    a, b = res.inputs
    for k, (want, _) in enumerate(expected_collectives(a, b)):
        np.testing.assert_allclose(res.outputs[f"out{k}"], want, rtol=1e-6, atol=1e-5)


def test_bad_launches_are_one_line(dot_art, tmp_path, capsys):
    with pytest.raises(LaunchError, match="-n 3 does not match the artifact: it was compiled for 2"):
        launch(dot_art, 3)
    bad = _inputs(tmp_path, arg0=np.zeros((4, 6), np.float32), arg1=np.zeros((6, 4), np.float32))
    with pytest.raises(RhinoError, match=r"input arg1: shape \[6, 4\] but the program expects \[6, 5\]"):
        launch(dot_art, 2, inputs=bad)
    bad = _inputs(tmp_path, arg0=np.zeros((4, 6), np.float64), arg1=np.zeros((6, 5), np.float32))
    with pytest.raises(RhinoError, match="input arg0: dtype float64 but the program expects float32"):
        launch(dot_art, 2, inputs=bad)
    bad = _inputs(tmp_path, arg0=np.zeros((4, 6), np.float32))
    with pytest.raises(RhinoError, match=r"has 1 array\(s\) \(arg0\) but the program takes 2"):
        launch(dot_art, 2, inputs=bad)
    rc = rhino_main(["launch", str(dot_art), "-n", "5"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("rhino launch: error: -n 5")


def test_corrupt_executable_via_cli(dot_art, tmp_path, capsys):
    import shutil
    art = tmp_path / "copy"
    shutil.copytree(dot_art, art)
    vmfb = next((art / "executables").iterdir())
    data = bytearray(vmfb.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vmfb.write_bytes(bytes(data))
    assert rhino_main(["launch", str(art), "-n", "2"]) == 1
    assert f"'executables/{vmfb.name}' is corrupt" in capsys.readouterr().err


def test_compile_cache_hit_and_unknown_target(cache, tmp_path, capsys):
    src = str(PROGRAMS / "dot_allreduce_2.mlir")
    assert rhino_main(["compile", "--local", src, "-o", str(tmp_path / "a1")]) == 0
    assert rhino_main(["compile", "--local", src, "-o", str(tmp_path / "a2")]) == 0
    assert read_artifact(tmp_path / "a2").manifest["compile"]["cache_hit"]
    capsys.readouterr()
    assert rhino_main(["compile", "--local", src, "--target", "tpu", "-o", str(tmp_path / "a3")]) == 1
    err = capsys.readouterr().err
    assert "unknown target 'tpu'" in err and not (tmp_path / "a3").exists()


@pytest.mark.parametrize("program,n", [("dot_global.mlir", 2), ("mlp_global_4.mlir", 4)])
def test_cli_run_global_program_matches_single_device(cache, program, n, capsys):
    """Full pipeline: rhino-propagate + rhino-spmd-partition + lower + IREE + mpiexec."""
    rc = rhino_main(["run", str(PROGRAMS / program), "-n", str(n), "--check", "--timeout", "120"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "check: ok" in out


def test_dead_rank_named_from_heartbeats_not_mpich_pid(tmp_path):
    # MPICH's BAD TERMINATION block names *a* pid of the job (here rank 0's) when rank 1
    # was killed; rank 0 was blocked in a collective, rank 1 was not: rank 1 is named
    from rhino_mlir.launch.rank.beat import Beat
    from rhino_mlir.launch.rank.launcher import _failure
    for r, pid in ((0, 1000), (1, 1001)):
        (tmp_path / f"rank{r}.json").write_text(json.dumps({"rank": r, "pid": pid, "host": f"h{r}",
                                                           "phase": "running"}))
    b0, b1 = Beat(tmp_path, 0), Beat(tmp_path, 1)
    b0.collective(True)                                   # waiting on the dead peer
    log = ("BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID 1000 RUNNING AT h0\n"
           "=   EXIT CODE: 9\n YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)")
    assert _failure(tmp_path, 2, 9, log).startswith("rank 1 on h1 killed by signal 9 (SIGKILL)")
    b0.close(), b1.close()
    b0, b1 = Beat(tmp_path, 0), Beat(tmp_path, 1)        # no rank told apart: MPICH's pid stands
    assert _failure(tmp_path, 2, 9, log).startswith("rank 0 on h0 killed by signal 9")
    b0.close(), b1.close()
