"""Memory per device by plan: predicted vs XLA-measured, on the GPT train step of gpt_xla.py.

For the auto plan and each baseline: the planner's prediction (its liveness peak, with
arguments / outputs / temporaries), analysis/memory.py's report on the same annotated
program (fusion-aware liveness; `xla_comparable` = arguments + outputs - aliased +
temporaries, XLA's way of adding up), and XLA's get_compiled_memory_stats() for that
sharding partitioned by XLA on 8 CPU devices. A full run also reruns
benchmarks/bench_memory.py (the memory model's own XLA comparison, `bench:memory`).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gpt_xla
from report import table

MIB = float(1 << 20)


def _model_report(text: str) -> dict:
    from rhino_mlir import ir as I
    from rhino_mlir.analysis import memory as M
    from rhino_mlir.partition.spmd import memory as SM
    from rhino_mlir.passes import REGISTRY, PassContext
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    REGISTRY["rhino-propagate"]().apply(PassContext(ctx), mod)
    r = SM.memory_report(mod)
    return {"peak": r.peak, "xla_comparable": r.xla_comparable, "temporaries": r.xla_temporaries,
            "arguments": r.arguments, "outputs": r.outputs}


def run(ctx) -> dict:
    g = gpt_xla.variants(ctx)
    rows = []
    for v in g["variants"]:
        ctx.log(f"memory: {v.name}")
        xm = v.stats["xla_memory"]
        ours = _model_report(v.text)
        rows.append({"plan": v.name, "mesh": v.mesh, "planner_peak": v.predicted_bytes, "memory_model": ours,
                     "xla": xm, "error_memory_model": ours["xla_comparable"] / xm["comparable"] - 1,
                     "error_planner": v.predicted_bytes / xm["comparable"] - 1})
    res = {"label": ctx.label, "model": g["cfg"], "params": g["params"], "rows": rows,
           "summary": "; ".join(f"{r['plan']} model {r['error_memory_model']:+.0%} planner {r['error_planner']:+.0%}"
                                for r in rows)}
    if not ctx.quick and ctx.doc:
        ctx.log("memory: benchmarks/bench_memory.py (its own bench:memory section)")
        p = subprocess.run([sys.executable, str(Path(__file__).with_name("bench_memory.py"))],
                           capture_output=True, text=True)
        res["bench_memory_rc"] = p.returncode
    ctx.write_json("memory_plans", res)
    _plot(ctx, rows)
    ctx.section("memory-plans", section(ctx, res))
    return res


def section(ctx, res) -> str:
    rows = []
    for r in res["rows"]:
        x, m = r["xla"], r["memory_model"]
        rows.append([r["plan"], "x".join(str(s) for _, s in r["mesh"]), f"{r['planner_peak'] / MIB:.1f}",
                     f"{m['xla_comparable'] / MIB:.1f} ({m['temporaries'] / MIB:.1f})",
                     f"{x['comparable'] / MIB:.1f} ({x['temporaries'] / MIB:.1f})",
                     f"{r['error_planner']:+.0%}", f"{r['error_memory_model']:+.0%}"])
    hdr = ["plan", "mesh", "planner peak MiB", "memory model MiB (temps)", "XLA MiB (temps)",
           "planner vs XLA", "memory model vs XLA"]
    c = res["model"]
    img = "\n![memory per device by plan](img/memory_by_plan.png)\n" if ctx.doc else ""
    return (ctx.header("Memory per device by plan: predicted vs XLA",
                       f"GPT train step (Adam, f32; {c['n_layer']} layers, d {c['d_model']}, {c['seq']} "
                       f"tokens, batch {c['batch']}, vocab {c['vocab']}; {res['params'] / 1e6:.1f}M "
                       "parameters) planned for 1x8xcpu; each plan's shardings written into the program "
                       "and partitioned by XLA on 8 CPU devices. XLA column: arguments + outputs - aliased + "
                       "temporaries from `get_compiled_memory_stats()`; memory model: analysis/memory.py "
                       "on the same annotated program; planner peak: the planner's own quick liveness "
                       "estimate that the search uses.")
            + "\n" + table(hdr, rows) + "\n" + img)


def _plot(ctx, rows) -> None:
    path = ctx.plot_path("memory_by_plan.png")
    if path is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    x = np.arange(len(rows))
    w = 0.27
    ax.bar(x - w, [r["planner_peak"] / MIB for r in rows], w, label="planner (search)")
    ax.bar(x, [r["memory_model"]["xla_comparable"] / MIB for r in rows], w, label="analysis/memory.py")
    ax.bar(x + w, [r["xla"]["comparable"] / MIB for r in rows], w, label="XLA measured")
    ax.set_xticks(x, [r["plan"] for r in rows])
    ax.set_ylabel("MiB per device")
    ax.set_title(f"GPT train step on 8 CPU devices: memory per device by plan ({ctx.label})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
