"""Search time: `rhino plan FILE.mlir --json` wall time (StableHLO already on disk) vs
model size, layer count (unrolled and scan_layers lowering) and device count, split into
parse / rules / coarsen / solve; beside the published anchors (anchors.py).

Targets (issue 4): GPT-1.5B (48 layers) on 1x8 O2 <= 5 s; 175B-shaped (96 x 12288) on
128x8 O2 <= 60 s; 96 layers <= 2x the time of 12 layers (repeated layers reused).
"""
from __future__ import annotations

import anchors
import planrun
from report import table

H = "H100"


def cases(quick: bool) -> list[dict]:
    """name, model, overrides, cluster, level, role (headline | layers | devices | level)."""
    c = lambda name, model, cl, level="O2", role="", **ov: dict(  # noqa: E731
        name=name, model=model, overrides=ov, cluster=cl, level=level, role=role)
    out = [c("GPT-1.5B (48 layers) O2", "gpt-1.5b", f"1x8x{H}", role="target 1.5b")]
    if quick:
        layers, width = (12, 48), "gpt-125m"
    else:
        layers, width = (12, 24, 48, 96), "gpt-1.5b"
        out += [c("GPT-1.5B (48 layers) O3", "gpt-1.5b", f"1x8x{H}", "O3", role="level"),
                c("GPT-3 175B shape (96 x 12288) O2", "gpt-175b", f"128x8x{H}", role="target 175b"),
                c("GPT-3 175B shape, scan_layers, O2", "gpt-175b", f"128x8x{H}", role="175b scan",
                  scan_layers=True)]
        out += [c(f"GPT-1.5B on {n}x8", "gpt-1.5b", f"{n}x8x{H}", role="devices") for n in (2, 8, 32, 128)]
    for scan in (False, True):
        out += [c(f"{width} width, {n} layers{' (scan)' if scan else ''}", width, f"1x8x{H}",
                  role="layers scan" if scan else "layers", n_layer=n, scan_layers=scan) for n in layers]
    return out


def run(ctx) -> dict:
    only = getattr(ctx, "only", None)
    prev = _previous(ctx) if only else {}
    rows = []
    for cs in cases(ctx.quick):
        if only and not cs["role"].startswith(only):
            if cs["name"] in prev:             # not rerun: the last run's row, marked as such
                rows.append({**prev[cs["name"]], "kept": True})
            continue
        path, info = planrun.export(cs["model"], **cs["overrides"])
        ctx.log(f"search: {cs['name']} ({info['mbytes']} MB StableHLO) on {cs['cluster']} {cs['level']}")
        d = planrun.plan(path, cs["cluster"], cs["level"])
        row = {**cs, "program": info, "wall_s": d["wall_s"], "cpu_s": d["cpu_s"], "command": d["command"]}
        if "error" in d:
            row["error"] = d["error"]
        else:
            row.update(search=d.get("search", {}), mesh=d.get("mesh"), strategy=d.get("strategy"),
                       step_time_s=d.get("step_time_s"))
        rows.append(row)
    import report
    res = {"label": ctx.label, "revision": report.revision(), "rows": rows, "checks": checks(rows)}
    res["summary"] = "; ".join(f"{k}: {v['value']} ({_verdict(v)})" for k, v in res["checks"].items())
    ctx.write_json("search", res)
    _plot(ctx, rows)
    ctx.section("search", section(ctx, res))
    return res


def _previous(ctx) -> dict:
    """The last run's rows by case name (its JSON), for `--only`."""
    import json
    path = ctx.out / "search.json"
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    if old.get("label") != ctx.label:
        return {}
    return {r["name"]: {**r, "kept_from": r.get("kept_from") or old.get("revision", "an earlier run")}
            for r in old.get("rows", [])}


def checks(rows) -> dict:
    """Targets on wall time and on CPU time (what a quiet machine's wall time would be)."""
    by = {r["role"]: r for r in rows if "error" not in r}
    out = {}
    for role, key, limit in (("target 1.5b", "GPT-1.5B 1x8 O2", 5.0), ("target 175b", "175B 128x8 O2", 60.0)):
        if role in by:
            w, c = by[role]["wall_s"], by[role]["cpu_s"]
            kept = " (kept)" if by[role].get("kept") else ""
            out[key] = {"value": f"{w:.1f} s wall, {c:.1f} s cpu{kept}", "met": w <= limit, "met_cpu": c <= limit,
                        "target": f"<= {limit:g} s"}
    for role, tag in (("layers", "unrolled"), ("layers scan", "scan")):
        ls = sorted((r for r in rows if r["role"] == role and "error" not in r),
                    key=lambda r: r["overrides"]["n_layer"])
        if len(ls) >= 2:
            a, b = ls[0], ls[-1]
            rw, rc = b["wall_s"] / a["wall_s"], b["cpu_s"] / a["cpu_s"]
            kept = " (kept)" if a.get("kept") or b.get("kept") else ""
            out[f"{b['overrides']['n_layer']} vs {a['overrides']['n_layer']} layers ({tag})"] = {
                "value": f"{rw:.2f}x wall, {rc:.2f}x cpu{kept}", "met": rw <= 2.0, "met_cpu": rc <= 2.0,
                "target": "<= 2x"}
    return out


def _verdict(v) -> str:
    if v["met"]:
        return "met"
    return "met on cpu time, not on wall (load)" if v["met_cpu"] else "**not met**"


def _split(r) -> list[str]:
    s = r.get("search") or {}
    f = lambda k: f"{s[k]:.2f}" if s.get(k) is not None else "-"  # noqa: E731
    return [f(k) for k in ("parse_and_inline_s", "rules_s", "coarsen_s", "solve_s")]


def section(ctx, res) -> str:
    rows = []
    for r in res["rows"]:
        p = r["program"]
        mesh = "x".join(str(s) for _, s in r["mesh"]) if r.get("mesh") else "-"
        name = r["name"] + (" (kept)" if r.get("kept") else "")
        rows.append([name, f"{p['params'] / 1e9:.2f}B", p["ops"], p["mbytes"], r["cluster"], r["level"],
                     f"**{r['wall_s']:.2f}**", f"{r['cpu_s']:.2f}", *_split(r),
                     r.get("error", f"{mesh} {r.get('strategy', '')}")])
    hdr = ["case", "params", "ops", "MB", "cluster", "level", "wall s", "cpu s",
           "parse s", "rules s", "coarsen s", "solve s", "plan / error"]
    chk = [[k, v["value"], v["target"], _verdict(v)] for k, v in res["checks"].items()]
    img = "\n![search time vs layers](img/search_layers.png)\n" if ctx.doc else ""
    kept = sorted({r["kept_from"] for r in res["rows"] if r.get("kept")})
    if kept:
        img = (f"\nRows marked (kept) were not rerun (`--only {ctx.only}`); they come from the previous "
               f"run of this section (revision {', '.join(kept)}).\n" + img)
    return (ctx.header("Search time", "Wall time of `rhino plan FILE.mlir --cluster C --level L --json` in a "
                       "fresh process, the StableHLO already on disk (`rhino export MODEL`), so the figure "
                       "includes Python start-up, parsing and inlining; cpu s = user + sys of that process "
                       "(steadier than wall on this shared machine). The split comes from the plan's "
                       "`search` record.")
            + "\n" + table(hdr, rows) + "\n\n" + table(["check", "measured", "target", ""], chk) + "\n" + img
            + "\n" + anchors.section(res["rows"]))


def _plot(ctx, rows) -> None:
    path = ctx.plot_path("search_layers.png")
    if path is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for role, label in (("layers", "unrolled"), ("layers scan", "scan_layers")):
        ls = sorted((r for r in rows if r["role"] == role and "error" not in r),
                    key=lambda r: r["overrides"]["n_layer"])
        if ls:
            ax.plot([r["overrides"]["n_layer"] for r in ls], [r["wall_s"] for r in ls], "o-", label=f"{label}, wall")
            ax.plot([r["overrides"]["n_layer"] for r in ls], [r["cpu_s"] for r in ls], "x--", label=f"{label}, cpu")
    ax.set_xlabel("transformer layers")
    ax.set_ylabel("rhino plan time (s)")
    ax.set_title(f"Search time vs layers ({rows[-1]['model']} width, 1x8 {H}, O2; {ctx.label})", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
