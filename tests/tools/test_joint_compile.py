"""`rhino compile/run --stages S|auto` compiles the joint pipeline plan (issue 11, point 5): a GPT
train step on 2 nodes x 2 CPU devices, its layers per stage, in-stage mesh, micro-batches and
recomputation in the artifact, run on 4 MPI ranks and equal to one device."""
import json

import numpy as np
import pytest

from rhino_mlir import zoo
from rhino_mlir.tools.rhino import main as rhino_main

GPT = dict(batch=16, seq=64, d_model=64, n_layer=4)
IREE = ["--iree-flag=--iree-hal-indirect-command-buffers=false"]
TIGHT = "2MiB"        # below every single-stage plan: the planner picks a pipeline that recomputes


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpt")
    model = zoo.get("gpt-tiny", **GPT)
    text, _ = model.lower("train_step")
    (d / "gpt.mlir").write_text(text)
    from tests.harness.train_steps import later_step
    np.savez(d / "in.npz", **{f"arg{i}": x for i, x in enumerate(later_step(model))})
    return d / "gpt.mlir", d / "in.npz"


def _run(capsys, *argv):
    code = rhino_main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_plan_with_stages_reports_the_joint_plan_for_that_count(gpt, capsys):
    code, out, _ = _run(capsys, "plan", gpt[0], "--cluster", "2x2xcpu", "--stages", "2", "--json")
    assert code == 0
    d = json.loads(out)
    p = d["pipeline"]
    assert d["chosen"] == "pipeline" and p["stages"] == 2 and sum(p["layers_per_stage"]) == GPT["n_layer"]
    assert p["tp"] * p["dp"] == 2 and GPT["batch"] % p["microbatches"] == 0


@pytest.mark.parametrize("flags,line", [
    (["--stages", "3", "--cluster", "2x2xcpu"], "3 stages do not divide the 4 devices"),
    (["--stages", "8", "--cluster", "2x4xcpu"], "--stages 8 is more than the 6 layers of @main; use at most 6"),
])
def test_bad_stage_counts_are_one_line_and_write_nothing(gpt, capsys, tmp_path, flags, line):
    code, _, err = _run(capsys, "compile", gpt[0], "-o", tmp_path / "art", *flags)
    assert code == 1 and err.count("\n") == 1 and line in err, err
    assert not (tmp_path / "art").exists()


def _check_artifact(art, d: dict) -> dict:
    """The joint plan recorded in plan.json, the manifest and report.md, and compiled as planned."""
    j = json.loads((art / "plan.json").read_text())["joint"]
    m = json.loads((art / "manifest.json").read_text())
    p = d["pipeline"]
    for k in ("stages", "tp", "dp", "microbatches", "layers_per_stage", "step_time_s"):
        assert j[k] == p[k] and m["schedule"]["joint"][k] == p[k], k
    assert m["schedule"]["stages"] == p["stages"] and m["schedule"]["microbatches"] == p["microbatches"]
    assert m["schedule"]["predicted"]["step_time_s"] == p["step_time_s"]
    n = 4 // p["stages"]
    assert [s["devices"] for s in m["stages"]] == [list(range(s * n, (s + 1) * n)) for s in range(p["stages"])]
    axes = [[a, k] for a, k in (("x", p["dp"]), ("y", p["tp"])) if k > 1]
    assert all(s["mesh"]["axes"] == axes for s in m["stages"]) if axes else True
    # in-stage shardings: the planner's plan of the kind the joint search priced
    assert j["strategy"] == (None if not axes else "dp-tp" if len(axes) == 2 else
                             "megatron" if axes[0][0] == "y" else "dp")
    report = (art / "report.md").read_text()
    assert f"layers per stage {p['layers_per_stage']}" in report and "joint pipeline plan" in report
    policies = j["remat_per_stage"]
    assert policies == (p.get("remat_per_stage") or [p["remat"]] * p["stages"])
    for s, pol in enumerate(policies):         # recomputed layers: clones behind a barrier in that stage
        text = "".join((art / "programs" / f"stage{s}.{f}.mlir").read_text()
                       for f in ("fwd", "bwd") if (art / "programs" / f"stage{s}.{f}.mlir").exists())
        assert ("optimization_barrier" in text) == (pol != "none"), (s, pol)
    return j


@pytest.mark.slow
def test_stages_2_runs_the_joint_plan_and_equals_one_device(gpt, capsys, tmp_path):
    code, out, _ = _run(capsys, "plan", gpt[0], "--cluster", "2x2xcpu", "--stages", "2", "--json")
    d = json.loads(out)
    code, out, err = _run(capsys, "run", gpt[0], "--cluster", "2x2xcpu", "--stages", "2", "--inputs", gpt[1],
                          "--check", "-o", tmp_path / "art", *IREE)
    assert code == 0 and "check: ok" in out, out + err
    assert "joint plan: layers" in err
    _check_artifact(tmp_path / "art", d)


@pytest.mark.slow
def test_stages_auto_under_a_tight_budget_runs_a_recomputing_pipeline(gpt, capsys, tmp_path):
    code, out, err = _run(capsys, "plan", gpt[0], "--cluster", "2x2xcpu", "--memory", TIGHT, "--json")
    d = json.loads(out)
    assert code == 0 and d["chosen"] == "pipeline"
    assert d["single_stage_step_time_s"] is None or d["step_time_s"] < d["single_stage_step_time_s"]
    assert any(r["policy"] != "none" for r in d["remat"])
    code, out, err = _run(capsys, "run", gpt[0], "--cluster", "2x2xcpu", "--memory", TIGHT, "--inputs", gpt[1],
                          "--check", "-o", tmp_path / "art", *IREE)
    assert code == 0 and "check: ok" in out and "compiled" in err, out + err
    j = _check_artifact(tmp_path / "art", d)
    assert j["remat_applied"] != "none"
    assert j["memory_budget_bytes"] == 2 << 20              # what rhino train's re-plans scale


@pytest.mark.slow
def test_four_single_device_stages_that_recompute_equal_one_device(gpt, capsys, tmp_path):
    """--stages 4 on 4 devices: stages without a mesh (scalars such as the step counter read
    whole), every layer recomputed in its own stage."""
    code, out, _ = _run(capsys, "plan", gpt[0], "--cluster", "2x2xcpu", "--stages", "4", "--remat", "full", "--json")
    d = json.loads(out)
    assert code == 0 and d["pipeline"]["layers_per_stage"] == [1, 1, 1, 1]
    code, out, err = _run(capsys, "run", gpt[0], "--cluster", "2x2xcpu", "--stages", "4", "--remat", "full",
                          "--inputs", gpt[1], "--check", "-o", tmp_path / "art", *IREE)
    assert code == 0 and "check: ok" in out, out + err
    j = _check_artifact(tmp_path / "art", d)
    assert j["remat_applied"] == "full" and j["mesh"] == []
