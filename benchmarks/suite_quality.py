"""Plan quality: predicted step time of the auto plan vs the baselines (data parallel,
ZeRO-1/2/3, Megatron tensor parallel, DP x TP) per model and cluster, as the planner reports
them (called in-process; each baseline on its best mesh, only plans that fit the device memory
count); where `rhino plan` would pick a pipeline on several nodes, that is shown too.

Models are train steps (forward + backward + Adam) in bf16: GPT-3 1.3B, BERT-large,
the GShard MoE (3.5B) and WRN-50-2, global batch 64, on 1x8 and 8x8 H100 (quick: two
layers / one block per stage, same clusters).
"""
from __future__ import annotations

import planrun
from report import table

MODELS = [  # (label, zoo name, overrides for full, overrides for quick)
    ("GPT-3 1.3B", "gpt-1.3b", {}, {"n_layer": 2}),
    ("BERT-large", "bert-large", {}, {"n_layer": 2}),
    ("GShard MoE 3.5B", "gshard-moe-3.5b", {}, {"n_layer": 2}),
    ("WRN-50-2", "wrn-50-2", {}, {"stages": (1, 1, 1, 1)}),
]
CLUSTERS = ("1x8xH100", "8x8xH100")


def run(ctx) -> dict:
    rows = []
    for label, name, full, quick in MODELS:
        ov = {"batch": 64, "dtype": "bfloat16", **(quick if ctx.quick else full)}
        path, info = planrun.export(name, **ov)
        for cl in CLUSTERS:
            ctx.log(f"quality: {label} on {cl}")
            d = planrun.plan_in_process(path, cl)
            rows.append(_row(label, name, ov, info, cl, d))
    res = {"label": ctx.label, "rows": rows, "summary": summary(rows)}
    ctx.write_json("quality", res)
    ctx.section("quality", section(ctx, res))
    return res


def summary(rows) -> str:
    planned = [r for r in rows if "auto" in r]
    wins = [r for r in planned if r["verdict"].startswith(("auto <=", "only auto"))]
    out = f"auto <= every baseline that fits in {len(wins)} of {len(planned)} (model, cluster) pairs with a plan"
    failed = [f"{r['model']} on {r['cluster']}" for r in rows if "auto" not in r]
    return out + (f"; no plan at all for {', '.join(failed)} (see the error)" if failed else "")


def _row(label, name, ov, info, cl, d) -> dict:
    row = {"model": label, "zoo": name, "overrides": ov, "cluster": cl, "params": info["params"],
           "ops": info["ops"], "plan_wall_s": d["wall_s"]}
    if "error" in d:
        row["error"] = d["error"]
        return row
    p = d["prediction"]
    row["auto"] = {"step_time_s": p["step_time_s"], "compute_s": p["compute_s"], "comm_s": p["comm_s"],
                   "memory_per_device_bytes": p["memory_per_device_bytes"], "mesh": d["mesh"],
                   "strategy": d["strategy"], "microbatches": d.get("microbatches", 1), "remat": d.get("remat") or []}
    row["baselines"] = d["baselines"]
    if "pipeline" in d:
        row["pipeline"] = d["pipeline"]
    best = planrun.best_baseline(d)
    row["best_baseline"] = best["name"] if best else None
    if best is None:
        row["verdict"] = "only auto fits memory"
    elif p["step_time_s"] <= best["step_time_s"] * (1 + 1e-9):
        row["verdict"] = "auto <= every baseline"
    else:
        row["verdict"] = (f"auto {p['step_time_s'] / best['step_time_s']:.2f}x slower than {best['name']} "
                          f"({_why(p, best)})")
    return row


def _why(p, best) -> str:
    """A first reading of why auto lost: where its time goes vs the baseline's."""
    if p["comm_s"] > best["comm_s"]:
        return (f"more communication: {p['comm_s'] * 1e3:.1f} vs {best['comm_s'] * 1e3:.1f} ms; the O2 "
                "descent moves one decision group at a time from the best seed and can stop in a local optimum")
    return (f"more compute: {p['compute_s'] * 1e3:.1f} vs {best['compute_s'] * 1e3:.1f} ms (less of the work "
            "is split)")


def _ms(x) -> str:
    return f"{x * 1e3:.1f}" if x is not None else "-"


def _gib(x) -> str:
    return f"{x / 2**30:.1f}"


def section(ctx, res) -> str:
    rows = []
    for r in res["rows"]:
        if "error" in r:
            err = r["error"].replace("rhino plan: error: ", "")
            rows.append([r["model"], r["cluster"], "no plan", "", "", "", "", "", err])
            continue
        a = r["auto"]
        base = {b["name"]: b for b in r["baselines"]}
        cell = lambda n: (f"{_ms(base[n]['step_time_s'])}" + ("" if base[n]["fits"] else " (OOM)")  # noqa: E731
                          if n in base else "-")
        mesh = "x".join(str(s) for _, s in a["mesh"])
        pols = sorted({g["policy"] for g in a.get("remat") or [] if g["policy"] != "none"})
        train = (f", {a['microbatches']} micro-batches" if (a.get("microbatches") or 1) > 1 else "") \
            + (f", remat {'/'.join(pols)}" if pols else "")
        pp, note = r.get("pipeline"), ""
        if pp and pp["step_time_s"] < a["step_time_s"]:
            note = (f"; rhino plan picks a {pp['stages']}-stage pipeline ({pp['microbatches']} mb): "
                    f"{_ms(pp['step_time_s'])} ms")
        rows.append([r["model"], r["cluster"], f"**{_ms(a['step_time_s'])}** ({_ms(a['compute_s'])} + "
                     f"{_ms(a['comm_s'])})",
                     f"{mesh} {a['strategy']}{train}, {_gib(a['memory_per_device_bytes'])} GiB{note}",
                     cell("dp"), cell("zero3"), cell("megatron"), cell("dp-tp"), r["verdict"]])
    hdr = ["model", "cluster", "auto ms (compute + comm)", "auto plan", "DP ms", "ZeRO-3 ms", "Megatron ms",
           "DP x TP ms", "verdict"]
    return (ctx.header("Plan quality: auto vs baselines (predicted)",
                       "Predicted step time (ms) of the single-stage plans `rhino plan` compares (the planner "
                       "called in-process) on a bf16 train step, global "
                       "batch 64; each baseline on its best mesh; (OOM): the baseline needs more than the "
                       "80 GiB of an H100, so it is not a valid plan. Compute and communication are summed "
                       "(no overlap is modelled). ZeRO-1/2 are in the JSON. Every plan, auto and baselines, "
                       "may use recomputation and gradient accumulation (the auto column's plan names them "
                       "when it does); \"no plan\": nothing the single-stage planner explores fits.")
            + "\n" + table(hdr, rows) + "\n\n" + res["summary"] + ".\n")
