"""benchmarks/ (rhino bench): the parts that decide numbers are checked here; whole
suites run in the slow set (they take minutes)."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench  # noqa: E402
import planrun  # noqa: E402
import suite_fidelity  # noqa: E402
import suite_search  # noqa: E402
import xla_spmd  # noqa: E402

from rhino_mlir import zoo  # noqa: E402
from rhino_mlir.tools import bench_cmd  # noqa: E402


def test_fidelity_ladder_spaces_predictions():
    plans = [{"predicted_s": t} for t in (1.0, 1.05, 1.2, 1.3, 1.5, 2.0, 2.5, 3.0, 3.7, 4.5, 5.5)]
    sel, step = suite_fidelity.ladder(plans, want=8, step=1.2)
    ts = [p["predicted_s"] for p in sel]
    assert len(sel) >= 8 and step <= 1.2
    assert all(b >= step * a for a, b in zip(ts, ts[1:]))
    sel, step = suite_fidelity.ladder(plans[:4], want=8)          # cannot reach 8: best effort
    assert 1.0 < step < 1.2 and len(sel) <= 4


def _row(role, n, wall, cpu):
    return {"role": role, "overrides": {"n_layer": n}, "wall_s": wall, "cpu_s": cpu}


def test_search_checks_on_wall_and_cpu_time():
    rows = [_row("target 1.5b", 48, 9.0, 4.0), _row("layers", 12, 2.0, 1.0), _row("layers", 96, 5.0, 1.9),
            _row("layers scan", 12, 1.0, 1.0), _row("layers scan", 96, 1.5, 1.2)]
    c = suite_search.checks(rows)
    t = c["GPT-1.5B 1x8 O2"]
    assert not t["met"] and t["met_cpu"] and suite_search._verdict(t).startswith("met on cpu")
    u = c["96 vs 12 layers (unrolled)"]
    assert not u["met"] and u["met_cpu"]
    assert c["96 vs 12 layers (scan)"]["met"]


def test_bench_cmd_passes_flags_through(tmp_path):
    a = SimpleNamespace(quick=True, suite=["search", "memory"], out=str(tmp_path), no_doc=True, json=True)
    assert bench_cmd.argv_of(a) == ["--quick", "--suite", "search", "--suite", "memory", "--out",
                                    str(tmp_path.resolve()), "--no-doc", "--json"]
    assert bench_cmd.script().name == "bench.py"
    assert set(bench_cmd.SUITES) == set(bench.SUITES)


def test_ctx_writes_json_and_no_doc_leaves_docs_alone(tmp_path):
    ctx = bench.Ctx(True, tmp_path, doc=False, command="rhino bench --quick")
    p = ctx.write_json("x", {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1}
    assert ctx.plot_path("x.png") is None
    assert "**quick run**: `rhino bench --quick`" in ctx.header("T", "what")


def test_plan_run_reports_wall_cpu_and_split(tmp_path, monkeypatch):
    monkeypatch.setenv("RHINO_CACHE", str(tmp_path))
    path, info = planrun.export("mlp", fn="train_step")
    assert path.is_file() and info["params"] > 0
    assert planrun.export("mlp", fn="train_step")[0] == path             # cached
    d = planrun.plan(path, "1x4xcpu-test")
    assert d["wall_s"] > 0 and d["cpu_s"] > 0 and d["search"]["solve_s"] is not None
    assert planrun.best_baseline(d)["name"] in ("dp", "megatron", "dp-tp")
    assert "error" in planrun.plan(path, "1x4xnope")


def test_plans_executed_by_xla_give_single_device_numbers():
    m = zoo.get("mlp", dims=(16, 64, 8), batch=16)
    text, _ = m.lower("train_step")
    args = [np.asarray(a) for a in jax.tree_util.tree_leaves(m.args("train_step"))]
    want = [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.jit(m.fns["train_step"])(*m.args("train_step")))]
    variants, res = xla_spmd.plan_variants(text, "1x8xcpu-test")
    assert {v.name for v in variants} >= {"auto", "dp", "megatron"}
    from jax._src.sharding_impls import GSPMDSharding
    devs = tuple(jax.devices()[:8])
    for v in variants:
        exe = xla_spmd.compile_spmd(v.text, 8)
        out = exe.execute_sharded(xla_spmd.place(exe, args, 8)).disassemble_into_single_device_arrays()
        for i, (shards, s, w) in enumerate(zip(out, exe.get_output_shardings(), want)):
            g = jax.make_array_from_single_device_arrays(w.shape, GSPMDSharding(devs, s), shards)
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-5, err_msg=f"{v.name} result {i}")
        assert xla_spmd.memory(exe)["comparable"] > 0


@pytest.mark.slow
def test_quick_quality_suite_end_to_end(tmp_path):
    assert bench.main(["--quick", "--suite", "quality", "--out", str(tmp_path), "--no-doc"]) == 0
    d = json.loads((tmp_path / "quality.json").read_text())
    assert len(d["rows"]) == 8 and all("auto" in r for r in d["rows"])


def test_search_only_reruns_one_role_and_keeps_the_other_rows(tmp_path, monkeypatch):
    ran = []
    info = {"params": 1e9, "ops": 10, "mbytes": 1.0}
    monkeypatch.setattr(planrun, "export", lambda model, **ov: (tmp_path / "p.mlir", info))
    monkeypatch.setattr(planrun, "plan", lambda path, cl, level: ran.append(cl) or
                        {"wall_s": 1.0, "cpu_s": 1.0, "command": "rhino plan", "search": {}, "mesh": None})
    names = [c["name"] for c in suite_search.cases(False)]
    prev = [{**c, "program": info, "wall_s": 9.0, "cpu_s": 9.0, "command": "old"} for c in suite_search.cases(False)]
    (tmp_path / "search.json").write_text(json.dumps({"label": "full", "revision": "abc1234", "rows": prev}))
    ctx = bench.Ctx(False, tmp_path, doc=False, command="rhino bench --suite search --only layers", only="layers")
    res = suite_search.run(ctx)
    assert [r["name"] for r in res["rows"]] == names
    fresh = [r for r in res["rows"] if not r.get("kept")]
    assert len(ran) == len(fresh) == 8 and all(r["role"].startswith("layers") for r in fresh)
    assert all(r["wall_s"] == 9.0 and r["kept_from"] == "abc1234" for r in res["rows"] if r.get("kept"))
    assert res["checks"]["96 vs 12 layers (unrolled)"]["value"].startswith("1.00x wall")
    assert "(kept)" in res["checks"]["GPT-1.5B 1x8 O2"]["value"]
    assert "(kept)" in suite_search.section(ctx, res) and "abc1234" in suite_search.section(ctx, res)
    a = SimpleNamespace(quick=False, suite=["search"], out=None, no_doc=False, json=False, only="layers")
    assert bench_cmd.argv_of(a)[-2:] == ["--only", "layers"]


def test_readme_block_keeps_figures_a_partial_run_does_not_give(tmp_path, monkeypatch):
    import readme
    md = tmp_path / "README.md"
    md.write_text("# x\n\n<!-- bench:results -->\n## Results\n\n| figure | measured | target | run |\n"
                  "|---|---|---|---|\n| search: old check | 9 s | <= 5 s | full |\n"
                  "| fidelity: Kendall tau, 10 plans on 4 CPU ranks | 0.78 | >= 0.7 | full |\n"
                  "<!-- /bench:results -->\n\n## Docs\n")
    monkeypatch.setattr(readme, "README", md)
    (tmp_path / "search.json").write_text(json.dumps(
        {"label": "full", "checks": {"old check": {"value": "3 s", "target": "<= 5 s"}}}))
    readme.write(tmp_path, "rhino bench --suite search")
    text = md.read_text()
    assert "| search: old check | 3 s | <= 5 s | full |" in text and "9 s" not in text
    assert "| fidelity: Kendall tau, 10 plans on 4 CPU ranks | 0.78 | >= 0.7 | full |" in text
    assert text.count("<!-- bench:results -->") == 1 and text.endswith("## Docs\n")
