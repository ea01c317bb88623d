"""`rhino monitor METRICS.jsonl [-o plot.png]`: a training job's loss and step time.

Reads the metrics file `rhino train --metrics` writes (one record per step; restarts
and checkpoints as `event` records). A step run twice (after a restart from an older
checkpoint) counts with its last record. Prints a summary; with `-o`, plots the loss
(the first scalar result, or `--key outN`) and the step time against the step, with a
line at every restart (matplotlib, the `bench` extra).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import RhinoError


def register(sub) -> None:
    p = sub.add_parser("monitor", help="summarize or plot a rhino train metrics file")
    p.add_argument("metrics", metavar="FILE.jsonl")
    p.add_argument("-o", "--output", metavar="PLOT.png", help="plot loss and step time into this image")
    p.add_argument("--key", metavar="outN", help="the result to plot as loss (default: the first one)")


def read(path: str) -> tuple[dict[int, dict], list[dict]]:
    """(step -> its last record, event records) of a metrics file."""
    p = Path(path)
    if not p.is_file():
        raise RhinoError(f"metrics file '{path}' does not exist")
    steps, events = {}, []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise RhinoError(f"{path}:{n}: not a JSON record") from None
        if "event" in rec:
            events.append(rec)
        elif "step" in rec:
            steps[int(rec["step"])] = rec
    return steps, events


def loss_key(steps: dict[int, dict], key: str | None) -> str | None:
    if not steps:
        return None
    first = steps[min(steps)]
    if key is not None:
        if key not in first:
            have = [k for k in first if k.startswith("out")]
            raise RhinoError(f"--key {key}: the records have {', '.join(have) or 'no scalar results'}")
        return key
    return next((k for k in first if k.startswith("out")), None)


def run(a) -> int:
    steps, events = read(a.metrics)
    if not steps:
        raise RhinoError(f"{a.metrics} has no step records yet")
    key = loss_key(steps, a.key)
    ks = sorted(steps)
    ms = sorted(steps[k]["step_ms"] for k in ks)
    restarts = [e for e in events if e["event"] == "restart"]
    ckpts = [e for e in events if e["event"] == "checkpoint"]
    last = steps[ks[-1]]
    print(f"{a.metrics}: steps {ks[0]}..{ks[-1]}, median step {ms[len(ms) // 2]:.2f} ms, "
          + (f"{key} {steps[ks[0]][key]} -> {last[key]}, " if key else "")
          + f"{len(restarts)} restart(s), {len(ckpts)} checkpoint(s), peak memory "
          f"{max(max(steps[k].get('rss_bytes') or [0]) for k in ks) / 2**20:.0f} MiB per rank")
    for e in restarts:
        print(f"  restart {e['attempt']}: rank {e['rank']} {e['cause']} at step {e['failed_step']}, "
              f"resumed at step {e['resume_step']}")
    if a.output:
        plot(steps, restarts, key, a.output)
        print(f"wrote {a.output}")
    return 0


def plot(steps: dict[int, dict], restarts: list[dict], key: str | None, out: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise RhinoError("rhino monitor -o needs matplotlib: pip install 'rhino_mlir[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ks = sorted(steps)
    fig, axes = plt.subplots(2 if key else 1, 1, figsize=(7, 5 if key else 3), sharex=True, squeeze=False)
    ax = axes[:, 0]
    if key:
        ax[0].plot(ks, [steps[k][key] for k in ks], lw=1.2)
        ax[0].set_ylabel(key + " (loss)")
    ax[-1].plot(ks, [steps[k]["step_ms"] for k in ks], lw=1.0, label="step")
    ax[-1].plot(ks, [steps[k].get("collective_ms", 0) for k in ks], lw=1.0, label="collectives")
    ax[-1].set_ylabel("ms (slowest rank)")
    ax[-1].set_xlabel("step")
    ax[-1].legend(loc="upper right", fontsize=8)
    for e in restarts:
        for x in ax:
            x.axvline(e["resume_step"], color="red", ls="--", lw=0.8)
    fig.tight_layout()
    tmp = Path(out).with_name(Path(out).name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
