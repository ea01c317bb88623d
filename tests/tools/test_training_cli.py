"""`rhino plan/compile/run` with --remat, --microbatches and --stages (issue 11): the JSON keys,
one-line refusals that write nothing, and recomputing/accumulating plans on CPU ranks."""
import json

import numpy as np
import pytest

from rhino_mlir import zoo
from rhino_mlir.tools.rhino import main as rhino_main

GPT = dict(batch=16, seq=64, d_model=64, n_layer=4)
MLP = dict(dims=(64, 256, 256, 256, 256, 8), batch=4096)
# IREE 3.13: a loop body calling 3+ collective imports fails at run time with indirect
# command buffers ("indirect buffer reference slot 0 is out range")
IREE = ["--iree-flag=--iree-hal-indirect-command-buffers=false"]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    d = tmp_path_factory.mktemp("progs")
    out = {}
    for name, model, cfg, fn in (("gpt", "gpt-tiny", GPT, "train_step"), ("mlp", "mlp", MLP, "train_step"),
                                 ("fwd", "gpt-tiny", GPT, "forward")):
        text, _ = zoo.get(model, **cfg).lower(fn)
        (d / f"{name}.mlir").write_text(text)
        out[name] = d / f"{name}.mlir"
    return out


def _run(capsys, *argv):
    code = rhino_main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_plan_json_has_the_training_keys(programs, capsys):
    code, out, _ = _run(capsys, "plan", programs["gpt"], "--cluster", "1x4xcpu-test", "--json",
                        "--remat", "selective", "--microbatches", "2")
    assert code == 0
    d = json.loads(out)
    assert d["microbatches"] == 2 and isinstance(d["activation_bytes"], int) and d["activation_bytes"] > 0
    assert d["remat"] and all(set(r) == {"group", "layers", "policy"} and r["policy"] == "selective"
                              for r in d["remat"])
    assert {"mesh", "step_time_s", "memory_per_device_bytes", "baselines", "chosen"} <= set(d)
    code, out, _ = _run(capsys, "plan", programs["gpt"], "--cluster", "1x4xcpu-test", "--remat", "full")
    assert code == 0 and "micro-batches 1" in out and "full" in out and "activations kept" in out


@pytest.mark.parametrize("flags,line", [
    (["--microbatches", "3"], "--microbatches 3 does not divide the batch of 16"),
    (["--microbatches", "many"], "--microbatches expects auto or a positive integer, got 'many'"),
    (["--stages", "8", "--cluster", "1x8xcpu-test"], "--stages 8 is more than the 6 layers of @main; use at most 6"),
])
@pytest.mark.parametrize("cmd", ["plan", "compile"])
def test_bad_requests_are_one_line_and_write_nothing(programs, capsys, tmp_path, flags, line, cmd):
    out = tmp_path / ("plan.json" if cmd == "plan" else "art")
    code, _, err = _run(capsys, cmd, programs["gpt"], "--cluster", "1x4xcpu-test", "-o", out, *flags)
    assert code == 1 and err.count("\n") == 1 and line in err, err
    assert not out.exists()


def test_training_flags_without_a_planner_are_refused(programs, capsys, tmp_path):
    code, _, err = _run(capsys, "compile", programs["gpt"], "--microbatches", "2", "-o", tmp_path / "art")
    assert code == 1 and err.count("\n") == 1 and "add --cluster" in err and not (tmp_path / "art").exists()


def test_remat_on_a_forward_program_is_refused(programs, capsys, tmp_path):
    code, _, err = _run(capsys, "plan", programs["fwd"], "--cluster", "1x4xcpu-test", "--remat", "full",
                        "-o", tmp_path / "p.json")
    assert code == 1 and err.count("\n") == 1 and "--remat full: @main has no backward pass" in err
    assert not (tmp_path / "p.json").exists()


def _inputs(tmp_path, name: str):
    from tests.harness.train_steps import later_step
    model, cfg = {"gpt": ("gpt-tiny", GPT), "mlp": ("mlp", MLP)}[name]
    xs = later_step(zoo.get(model, **cfg))
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(xs)})
    return tmp_path / "in.npz"


def _tight(programs, capsys, name: str, tmp_path) -> str:
    """40% below the smallest plan without recomputation or accumulation, as rhino plan says."""
    code, _, err = _run(capsys, "plan", programs[name], "--cluster", "1x4xcpu", "--memory", "1KiB",
                        "--remat", "none", "--microbatches", "1")
    assert code == 1 and "the smallest plan found needs" in err
    need = err.split("needs ")[1].split(" per device")[0]
    from rhino_mlir.cluster import parse_size
    return str(int(parse_size(need) * 0.6))


@pytest.mark.parametrize("name", ["mlp", pytest.param("gpt", marks=pytest.mark.slow)])
def test_tight_budget_runs_on_four_ranks_and_equals_one_device(programs, capsys, tmp_path, name):
    budget = _tight(programs, capsys, name, tmp_path)
    code, out, _ = _run(capsys, "plan", programs[name], "--cluster", "1x4xcpu", "--memory", budget, "--json")
    d = json.loads(out)
    assert code == 0 and (d["microbatches"] > 1 or any(r["policy"] != "none" for r in d["remat"]))
    code, out, err = _run(capsys, "run", programs[name], "--cluster", "1x4xcpu", "--memory", budget,
                          "--inputs", _inputs(tmp_path, name), "--check", "-o", tmp_path / "art", *IREE)
    assert code == 0 and "check: ok" in out, out + err
    plan = json.loads((tmp_path / "art" / "plan.json").read_text())
    assert (plan["microbatches"], plan["remat"]) == (d["microbatches"], d["remat"])
    local = (tmp_path / "art" / "programs" / "main.mlir").read_text()
    assert ("stablehlo.while" in local) == (d["microbatches"] > 1)
    assert ("optimization_barrier" in local) == any(r["policy"] != "none" for r in d["remat"])


def test_stages_of_a_step_without_repeated_layers_count_its_cut_pieces(tmp_path, capsys):
    """An MLP of distinct widths has no repeated layers: its stages are bounded by the pieces
    its forward can be cut into (the op-level split), not refused as '1 layer'."""
    text, _ = zoo.get("mlp").lower("train_step")                  # dims 16 -> 32 -> 8
    src = tmp_path / "mlp.mlir"
    src.write_text(text)
    code, out, err = _run(capsys, "plan", src, "--stages", "2", "--cluster", "1x2xcpu")
    assert code == 0 and "2 stage" in out + err, out + err
    code, _, err = _run(capsys, "plan", src, "--stages", "8", "--cluster", "1x8xcpu", "-o", tmp_path / "p.json")
    assert code == 1 and err.count("\n") == 1 and "pieces the forward of @main can be cut into" in err, err
    assert not (tmp_path / "p.json").exists()
