"""Executor + rhino VM module on the threads backend (one process, no MPI)."""
import threading
from pathlib import Path

import numpy as np
import pytest

from rhino_mlir.launch.rank.comm import ThreadWorld
from rhino_mlir.launch.build.iree_compile import compile_one
from rhino_mlir.launch.rank.layout import ValueSpec, assemble_value, slice_value
from rhino_mlir.launch.rank.runtime import Executor
from rhino_mlir.sharding import Mesh

import dtype_program

PROGRAMS = Path(__file__).parent / "programs"


def _lowered(text: str) -> str:
    from rhino_mlir import ir as rir
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    ctx = rir.new_context()
    m = rir.parse_module(text, ctx)
    run_pipeline_str(m, "rhino-lower-collectives,rhino-strip-sharding", PassContext(ctx))
    return str(m)


def run_threads(vmfb: bytes, per_rank_args: list[list[np.ndarray]]):
    n = len(per_rank_args)
    world = ThreadWorld(n, timeout=60)
    comms, out, errs = world.communicators(), [None] * n, []

    def body(r):
        try:
            with Executor(vmfb, comms[r]) as ex:
                out[r] = ex(*per_rank_args[r])
        except Exception as e:
            errs.append(e)
            world.barrier_.abort()
    ts = [threading.Thread(target=body, args=(r,)) for r in range(n)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    if errs:
        raise errs[0]
    return out


def test_every_dtype_through_iree_threads():
    vmfb = compile_one("dtypes", _lowered(dtype_program.program()), "llvm-cpu").vmfb
    xs = dtype_program.inputs()
    meshes = {"mesh": Mesh("mesh", (("x", 2),))}
    # slicing looks only at shape and sharding; the spec's dtype is not used here
    spec = ValueSpec("a", "float32", (4, 3), '#sdy.sharding<@mesh, [{"x"}, {}]>')
    per_dev = [slice_value(x, spec, meshes, 2) for x in xs]
    res = run_threads(vmfb, [[p[d] for p in per_dev] for d in range(2)])
    # replicated results: every device holds the whole value; they must agree
    for a, b in zip(res[0], res[1]):
        assert np.array_equal(a.astype(np.float64), b.astype(np.float64))
    dtype_program.check(res[0], xs)


def test_collectives_program_threads():
    from test_launch import expected_collectives
    vmfb = compile_one("c4", _lowered((PROGRAMS / "collectives_4.mlir").read_text()), "llvm-cpu").vmfb
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    meshes = {"mesh": Mesh("mesh", (("x", 2), ("y", 2)))}
    sa = ValueSpec("a", "float32", (8, 8), '#sdy.sharding<@mesh, [{"x"}, {"y"}]>')
    sb = ValueSpec("b", "float32", (8, 8), '#sdy.sharding<@mesh, [{}, {"y"}]>')
    pa, pb = slice_value(a, sa, meshes, 4), slice_value(b, sb, meshes, 4)
    res = run_threads(vmfb, [[pa[d], pb[d]] for d in range(4)])
    for k, (want, sh) in enumerate(expected_collectives(a, b)):
        spec = ValueSpec(f"out{k}", str(want.dtype), want.shape, sh)
        got = assemble_value([res[d][k] for d in range(4)], spec, meshes, 4)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5, err_msg=f"out{k}")


def test_executor_unknown_entry():
    from rhino_mlir.errors import RhinoError
    vmfb = compile_one("d", _lowered((PROGRAMS / "dot_allreduce_2.mlir").read_text()), "llvm-cpu").vmfb
    with pytest.raises(RhinoError, match="executable has no function 'nope'"):
        Executor(vmfb, ThreadWorld(1).communicators()[0], entry="nope")
