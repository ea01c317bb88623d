"""benchmarks/shardy_second_opinion.py on two programs (slow: Shardy runs in subprocesses).

Checks the benchmark's plumbing, not Shardy: worker subprocesses come back, both sides
report a local program, rhino's is correct, and the bytes are counted with the same
ring formulas as analysis/cost.py (the Megatron MLP moves one all_reduce of B x D).
"""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location(
        "shardy_second_opinion", ROOT / "benchmarks" / "shardy_second_opinion.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_second_opinion_on_two_programs(tmp_path):
    so = _load()
    out = tmp_path / "second_opinion.json"
    cases = "mlp_forward:megatron_2x2,transpose_reshape"
    assert so.main(["--cases", cases, "--work", str(tmp_path / "work"), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    res = data["results"]
    assert "mlp_forward:megatron_2x2" in res and any(c.startswith("transpose_reshape:") for c in res)
    for case, c in res.items():
        assert c["rhino"]["ok"] and c["rhino"]["correct"], (case, c["rhino"])
        assert c["shardy"] is not None, case            # ran, aborted or failed: recorded
    mlp = res["mlp_forward:megatron_2x2"]
    # local B x D = 4 x 8 f32 (128 B) all_reduced over y=2: ring 2 * (1/2) * 128 B
    assert mlp["rhino"]["collectives"] == {"all_reduce": 1}
    assert mlp["rhino"]["bytes"] == pytest.approx(128.0)
    assert mlp["shardy"]["ok"] and mlp["shardy"]["correct"]
    assert data["summary"]["cases"] == len(res)


def test_sdy_collective_group_size():
    """sdy.* collectives left in Shardy's output are priced over the axes they name."""
    so = _load()

    class Op:
        name = "sdy.all_gather"

        def __str__(self):
            return ('%1 = sdy.all_gather [{}, {"y", "x":(1)2}] %0 out_sharding=<@mesh, '
                    '[{"x"}, {}]> : tensor<8x8xf32>')
    assert so._sdy_group(Op(), {"x": 4, "y": 2}) == 4


def test_merge_records_crash_stage():
    so = _load()
    recs = [{"case": "a:v", "stage": "rhino:result", "ok": True, "bytes": 1.0},
            {"case": "a:v", "stage": "crash", "at": "shardy:partition", "error": "Check failed: x"},
            {"case": "a:v", "stage": "done"}]
    res = so.merge(recs)
    assert res["a:v"]["rhino"]["ok"]
    assert res["a:v"]["shardy"] == {"ok": False, "aborted": True, "error": "Check failed: x"}
