"""`rhino plan` without --stages weighs a pipeline against single-stage plans on a
multi-node cluster, and picks it at the node boundary when the link between nodes is
slow (issue 5 acceptance, GPT-1.5B train step on 2x8xA100 with 25 Gb/s)."""
import json

import pytest

from rhino_mlir import zoo
from rhino_mlir.tools.rhino import main as rhino_main


@pytest.mark.slow
def test_slow_inter_node_link_picks_a_two_stage_pipeline(tmp_path, capsys):
    text, _ = zoo.get("gpt-1.5b").lower("train_step")
    src = tmp_path / "gpt.mlir"
    src.write_text(text)
    cl = tmp_path / "slow.json"
    cl.write_text(json.dumps({"spec": "2x8xA100", "inter_node": {"bandwidth": "25Gb/s", "latency": "10us"}}))
    assert rhino_main(["plan", str(src), "--cluster", str(cl), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["chosen"] == "pipeline" and d["step_time_s"] < d["single_stage_step_time_s"]
    p = d["pipeline"]
    assert p["stages"] == 2 and [m["devices"] for m in p["meshes"]] == [list(range(8)), list(range(8, 16))]
    assert {"mesh", "memory_per_device_bytes", "search_time_s", "baselines"} <= set(d)


def test_single_node_cluster_plans_one_stage(tmp_path, capsys):
    text, _ = zoo.get("gpt-tiny").lower("train_step")
    src = tmp_path / "gpt.mlir"
    src.write_text(text)
    assert rhino_main(["plan", str(src), "--cluster", "1x4xcpu-test", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["chosen"] == "single-stage" and d["mesh"]
