"""Pipelined artifacts on MPI ranks equal the single-device program (JAX on one device).

Each case: JAX function -> compile_pipeline (stages from the stage ILP or by hand,
rhino-pipeline-split, each stage function partitioned on its sub-mesh, IREE) -> mpiexec
with one rank per device; stages exchange boundary values point-to-point. Cases: a 4-stage
MLP, a 2-stage transformer whose residual crosses the stage boundary, 2 stages x 2-way
tensor parallel, and a training step whose parameters after one pipelined step (GPipe and
1F1B, 4 micro-batches) equal the unpipelined step. Then the CLI acceptance line and its
bad-input errors.
"""
from __future__ import annotations

import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from rhino_mlir import zoo
from rhino_mlir.frontend import annotate, lower
from rhino_mlir.launch.artifact import read_artifact
from rhino_mlir.launch.build.pipelined import compile_pipeline
from rhino_mlir.launch.build.check import compare
from rhino_mlir.launch.rank.launcher import launch
from rhino_mlir.sharding import Mesh

ENV = {"RHINO_IREE_DRIVER": "local-sync"}          # ranks may outnumber cores


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("RHINO_CACHE", str(tmp_path_factory.mktemp("iree-cache")))
    yield
    mp.undo()


def run(fn, args, tmp_path, cluster, stages, m, schedule="1f1b", text=None):
    text = text or lower(fn, *args)[0]
    art_dir = compile_pipeline(text, tmp_path / "art", cluster, stages, m, schedule)
    flat = [np.asarray(x) for x in jax.tree_util.tree_leaves(args)]
    np.savez(tmp_path / "in.npz", **{f"arg{i}": x for i, x in enumerate(flat)})
    art = read_artifact(art_dir, verify=False)
    res = launch(art_dir, art.num_devices, inputs=str(tmp_path / "in.npz"), timeout=240, env=ENV)
    refs = [np.asarray(r) for r in jax.tree_util.tree_leaves(jax.jit(fn)(*args))]
    cr = compare(res.outputs, refs, art.outputs)
    assert cr.ok, cr.line()
    assert not res.jax_imported
    return res, art


def test_mlp_four_stages(cache, tmp_path):
    m = zoo.get("mlp", dims=(16, 32, 32, 32, 8))
    res, art = run(m.fns["forward"], m.args("forward"), tmp_path, "1x4xcpu", 4, 4, "inference")
    st = art.manifest["schedule"]
    assert st["stages"] == 4 and st["microbatches"] == 4
    assert [r["stage"] for r in art.manifest["ranks"]] == [0, 1, 2, 3]


def test_transformer_residual_crosses_stages(cache, tmp_path):
    g = zoo.get("gpt-tiny", n_layer=2, seq=8, vocab=48, batch=4)
    res, art = run(g.fns["forward"], g.args("forward"), tmp_path, "1x2xcpu", 2, 2, "gpipe")
    table = art.manifest["schedule"]["pipeline"]
    crossing = [v for v in table["values"].values()
                if v["stage"] == 0 and any(c[0] == 1 for c in v["consumers"])]
    assert crossing, "the stages exchange activations"


def test_two_stages_times_two_way_tensor_parallel(cache, tmp_path):
    m = zoo.get("transformer-block", batch=4, seq=8, d_model=16, n_head=4)
    fn, args = m.fns["forward"], m.args("forward")
    text, info = lower(fn, *args)
    specs = {r"w_qkv|w_fc": (None, "y"), r"b_qkv|b_fc": ("y",), r"w_o|w_proj": ("y", None)}
    sh = [next((s for pat, s in specs.items() if re.search(pat, p)), None) for p in info.arg_paths]
    text = annotate(text, Mesh("mesh", (("y", 2),)), sh)
    res, art = run(fn, args, tmp_path, "1x4xcpu", 2, 2, "inference", text=text)
    assert res.collective_calls > 0                              # tensor parallel inside stages
    assert all(s["mesh"]["axes"] == [["y", 2]] for s in art.manifest["stages"])


def test_reshard_between_stages_by_gather_and_reslice(cache, tmp_path, monkeypatch):
    monkeypatch.setitem(ENV, "RHINO_TEST_PIPELINE_RESHARD", "1")
    m = zoo.get("mlp", dims=(16, 32, 32, 8))
    run(m.fns["train_step_sgd"], m.args("train_step_sgd"), tmp_path, "1x4xcpu", 2, 2, "1f1b")


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_training_step_equals_unpipelined(cache, tmp_path, schedule):
    m = zoo.get("mlp", dims=(16, 32, 32, 8))
    res, art = run(m.fns["train_step_sgd"], m.args("train_step_sgd"), tmp_path, "1x2xcpu", 2, 4,
                   schedule)
    names = {f["name"] for f in art.manifest["schedule"]["pipeline"]["functions"]}
    assert {"fwd", "bwd", "update"} <= names or {"fwd", "update"} <= names


# ----------------------------------------------------------------------------- CLI

def rhino(*argv):
    return subprocess.run([sys.executable, "-m", "rhino_mlir.tools.rhino", *map(str, argv)],
                          capture_output=True, text=True, timeout=300, env=_env())


def _env():
    import os
    return {**os.environ, **ENV}


@pytest.fixture(scope="module")
def train_mlir(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "train.mlir"
    p.write_text(zoo.get("mlp", dims=(16, 32, 32, 8)).lower("train_step_sgd")[0])
    return p


@pytest.mark.parametrize("strategy", [None, "megatron"])
def test_cli_run_reproduces_single_device(cache, train_mlir, strategy):
    extra = ["--strategy", strategy] if strategy else []
    r = rhino("run", train_mlir, "--cluster", "1x4xcpu", "--stages", 2, "--microbatches", 4, "--check",
              *extra)
    assert r.returncode == 0, r.stderr
    assert "check: ok" in r.stdout
    assert "2 stage(s) x 2 device(s), 4 micro-batch(es), 1f1b" in r.stderr
    if strategy == "megatron":                   # tensor parallel inside each stage
        assert " 0 collective call(s)" not in r.stdout


@pytest.mark.parametrize("argv,msg", [
    (["--cluster", "1x4xcpu", "--stages", 3], "3 stages do not divide the 4 devices"),
    (["--cluster", "1x2xcpu", "--stages", 4], "4 stages need at least 4 devices"),
    (["--cluster", "1x2xcpu", "--stages", 2, "--microbatches", 3],
     "batch size 8 does not divide into 3 micro-batches; choose one of 1, 2, 4, 8"),
    (["--cluster", "1x2xcpu", "--stages", 2, "--memory", "1KiB"], "no pipeline fits"),
])
def test_cli_bad_input(cache, train_mlir, tmp_path, argv, msg):
    r = rhino("compile", train_mlir, "-o", tmp_path / "art", *argv)
    assert r.returncode == 1
    assert msg in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_cli_plan_reports_stages_bubble_memory(train_mlir):
    r = rhino("plan", train_mlir, "--cluster", "1x4xcpu", "--stages", 2, "--microbatches", 4)
    assert r.returncode == 0, r.stderr
    assert "2 stage(s) x 2 device(s), 4 micro-batch(es), 1f1b" in r.stdout
    assert "bubble" in r.stdout and "stage 1: devices [2, 3]" in r.stdout
    assert "best single-stage plan" in r.stdout
    r = rhino("plan", train_mlir, "--cluster", "1x4xcpu", "--stages", 2, "--json")
    import json
    d = json.loads(r.stdout)
    assert d["stages"] == 2 and len(d["memory_per_stage"]) == 2 and 0 <= d["bubble"] < 1
