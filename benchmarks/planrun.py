"""Zoo programs on disk and `rhino plan` runs timed the way a user sees them.

`export` writes a zoo function's StableHLO once and keeps it in a cache keyed by the
model, the overrides and the zoo's source (lowering a 96-layer GPT takes longer than
planning it, and the search benchmark is about the planner). `plan` runs
`rhino plan FILE --cluster C --level L --json` in a fresh process: wall time, CPU time
of the child (user + sys, steadier than wall on a shared machine) and the planner's
own split parse / rules / coarsen / solve from the JSON.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    root = os.environ.get("RHINO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rhino_mlir")
    return Path(root) / "bench"


def _zoo_hash() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "rhino_mlir" / "zoo").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def export(model: str, fn: str = "train_step", **overrides) -> tuple[Path, dict]:
    """(path of the StableHLO text, info: ops, bytes, parameters, export seconds)."""
    key = json.dumps([model, fn, sorted(overrides.items()), _zoo_hash()], default=str)
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    stem = f"{model}-{fn}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    path, meta = d / f"{stem}.mlir", d / f"{stem}.json"
    if path.is_file() and meta.is_file():
        return path, json.loads(meta.read_text())
    from rhino_mlir import zoo
    t0 = time.perf_counter()
    m = zoo.get(model, **overrides)
    text, _ = m.lower(fn)
    info = {"model": model, "fn": fn, "overrides": overrides, "export_s": round(time.perf_counter() - t0, 2),
            "ops": text.count(" = ") + text.count("stablehlo.return"), "mbytes": round(len(text) / 1e6, 2),
            "params": m.n_params()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    meta.write_text(json.dumps(info, default=str))
    return path, info


def rhino_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "rhino"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "rhino_mlir.tools.rhino"]


def plan(path: Path, cluster: str, level: str = "O2", strategy: str = "auto", timeout: float = 1800,
         extra: tuple = ()) -> dict:
    """One `rhino plan --json` in a child process; its JSON plus wall_s and cpu_s."""
    cmd = rhino_cmd() + ["plan", str(path), "--cluster", cluster, "--level", level,
                         "--strategy", strategy, "--json", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        return {"error": last, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "command": _show(cmd)}
    d = json.loads(p.stdout)
    d.update(wall_s=round(wall, 3), cpu_s=round(cpu, 3), command=_show(cmd))
    if "stages" in d and "prediction" not in d:        # the planner chose a pipeline
        d["mesh"] = d["meshes"][0]["axes"] if d.get("meshes") else []
        d["strategy"] = f"pipeline {d['stages']} stages x {d['microbatches']} mb ({d.get('schedule')})"
        d.setdefault("search", {})
    return d


def plan_in_process(path: Path, cluster: str) -> dict:
    """The single-stage plan with its baselines (what `rhino plan --json` prints for one
    node), plus `pipeline`: the pipeline `rhino plan` weighs on several nodes, if any."""
    import dataclasses
    from types import SimpleNamespace

    from rhino_mlir import ir as I
    from rhino_mlir.cluster import load_cluster
    from rhino_mlir.errors import RhinoError
    from rhino_mlir.partition.search.planner import Request, plan_module
    from rhino_mlir.passes import REGISTRY, PassContext
    ctx = I.new_context()
    module = I.parse_module(path.read_bytes(), ctx, str(path))
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), module)
    t0 = time.perf_counter()
    try:
        res = plan_module(module, Request(load_cluster(cluster)))
    except RhinoError as e:
        return {"error": str(e), "wall_s": round(time.perf_counter() - t0, 2)}
    d = dataclasses.asdict(res.plan)
    d.pop("values", None)
    d.update(step_time_s=res.plan.prediction.step_time_s, wall_s=round(time.perf_counter() - t0, 2))
    try:
        from rhino_mlir.tools.plan_cmd import auto_pipeline
        ns = SimpleNamespace(cluster=cluster, memory=None, stages=None, level="O2", batch_args=None)
        pipe = auto_pipeline(ns, module, res)
    except (ImportError, AttributeError, TypeError):
        pipe = None
    if pipe is not None and pipe[0].fits:
        pp = pipe[0]
        d["pipeline"] = {"stages": pp.stages, "microbatches": pp.microbatches, "step_time_s": pp.step_time_s,
                         "bubble": getattr(pp, "bubble", None)}
    return d


def _show(cmd: list[str]) -> str:
    out = ["rhino" if Path(c).name == "rhino" else c for c in cmd]
    return " ".join(out).replace(str(cache_dir()) + "/", "$CACHE/")


def best_baseline(d: dict) -> dict | None:
    """The fastest baseline of a plan JSON that fits memory (None if none fits)."""
    fits = [b for b in d.get("baselines", []) if b.get("fits")]
    return min(fits, key=lambda b: b["step_time_s"]) if fits else None
