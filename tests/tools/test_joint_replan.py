"""`rhino train`'s re-plan of a joint pipeline artifact (out of memory, `--elastic`) runs the
joint search again for the ranks and budget left and compiles that plan (tools/train_cmd.py
joint_target / _replan_joint, joint_report.for_replan)."""
import json

import numpy as np
import pytest

from rhino_mlir.cluster import load_cluster
from rhino_mlir.tools.train_cmd import joint_target, make_replan, replan_cluster


def _memory(spec: str) -> int:
    return load_cluster(spec).memory_per_device       # a CPU node's memory is split among its devices


def _sched(cluster="2x2xcpu", stages=2, layers=(2, 2), **joint):
    return {"cluster": cluster, "stages": stages, "kind": "1f1b",
            "joint": {"stages": stages, "layers_per_stage": list(layers), **joint}}


@pytest.mark.parametrize("spec,n,want", [
    ("2x2xcpu", 4, "2x2xcpu"),      # the ranks it was compiled for: its own shape (two nodes)
    ("2x2xcpu", 2, "1x2xcpu"),      # one whole node left
    ("4x2xcpu", 6, "3x2xcpu"),      # whole nodes
    ("2x2xcpu", 3, "1x3xcpu"),      # a node lost a device: one node of the ranks left
    ("1x4xcpu", 3, "1x3xcpu"),
])
def test_replan_cluster_keeps_the_node_structure_when_it_can(spec, n, want):
    assert replan_cluster(spec, n) == want


def test_out_of_memory_keeps_the_stage_count_and_scales_the_budget():
    t = joint_target(_sched(), 4, 4, 0.8)
    assert t == {"cluster": "2x2xcpu", "memory": int(_memory("2x2xcpu") * 0.8), "stages": 2}


def test_an_earlier_replans_recorded_budget_is_the_base():
    t = joint_target(_sched(memory_budget_bytes=1000), 4, 4, 0.64)
    assert t["memory"] == 640


@pytest.mark.parametrize("stages,layers,n,want", [
    (2, (2, 2), 3, None),           # 2 does not divide 3 ranks: the search chooses
    (2, (2, 2), 2, 2),              # one device per stage
    (4, (1, 1, 1, 1), 6, None),
    (4, (1, 1, 1, 1), 8, 4),
])
def test_elastic_keeps_the_stage_count_only_when_it_divides_the_ranks(stages, layers, n, want):
    t = joint_target(_sched("1x8xcpu", stages, layers), 8, n, 1.0)
    assert t["stages"] == want and t["memory"] == _memory("1x8xcpu") and t["cluster"] == f"1x{n}xcpu"


GPT = dict(batch=16, seq=64, d_model=64, n_layer=4)
IREE = ["--iree-flag=--iree-hal-indirect-command-buffers=false"]


@pytest.mark.slow
def test_out_of_memory_replan_of_a_joint_artifact_compiles_a_joint_plan(tmp_path, capsys):
    from rhino_mlir import zoo
    from rhino_mlir.tools.rhino import main as rhino_main
    from tests.harness.train_steps import later_step
    model = zoo.get("gpt-tiny", **GPT)
    text, _ = model.lower("train_step")
    (tmp_path / "gpt.mlir").write_text(text)
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(later_step(model))})
    art = tmp_path / "art"
    assert rhino_main(["compile", str(tmp_path / "gpt.mlir"), "--cluster", "2x2xcpu", "--stages", "2",
                       "--memory", "1GiB", "-o", str(art), *IREE]) == 0
    old = json.loads((art / "manifest.json").read_text())
    assert old["schedule"]["joint"]["memory_budget_bytes"] == 1 << 30     # --memory, recorded

    new = make_replan(str(art))(4, 0.8, "out of memory")
    assert new.endswith("art.replan-n4-m80")
    m = json.loads((tmp_path / "art.replan-n4-m80" / "manifest.json").read_text())
    j = m["schedule"]["joint"]
    assert j["memory_budget_bytes"] == int((1 << 30) * 0.8) and max(j["memory_per_stage"]) <= j["memory_budget_bytes"]
    assert j["stages"] == 2 and m["schedule"]["stages"] == 2 and sum(j["layers_per_stage"]) == GPT["n_layer"]
    assert m["schedule"]["cluster"] == "2x2xcpu" and m["num_devices"] == 4
    assert m["schedule"]["predicted"]["step_time_s"] == j["step_time_s"]       # the compiled plan was priced
    assert json.loads((tmp_path / "art.replan-n4-m80" / "plan.json").read_text())["joint"] == j
    assert m["iree"]["flags"] == old["iree"]["flags"]                           # --iree-flag kept
    capsys.readouterr()
    code = rhino_main(["launch", new, "-n", "4", "--inputs", str(tmp_path / "in.npz"), "--check",
                       "--timeout", "300"])
    out = capsys.readouterr().out
    assert code == 0 and "check: ok" in out, out
