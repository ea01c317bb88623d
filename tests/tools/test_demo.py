"""`rhino demo`: the whole path (JAX -> partition -> IREE -> 4 MPI ranks) and its report."""
import re

import pytest

from rhino_mlir.tools.demo import brief_path, brief_sharding
from rhino_mlir.tools.rhino import main as rhino_main


def test_brief_names():
    assert brief_path("[0]['layers'][1]['attn']['w_qkv']", ("params", "inputs")) == \
        "params.layers[*].attn.w_qkv"
    assert brief_path("[1]", ("params", "inputs")) == "inputs"
    assert brief_path("[2][0]", ("params", "opt_state", "batch")) == "batch[*]"
    assert brief_sharding('#sdy.sharding<@mesh, [{"x"}, {}]>') == "[x, -]"
    assert brief_sharding('#sdy.sharding<@mesh, [{}, {"x", "y"}]>') == "[-, x,y]"
    assert brief_sharding('#sdy.sharding<@mesh, [{}, {}]>') == brief_sharding(None) == "replicated"


def test_demo_cold_cache_reports_and_matches(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RHINO_CACHE", str(tmp_path / "cache"))       # a fresh clone's first run
    rc = rhino_main(["demo", "--repeat", "2", "-o", str(tmp_path / "art")])
    out = capsys.readouterr().out
    assert rc == 0, out
    # Megatron on y, batch on x, as annotated; the partitioner's collectives and bytes
    assert re.search(r"params\.layers\[\*\]\.attn\.w_qkv +f32\[32, 96\] +\[-, y\] +\(x2\)", out)
    assert re.search(r"params\.layers\[\*\]\.mlp\.w_proj +f32\[128, 32\] +\[y, -\]", out)
    assert re.search(r"inputs +i32\[4, 16\] +\[x, -\]", out)
    m = re.search(r"collectives +(\d+) inserted \(.*?(\d+) all_reduce\), ([\d.]+) KiB", out)
    assert m and int(m[2]) == 4 and float(m[3]) > 0       # 2 per block: attention + MLP
    assert "IREE llvm-cpu" in out and "(cache hit)" not in out
    err = float(re.search(r"check +max error (\S+) vs the single-device", out)[1])
    assert err < 1e-5 and out.rstrip().endswith(": ok")
    assert (tmp_path / "art" / "manifest.json").is_file()


@pytest.mark.slow
def test_demo_train_step_sgd(capsys):
    assert rhino_main(["demo", "--fn", "train_step_sgd", "--repeat", "1"]) == 0, capsys.readouterr().out


def test_demo_with_the_planner(capsys):
    rc = rhino_main(["demo", "--cluster", "1x4xcpu", "--repeat", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert re.search(r"mesh +@mesh .*4 devices, chosen by the planner", out)
    assert re.search(r"plan +cluster 1x4xcpu, O2 auto: predicted step [\d.]+ ms", out)
    assert out.rstrip().endswith(": ok")
