"""Recomputation and accumulation (issue 11): plans for GPT-3 shapes, and memory checked on XLA.

Sections of docs/benchmarks.md it rewrites:
  bench:training-plans   `rhino plan --json` in a fresh process for the GPT-3 1.3B train step
                         (24 x 2048, batch 64 x 2048, Adam, f32) on 1x8xH100 at 80 GiB and the
                         175B shape (96 x 12288, batch 1536 x 2048) on 128x8xH100 at 80 GiB: wall
                         time, the chosen plan, every baseline (with full recomputation and the
                         smallest accumulation that fits), MFU beside the Megatron-style 3-D plan;
  bench:training-memory  small train steps (an MLP and a GPT whose activations dominate) planned
                         on 4 CPU devices: the planner's prediction and the memory model on the
                         rewritten program (rhino-remat / rhino-accumulate applied) against XLA's
                         compiled memory of the partitioned per-device program (4 replicas), and
                         one plan with and without full recomputation: XLA's peak and the
                         measured step time of the 4 replicas on XLA CPU.
JSON: benchmarks/results/training.json. Run: .venv/bin/python benchmarks/bench_training.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import planrun  # noqa: E402
import report  # noqa: E402

GIB, MIB = float(1 << 30), float(1 << 20)
BIG = [("GPT-3 1.3B", "gpt-1.3b", dict(n_layer=24, batch=64, seq=2048), "1x8xH100", "80GiB", 30.0),
       ("GPT-3 175B shape", "gpt-175b", dict(n_layer=96, batch=1536, seq=2048), "128x8xH100", "80GiB", 60.0)]
SMALL = [("MLP 4x256, batch 4096", "mlp", dict(dims=(64, 256, 256, 256, 256, 8), batch=4096)),
         ("GPT 4x64, batch 16x256", "gpt-tiny", dict(batch=16, seq=256, d_model=64, n_layer=4))]


def big_plans() -> list[dict]:
    rows = []
    for name, model, ov, cluster, mem, limit in BIG:
        path, info = planrun.export(model, **ov)
        d = planrun.plan(path, cluster, extra=("--memory", mem))
        d.update(case=name, cluster=cluster, memory=mem, limit_s=limit, program=info)
        print(f"{name}: {d.get('chosen')} {d.get('step_time_s')} s predicted, wall {d['wall_s']} s",
              file=sys.stderr)
        rows.append(d)
    return rows


def _module(model: str, cfg: dict):
    from rhino_mlir import ir as I
    from rhino_mlir import zoo
    from rhino_mlir.passes import REGISTRY, PassContext
    m = zoo.get(model, **cfg)
    text, _ = m.lower("train_step")
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), mod)
    return mod, m


def _rewrite(mod, res, policies: dict, k: int):
    """(global annotated text after the passes and rhino-propagate, local text, memory report)."""
    from rhino_mlir import ir as I
    from rhino_mlir.passes.auto_shard import apply_training
    from rhino_mlir.partition.search.apply import write_result
    from rhino_mlir.partition.spmd.memory import memory_report
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    write_result(mod, res)
    copy = I.parse_module(I.print_module(mod), I.new_context())
    apply_training(copy, policies, k)
    run_pipeline_str(copy, "builtin.module(rhino-propagate)", PassContext(copy.context))
    rep = memory_report(copy)
    text = I.print_module(copy)
    local = I.parse_module(text, I.new_context())
    run_pipeline_str(local, "builtin.module(rhino-spmd-partition)", PassContext(local.context))
    return text, I.print_module(local), rep


def _xla(local_text: str, n: int, inputs=None, mesh=None, repeat: int = 3) -> dict:
    """XLA's compiled memory of the per-device program (n replicas); its step time if inputs."""
    import harness.xla_oracle as XO
    exe = XO._compile(XO.prepare_local(local_text, n), n)
    st = exe.get_compiled_memory_stats()
    out = {"arguments": st.argument_size_in_bytes, "outputs": st.output_size_in_bytes,
           "aliased": st.alias_size_in_bytes, "temporaries": st.temp_size_in_bytes}
    out["comparable"] = out["arguments"] + out["outputs"] - out["aliased"] + out["temporaries"]
    if inputs is not None:
        XO.run_local(local_text, inputs, mesh)        # warm-up (the executable is cached)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            XO.run_local(local_text, inputs, mesh)
            times.append(time.perf_counter() - t0)
        out["step_s"] = sorted(times)[len(times) // 2]
    return out


def small_memory() -> list[dict]:
    from rhino_mlir.cluster import load_cluster
    from rhino_mlir.partition.search.planner import Request, plan_module
    from rhino_mlir.tools.train_check import verify
    from harness.train_steps import later_step
    rows = []
    cl = load_cluster("1x4xcpu-test")
    for name, model, cfg in SMALL:
        mod, m = _module(model, cfg)
        res0 = plan_module(mod, Request(cl.with_memory(2**40), remat="none", microbatches=1, check=verify))
        plain = min(c.memory["peak"] for c in res0.candidates)
        for label, kw in (("K=2, none", dict(remat="none", microbatches=2)),
                          ("K=1, full", dict(remat="full", microbatches=1)),
                          ("auto at 60% of the plain minimum", dict(budget=0.6 * plain))):
            budget = kw.pop("budget", 2**40)
            mod, _ = _module(model, cfg)
            res = plan_module(mod, Request(cl.with_memory(int(budget)), check=verify, **kw))
            p = res.plan
            pol = {r["group"]: r["policy"] for r in p.remat if r["policy"] != "none"}
            _, local, rep = _rewrite(mod, res, pol, p.microbatches)
            x = _xla(local, 4)
            model_b = max(rep.peak, rep.xla_comparable)
            rows.append({"case": name, "choice": label, "mesh": p.mesh, "microbatches": p.microbatches,
                         "remat": sorted(set(pol.values())) or ["none"], "budget": budget if budget < 2**40 else None,
                         "planner": p.prediction.memory_per_device_bytes, "model": model_b, "xla": x,
                         "error_model": model_b / x["comparable"] - 1,
                         "error_planner": p.prediction.memory_per_device_bytes / x["comparable"] - 1})
            print(f"{name} {label}: planner {p.prediction.memory_per_device_bytes / MIB:.2f} model "
                  f"{model_b / MIB:.2f} XLA {x['comparable'] / MIB:.2f} MiB", file=sys.stderr)
        # the same plan (shardings, K = 1) with and without full recomputation, measured
        mod, _ = _module(model, cfg)
        res = plan_module(mod, Request(cl.with_memory(2**40), remat="none", microbatches=1))
        from rhino_mlir.sharding import Mesh
        mesh = Mesh("mesh", tuple((a, s) for a, s in res.plan.mesh))
        xs = later_step(m)
        pair = {}
        for pol_name in ("none", "full"):
            groups = {r["group"]: pol_name for r in res.plan.remat} if pol_name != "none" else {}
            if pol_name != "none" and not groups:
                from rhino_mlir.partition.remat.plan import plan_remat
                groups = {gr.group: "full" for gr in plan_remat(mod)}
            _, local, rep = _rewrite(mod, res, groups, 1)
            pair[pol_name] = _xla(local, 4, xs, mesh)
            pair[pol_name]["model"] = max(rep.peak, rep.xla_comparable)
        rows.append({"case": name, "choice": "same plan, remat none vs full (measured)", "mesh": res.plan.mesh,
                     "none": pair["none"], "full": pair["full"],
                     "peak_saved": 1 - pair["full"]["comparable"] / pair["none"]["comparable"],
                     "time_cost": pair["full"]["step_s"] / pair["none"]["step_s"] - 1})
    return rows


def _pct(e: float) -> str:
    return f"{round(e, 2) + 0.0:+.0%}"             # no "-0%"


def section(big: list[dict], small: list[dict], cmd: str) -> tuple[str, str]:
    head = f"Command: `{cmd}`. Machine: {report.machine()}. Revision {report.revision()}.\n\n"
    rows = []
    for d in big:
        if "error" in d:
            rows.append([d["case"], d["cluster"], "-", d["error"][:90], "-", "-", "-", f"{d['wall_s']:.1f}"])
            continue
        pipe = d.get("pipeline") or {}
        plan = (f"{pipe.get('stages')} stages x tp {pipe.get('tp')} x dp {pipe.get('dp')}, "
                f"{pipe.get('remat')}" if d.get("chosen") == "pipeline" else
                f"mesh {'x'.join(str(s) for _, s in d['mesh'])}, "
                + (", ".join(f"group {r['group']} {r['policy']}" for r in d["remat"] if r["policy"] != "none")
                   or "no recomputation"))
        rows.append([d["case"], d["cluster"], d.get("chosen"), plan, d.get("microbatches"),
                     f"{d['step_time_s']:.3f}", f"{d['memory_per_device_bytes'] / GIB:.1f}", f"{d['wall_s']:.1f}"])
    t1 = report.table(["program", "cluster", "chosen", "plan", "micro-batches", "step s (pred.)",
                       "GiB/device", "plan wall s"], rows)
    base = []
    for d in big:
        for b in d.get("baselines", []):
            base.append([d["case"], b["name"], "x".join(str(s) for _, s in b["mesh"]), b.get("microbatches", 1),
                         b.get("remat", "none"), f"{b['step_time_s']:.3f}",
                         f"{b['memory_per_device_bytes'] / GIB:.1f}", "yes" if b["fits"] else "no",
                         f"{b['mfu']:.1%}" if b.get("mfu") is not None else ""])
    t2 = report.table(["program", "baseline", "mesh", "micro-batches", "remat", "step s (pred.)", "GiB/device",
                       "fits", "MFU"], base)
    mfu = []
    for d in big:
        if "error" in d:
            continue
        fits = [b for b in d.get("baselines", []) if b["fits"]]
        fastest = min(fits, key=lambda b: b["step_time_s"]) if fits else None
        line = (f"{d['case']}: planned in {d['wall_s']:.1f} s wall (target <= {d['limit_s']:g} s); auto "
                f"{d['step_time_s']:.3f} s vs the fastest baseline that fits "
                + (f"{fastest['name']} {fastest['step_time_s']:.3f} s" if fastest else "(none)"))
        if d.get("mfu") is not None:
            m3 = next((b for b in fits if b["name"] == "megatron-3d"), None)
            line += f"; MFU auto {d['mfu']:.1%}" + (f" vs megatron-3d {m3['mfu']:.1%}" if m3 else "")
        mfu.append(line)
    plans = head + t1 + "\n\nBaselines, priced by the same model (`/full`: full recomputation and the smallest " \
        "accumulation that fits; `megatron-3d`: TP within a node, PP across nodes, DP over the rest, 1F1B, full " \
        "recomputation, the fewest stages that fit):\n\n" + t2 + ("\n\n" + "\n".join(f"- {x}" for x in mfu) if mfu else "") + "\n"
    mrows, prow = [], []
    for r in small:
        if "xla" in r:
            mrows.append([r["case"], r["choice"], "x".join(str(s) for _, s in r["mesh"]), r["microbatches"],
                          ",".join(r["remat"]), f"{r['planner'] / MIB:.2f}", f"{r['model'] / MIB:.2f}",
                          f"{r['xla']['comparable'] / MIB:.2f}", _pct(r['error_planner']), _pct(r['error_model'])])
        else:
            prow.append([r["case"], f"{r['none']['comparable'] / MIB:.2f}", f"{r['full']['comparable'] / MIB:.2f}",
                         f"{r['peak_saved']:.0%}", f"{r['none']['step_s'] * 1e3:.1f}", f"{r['full']['step_s'] * 1e3:.1f}",
                         f"{r['time_cost']:+.0%}"])
    t3 = report.table(["program", "choice", "mesh", "K", "remat", "planner MiB", "memory model MiB", "XLA MiB",
                       "planner vs XLA", "model vs XLA"], mrows)
    t4 = report.table(["program", "XLA MiB, no remat", "XLA MiB, full remat", "peak saved",
                       "step ms, no remat", "step ms, full remat", "time cost"], prow)
    mem = head + "Per device on 4 CPU devices (`1x4xcpu-test`): the planner's prediction, the memory model on " \
        "the rewritten program (passes applied, rhino-propagate run) and XLA's compiled memory of the partitioned " \
        "per-device program (arguments + outputs - aliased + temporaries). The planner and the model report the larger " \
        "of their liveness peak and that sum (temporaries that fit in result buffers not yet written left out, as " \
        "XLA places them):\n\n" + t3 + \
        "\n\nThe same plan with and without full recomputation (XLA CPU, 4 replicas; step time the median of 3):" \
        "\n\n" + t4 + "\n"
    return plans, mem


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-big", action="store_true", help="only the small XLA comparisons")
    a = ap.parse_args()
    big = [] if a.skip_big else big_plans()
    small = small_memory()
    cmd = ".venv/bin/python benchmarks/bench_training.py" + (" --skip-big" if a.skip_big else "")
    kept = {}
    if a.skip_big:                   # the big plans of the last full run stay, with their command
        old = report.RESULTS / "training.json"
        if old.exists():
            d = json.loads(old.read_text())
            kept = {"plans": d.get("plans", []), "plans_command": d.get("plans_command", d.get("command")),
                    "plans_revision": d.get("plans_revision", d.get("revision"))}
    report.write_json("training", {"machine": report.machine(), "revision": report.revision(),
                                   "command": cmd, "plans": big, "memory": small, **kept})
    plans, mem = section(big, small, cmd)
    if big:
        report.write_section("training-plans", plans)
    report.write_section("training-memory", mem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
