"""The core check: partitioned programs on N XLA CPU devices equal the single-device run.

Every (program, variant) of tests/programs.py goes through
rhino-inline, rhino-propagate, rhino-spmd-partition; then
  - every device's outputs equal the single-device results (DESIGN.md tolerances; input
    padding filled with NaN / the largest integer, so unmasked padding shows);
  - the collective bytes counted in the emitted IR equal what partition/spmd/reshard.py
    predicted for the plan;
  - the local program compiles with IREE llvm-cpu after rhino-strip-sharding.
"""
import pytest

import programs
from harness.xla_oracle import check_local
from rhino_mlir import ir as I
from rhino_mlir.analysis.cost import collective_bytes
from rhino_mlir.passes import PassContext
from rhino_mlir.passes.pass_pipeline import run_pipeline_str

PIPELINE = "builtin.module(rhino-inline,rhino-propagate,rhino-spmd-partition)"
CASES = [pytest.param(n, v, marks=[pytest.mark.slow] if (n, v) in programs.SLOW else [])
         for n, v in programs.CASES]


def partition(text):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    run_pipeline_str(m, PIPELINE, pctx)
    with ctx:
        counted = sum(collective_bytes(op) for op in I.walk_ops(m.operation))
    return str(m), pctx.stats["rhino-spmd-partition"], counted


def iree_compiles(local):
    import iree.compiler as ic
    ctx = I.new_context()
    m = I.parse_module(local, ctx)
    run_pipeline_str(m, "builtin.module(rhino-strip-sharding)", PassContext(ctx))
    vmfb = ic.compile_str(str(m), input_type="stablehlo", target_backends=["llvm-cpu"],
                          extra_args=["--iree-llvmcpu-target-cpu=generic"])
    return len(vmfb) > 0


def test_suite_is_broad_enough():
    assert len(programs.PROGRAMS) >= 15
    sizes = {m.size for m in (programs.M4, programs.M22, programs.M24)}
    assert sizes == {4, 8}


@pytest.mark.parametrize("name,variant", CASES)
def test_partitioned_program_equals_single_device(name, variant):
    text, inputs = programs.get(name, variant)
    local, stats, counted = partition(text)
    check_local(local, text, inputs)
    assert counted == pytest.approx(stats["bytes"]), "IR collective bytes differ from the plan's"
    assert iree_compiles(local)
