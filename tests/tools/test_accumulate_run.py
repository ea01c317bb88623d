"""`rhino run --microbatches 2` of a data-parallel Adam train step on 4 CPU ranks (IREE, MPI):
the accumulated gradients are all-reduced once per step, after the loop (partition/spmd/carry.py),
and the step equals the single-device one (--check)."""
import re

import numpy as np
import pytest

from rhino_mlir import zoo
from rhino_mlir.tools.rhino import main as rhino_main
from tests.harness.train_steps import later_step


@pytest.mark.slow                                      # ~10 s: compile + 4 MPI ranks + the check
def test_data_parallel_accumulation_all_reduces_once_per_step(tmp_path, capsys):
    m = zoo.get("mlp", dims=(16, 32, 32, 8), batch=8)        # 3 layers: 6 gradients + the loss
    text, _ = m.lower("train_step")
    (tmp_path / "step.mlir").write_text(text)
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(later_step(m))})
    code = rhino_main([str(a) for a in ("run", tmp_path / "step.mlir", "--cluster", "1x4xcpu", "--strategy", "dp",
                                        "--microbatches", "2", "--inputs", tmp_path / "in.npz", "--check",
                                        "-o", tmp_path / "art")])
    cap = capsys.readouterr()
    assert code == 0 and "check: ok" in cap.out, cap.out + cap.err
    # 7 sums, each all-reduced once (not once per micro-batch: 14)
    assert re.search(r"\b7 collective call\(s\) per step", cap.out), cap.out
    local = (tmp_path / "art" / "programs" / "main.mlir").read_text()
    start = local.index("} do {")
    body = local[start:local.index("\n    }\n", start)]
    assert "stablehlo.while" in local and "rhino.all_reduce" not in body and "all_reduce" not in body
    assert local.count("all_reduce") >= 7
