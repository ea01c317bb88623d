"""benchmarks/gpu_check.py rehearsed on the CPU: prepare (llvm-cpu instead of cuda) and run.

The GPU machine runs the same code on cuda artifacts; here every phase except the GPU
itself is exercised: the input recipe, the f32 CPU reference, the 2-rank launch with
import collectives, one rank's executable with the loopback communicator, XLA timing.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_prepare_and_run_on_cpu(tmp_path):
    out = tmp_path / "gpu_check"
    subprocess.run([sys.executable, str(SCRIPT), "prepare", "--target", "llvm-cpu", "--config",
                    "2x8x16x2", "--out", str(out)], check=True, cwd=ROOT, timeout=300)
    meta = json.loads((out / "prepared.json").read_text())
    assert set(meta["cases"]) == {"f32", "f16"} and (out / "global.cpu.vmfb").is_file()
    assert (out / "f32" / "global.llvm-cpu.vmfb").is_file()
    r = subprocess.run([sys.executable, str(SCRIPT), "run", str(out), "--reps", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"], r.stderr[-2000:]
    for case in ("f32", "f16"):
        c = doc["cases"][case]
        assert c["check"]["ok"] and c["check"]["rhino_calls_per_step"] > 0
        assert not c["check"]["jax_in_ranks"]
        assert c["iree_1dev"]["ok"] and c["rank_exe"]["call_ms"] > 0
        assert any(i.startswith("rhino.all_reduce") for i in c["rank_exe"]["imports"])
        assert c["xla"]["highest_max_error"] < (1e-4 if case == "f32" else 5e-2)
