"""Published search-time figures of other auto-parallelizers, cited, for the search section.

Only figures that were read from a public source are listed, each with where it is from;
they come from other machines and other programs, so they place our numbers, they do not
rank them. The one anchor that runs here (XLA's auto-sharding pass, through compile
options) is measured on the same program in the `measured` suite.
"""
from __future__ import annotations

from report import table

ANCHORS = [
    {"system": "Alpa (OSDI'22), inter- + intra-op (ILP per stage, DP over stages)",
     "workload": "GPT-39B, 64 GPUs", "time": "2393 s (40 min): XLA compilation 1583 s, profiling 804 s, "
     "stage DP 1.7 s", "source": "Zheng et al., Alpa, OSDI 2022 (arXiv 2201.12023), §8.5, Table 5 "
     "(from the paper; not re-run here)"},
    {"system": "XLA auto-sharding (Alpa-derived ILP inside XLA)",
     "workload": "any HLO module", "time": "solver time limit 3600 s by default, then falls back to "
     "sharding propagation", "source": "openxla/xla `xla/hlo/experimental/auto_sharding/"
     "auto_sharding_option.h`: `solver_timeout_in_seconds = 3600`"},
    {"system": "Meta autoparallel (PyTorch, ILP over DTensor placements)",
     "workload": "LLaMA-1B / LLaMA-8B / DeepSeek-V3 (trace + optimizer build + ILP solve)",
     "time": "34.7 s / 46.8 s / 59.5 s search total (ILP); 32.8 / 44.1 / 50.8 s with TRW-S",
     "source": "meta-pytorch/autoparallel pull request #521 (benchmark table); repeated layers share "
     "one strategy by default since #432"},
    {"system": "TePDist (Alibaba; Rhino's open-source sibling; cones + ILP, DP between subgraphs)",
     "workload": "HLO programs of \"tens of thousands of instructions\"", "time": "\"can easily handle this "
     "scale\" (no time given)", "source": "alibaba/TePDist README; design in Zhang et al., arXiv 2302.08141"},
]


def section(rows: list[dict]) -> str:
    ours = []
    for r in rows:
        if "error" in r or not r["role"].startswith(("target", "175b")):
            continue
        p = r["program"]
        ours.append({"system": "rhino_mlir O2 (this repo, 2-core CPU)",
                     "workload": f"{r['name']}: {p['params'] / 1e9:.1f}B parameters, {p['ops']} StableHLO ops, "
                     f"{r['cluster']}", "time": f"{r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU)",
                     "source": "search table above"})
    body = table(["system", "workload", "search / compile time", "source"],
                 [[a["system"], a["workload"], a["time"], a["source"]] for a in ANCHORS + ours])
    return ("### Anchors: published search times\n\n" + body + "\n\nRead with care: the anchors ran on "
            "other machines, on other programs (Alpa's figure includes XLA compilation and on-GPU "
            "profiling; autoparallel's includes tracing the PyTorch model); ours is the planner alone on "
            "an already exported StableHLO file. XLA's auto-sharding is measured on our own GPT train "
            "step in the `measured` section.\n")
