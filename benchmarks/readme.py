"""The README's results block (`<!-- bench:results -->` ... `<!-- /bench:results -->`):
one table of headline figures from the JSON the suites wrote, and the search plot.
bench.py rewrites it after a run that writes docs; only that block changes. A figure this run's
JSON does not give (a suite not rerun, its JSON absent on this machine) keeps its row from the
block as it was, so a partial run never drops the other suites' figures."""
from __future__ import annotations

import json
import re
from pathlib import Path

from report import ROOT, table

README = ROOT / "README.md"


def _load(out: Path, name: str) -> dict:
    try:
        return json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}


def rows(out: Path) -> list[list[str]]:
    r = []
    s = _load(out, "search")
    for k, v in s.get("checks", {}).items():
        r.append([f"search: {k}", v["value"], v["target"], s.get("label", "")])
    q = _load(out, "quality")
    gains = []
    for x in q.get("rows", []):
        best = min((b for b in x.get("baselines", []) if b["fits"]), key=lambda b: b["step_time_s"], default=None)
        if "auto" in x and best:
            gains.append((best["step_time_s"] / x["auto"]["step_time_s"], f"{x['model']} {x['cluster']}"))
    if gains:
        lo, hi = min(gains), max(gains)
        r.append(["quality (predicted, H100 clusters): best baseline / auto step time",
                  f"{lo[0]:.2f}x ({lo[1]}) to {hi[0]:.2f}x ({hi[1]}); {q.get('summary', '')}",
                  ">= 1 everywhere", q.get("label", "")])
    m = _load(out, "measured")
    for k, v in m.get("checks", {}).items():
        r.append([f"measured on 8 XLA CPU devices: {k}", f"{v['value']:.2f}", v["target"], m.get("label", "")])
    f = _load(out, "fidelity")
    if f:
        r.append([f"fidelity: Kendall tau, {len(f['rows'])} plans on 4 CPU ranks", f"{f['kendall_tau']:.2f}",
                  ">= 0.7", f.get("label", "")])
    mp = _load(out, "memory_plans")
    if mp.get("rows"):
        r.append(["memory per device, analysis/memory.py vs XLA, by plan",
                  ", ".join(f"{x['plan']} {x['error_memory_model']:+.0%}" for x in mp["rows"]),
                  "within 15%", mp.get("label", "")])
    return r


def _kept(text: str, fresh: list[list[str]]) -> list[list[str]]:
    """The rows of the current block whose figure `fresh` does not have, in their order."""
    start = text.find("<!-- bench:results -->")
    end = text.find("<!-- /bench:results -->", start)
    if start < 0 or end < 0:
        return []
    have = {r[0] for r in fresh}
    out = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or cells[0] in ("figure", "") or set(cells[0]) <= set("-"):
            continue
        if cells[0] not in have:
            out.append(cells)
    return out


def write(out: Path, command: str) -> None:
    text = README.read_text()
    fresh = rows(out)
    body = ("## Results\n\nHeadline figures written by `rhino bench` (last: `" + command + "`; the run "
            "column says whether each came from a `--quick` or a full run) on a 2-core CPU container "
            "(details, machine and method: [docs/benchmarks.md](docs/benchmarks.md)); GPU figures are "
            "predictions of the cost model for H100 clusters.\n\n"
            + table(["figure", "measured", "target", "run"], fresh + _kept(text, fresh))
            + "\n\n![search time vs layers](docs/img/search_layers.png)\n")
    start, end = "<!-- bench:results -->", "<!-- /bench:results -->"
    block = f"{start}\n{body}{end}"
    pat = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _: block, text)
    elif "\n## Docs" in text:
        text = text.replace("\n## Docs", f"\n{block}\n\n## Docs", 1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text)
