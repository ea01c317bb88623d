"""`rhino demo`: a GPT-style model from the zoo, partitioned data x model on 4 CPU ranks.

    rhino demo [--model gpt-tiny] [--fn forward|train_step_sgd|train_step] [--repeat 5]
    rhino demo --cluster 1x4xcpu [--strategy auto|dp|megatron|dp-tp]    # the planner decides

The whole path in one command: lower the JAX function to StableHLO (frontend), annotate
a 2x2 mesh (batch on "x", Megatron column/row-parallel weights on "y") or, with
`--cluster`, let the planner choose the mesh and every sharding, partition
(rhino-inline, rhino-propagate, rhino-spmd-partition), lower the collectives to `rhino`
imports and IREE-compile one executable for all ranks, launch 4 ranks with mpiexec, and
compare with the same JAX function run by XLA on one device. Progress goes to stderr,
the report to stdout. Exit status 1 if the numbers differ beyond DESIGN.md's tolerances.
Importing this module is cheap (the CLI builds its parser from it); jax is imported
only when the demo runs.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# argument pytree path (regex, first match wins) -> per-dimension mesh axes.
# Megatron: the first matmul of attention and MLP is column-parallel (output dim on
# y), the second row-parallel (contracting dim on y), so each sub-block needs one
# all_reduce; the batch dimension of the data is on x.
MEGATRON = {
    r"w_qkv|w_fc": (None, "y"),            # (D, 3D), (D, 4D): columns on y
    r"b_qkv|b_fc": ("y",),
    r"w_o'|w_proj": ("y", None),           # (D, D), (4D, D): rows on y
}
DATA_ROLES = ("inputs", "batch")           # Model.signature entries that hold the batch
MESH_AXES = (("x", 2), ("y", 2))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .flags import add_plan_flags        # --cluster --memory --level --strategy --batch-args
    add_plan_flags(p, with_plan=False)
    p.add_argument("--model", default="gpt-tiny", help="zoo model (default gpt-tiny)")
    p.add_argument("--fn", default="forward", choices=("forward", "train_step_sgd", "train_step"),
                   help="which function of the model to run (default forward)")
    p.add_argument("--batch", type=int, default=4, help="global batch (default 4: 2 per data shard)")
    p.add_argument("--repeat", type=int, default=5, help="timed steps after one warm-up (default 5)")
    p.add_argument("-o", "--output", metavar="DIR", help="keep the artifact directory here")
    p.add_argument("--timeout", type=float, default=120, metavar="S", help="launch timeout (default 120)")
    p.add_argument("--no-cache", action="store_true", help="ignore the IREE compile cache")


@dataclass
class DemoResult:
    title: str
    mesh: str
    plan: str | None
    args: list                     # (path, type, sharding) per @main argument
    outs: list                     # (path, type, sharding) per result
    stats: dict                    # rhino-spmd-partition's report
    partition_s: float
    compile_s: float
    cache_hit: bool
    target: str
    driver: str
    step_s: float
    steps: list
    calls_per_step: float
    errors: dict
    ok: bool
    check_line: str
    n: int = 4
    timings: dict = field(default_factory=dict)


def _plan_line(plan) -> str | None:
    if plan is None:
        return None
    p = plan.prediction
    return (f"cluster {plan.cluster}, {plan.level} {plan.strategy}: predicted step "
            f"{p.step_time_s * 1e3:.3f} ms (compute {p.compute_s * 1e3:.3f}, communication "
            f"{p.comm_s * 1e3:.3f}), {p.memory_per_device_bytes / 1024:.1f} KiB per device; "
            f"search {plan.search.get('total_s', 0.0):.2f} s")


class Steps:
    """One line per finished step on stderr; a spinner while a step runs (terminals only)."""

    def __init__(self):
        from rich.console import Console
        self.console = Console(stderr=True, highlight=False)
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, key: str, desc: str, spinner: bool = True):
        t0 = time.perf_counter()
        live = self.console.status(desc) if spinner and self.console.is_terminal else contextlib.nullcontext()
        with live:
            yield
        self.times[key] = dt = time.perf_counter() - t0
        self.console.print(f"[green]done[/] {desc} [dim]{dt:.2f} s[/]")


def _specs(model, fn: str, arg_paths: list[str]) -> list:
    """Sharding per @main argument: batch on x for the data arguments, MEGATRON on y."""
    sig = model.signature[fn]
    data = {i for i, role in enumerate(sig) if role in DATA_ROLES}
    out = []
    for p in arg_paths:
        top = int(re.match(r"\[(\d+)\]", p).group(1))
        if top in data:
            out.append("data")
        else:
            out.append(next((s for pat, s in MEGATRON.items() if re.search(pat, p)), None))
    return out


def _data_spec(rank: int) -> tuple:
    return ("x",) + (None,) * (rank - 1)


def run_demo(model_name: str = "gpt-tiny", fn: str = "forward", batch: int = 4, repeat: int = 5,
             out: str | None = None, timeout: float = 120, use_cache: bool = True,
             steps: Steps | None = None, plan_args=None) -> DemoResult:
    """plan_args: a namespace with cluster/memory/level/strategy/batch_args (plan_cmd's
    flags) to let the planner choose; None = the fixed 2x2 data x Megatron annotation."""
    steps = steps or Steps()
    with steps.step("import", "load jax, the partitioner and the launcher"):
        import jax
        import numpy as np

        from .. import ir as rir
        from .. import zoo
        from ..frontend import annotate, lower
        from ..launch.artifact import read_artifact
        from ..launch.build.single_stage import PARTITION_PIPELINE, compile_local, parse_tensor_type
        from ..launch.build.check import compare
        from ..launch.rank.launcher import launch
        from ..passes import PassContext
        from ..passes.pass_pipeline import run_pipeline_str
        from ..sharding import Mesh, meshes_in

    model = zoo.get(model_name, batch=batch)
    cfg = model.cfg
    with steps.step("lower", f"lower {model_name} {fn} from JAX to StableHLO"):
        args = model.args(fn)                               # concrete numpy values
        text, info = lower(model.fns[fn], *args)
    plan = None
    if plan_args is not None and getattr(plan_args, "cluster", None):
        from .plan_cmd import plan_text
        with steps.step("plan", f"plan for cluster {plan_args.cluster} ({plan_args.level}, "
                                f"strategy {plan_args.strategy})"):
            annotated, plan = plan_text(plan_args, text, f"{model_name}.{fn}", progress=False)
        mesh = next(iter(meshes_in(annotated).values()))
        mesh_line = (" × ".join(f"{n}={k}" for n, k in mesh.axes) + f", {mesh.size} devices, "
                     f"chosen by the planner")
    else:
        mesh = Mesh("mesh", MESH_AXES)
        mesh_line = "x=2 (data) × y=2 (model), 4 devices"
        with steps.step("annotate", "annotate a 2x2 mesh: batch on x, Megatron on y"):
            specs = [_data_spec(len(parse_tensor_type(t, p)[0])) if s == "data" else s
                     for s, t, p in zip(_specs(model, fn, info.arg_paths), info.arg_types, info.arg_paths)]
            annotated = annotate(text, mesh, specs)
    with steps.step("partition", "partition (rhino-inline, rhino-propagate, rhino-spmd-partition)"):
        ctx = rir.new_context()
        module = rir.parse_module(annotated, ctx, f"{model_name}.{fn}")
        pctx = PassContext(ctx)
        run_pipeline_str(module, PARTITION_PIPELINE, pctx)
        local = str(module)
    part_s = steps.times["partition"]
    tmp = tempfile.TemporaryDirectory(prefix="rhino-demo-")
    try:
        art_dir = Path(out) if out else Path(tmp.name) / "artifact"
        # the compile step shows its own progress bar (compile_many): no spinner here
        with steps.step("compile", "lower collectives, IREE compile (llvm-cpu), write the artifact",
                        spinner=False):
            compile_local(local, art_dir, global_text=annotated, use_cache=use_cache,
                          filename=f"{model_name}.{fn}", partition_seconds=round(part_s, 3))
        art = read_artifact(art_dir, verify=False)
        flat = [np.asarray(x) for x in jax.tree_util.tree_leaves(args)]
        inputs = Path(tmp.name) / "inputs.npz"
        np.savez(inputs, **{f"arg{i}": x for i, x in enumerate(flat)})
        # more ranks than cores: IREE's worker threads only add contention (3-4x slower
        # steps measured on 2 cores), so each rank runs its executable inline
        driver = "local-sync" if mesh.size > (os.cpu_count() or 1) else "local-task"
        with steps.step("launch", f"launch {mesh.size} ranks with mpiexec ({repeat + 1} steps, {driver})"):
            res = launch(art_dir, mesh.size, inputs=str(inputs), timeout=timeout, repeat=repeat + 1,
                         env={"RHINO_IREE_DRIVER": os.environ.get("RHINO_IREE_DRIVER", driver)})
        with steps.step("reference", "single-device reference (JAX/XLA on one CPU device)"):
            refs = [np.asarray(r) for r in jax.tree_util.tree_leaves(jax.jit(model.fns[fn])(*args))]
        cr = compare(res.outputs, refs, art.outputs)
    finally:
        tmp.cleanup()
    m = art.manifest
    title = (f"{model_name} {fn}: {getattr(cfg, 'n_layer', '?')} layers, d_model "
             f"{getattr(cfg, 'd_model', '?')}, {getattr(cfg, 'n_head', '?')} heads, vocab "
             f"{getattr(cfg, 'vocab', '?')}, seq {getattr(cfg, 'seq', '?')}, batch {batch}")
    # pytree paths from the frontend (the manifest has them only where jax kept them)
    brief = lambda vs, paths: [(p, f"{_dt(v['dtype'])}{list(v['shape'])}", v["sharding"])  # noqa: E731
                               for v, p in zip(vs, paths)]
    return DemoResult(
        title=title, mesh=mesh_line, plan=_plan_line(plan), n=mesh.size,
        args=brief(m["inputs"], info.arg_paths), outs=brief(m["outputs"], info.result_paths),
        stats=pctx.stats.get("rhino-spmd-partition", {}), partition_s=part_s,
        compile_s=m["compile"]["seconds"], cache_hit=m["compile"]["cache_hit"],
        target=m["iree"]["target"], driver=driver, step_s=res.step_seconds, steps=res.steps,
        calls_per_step=res.collective_calls / max(1, len(res.steps)),
        errors=cr.errors, ok=cr.ok, check_line=cr.line(), timings=dict(steps.times))


_DT = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "int32": "i32",
       "int64": "i64", "bool": "i1", "uint32": "u32", "int8": "i8"}


def _dt(name: str) -> str:
    return _DT.get(name, name)


def brief_path(path: str, roles: tuple[str, ...] = ()) -> str:
    """"[0]['layers'][1]['attn']['w_qkv']" -> "params.layers[*].attn.w_qkv"."""
    m = re.match(r"\[(\d+)\]", path)
    head = path
    if m:
        i = int(m.group(1))
        head = (roles[i] if i < len(roles) else f"arg{i}") + path[m.end():]
    head = re.sub(r"\['([^']*)'\]", r".\1", head)
    return re.sub(r"\[\d+\]", "[*]", head)


def brief_sharding(text: str | None) -> str:
    """'#sdy.sharding<@mesh, [{"x"}, {}]>' -> '[x, -]'; None -> 'replicated'."""
    if not text:
        return "replicated"
    body = re.search(r"\[(.*)\]", text)
    dims = re.findall(r"\{([^}]*)\}", body.group(1) if body else "")
    parts = [d.replace('"', "").replace(" ", "") or "-" for d in dims]
    return "replicated" if all(p == "-" for p in parts) else f"[{', '.join(parts)}]"


def _table(rows, roles) -> list[str]:
    """Group rows by (brief path, type, sharding); replicated ones into one summary line."""
    groups: dict[tuple, int] = {}
    for path, typ, sh in rows:
        key = (brief_path(path, roles) if path else "", typ, brief_sharding(sh))
        groups[key] = groups.get(key, 0) + 1
    sharded = [(k, n) for k, n in groups.items() if k[2] != "replicated"]
    repl = [(k, n) for k, n in groups.items() if k[2] == "replicated"]
    w = max([len(k[0]) for k, _ in sharded] + [12])
    t = max([len(k[1]) for k, _ in sharded] + [8])
    out = [f"    {k[0]:<{w}} {k[1]:<{t}} {k[2]:<12}{f' (x{n})' if n > 1 else ''}" for k, n in sharded]
    if repl:
        names = sorted({k[0].rsplit(".", 1)[-1] for k, _ in repl})
        out.append(f"    replicated: {sum(n for _, n in repl)} ({', '.join(names)})")
    return out


def format_report(r: DemoResult, roles: tuple[str, ...] = ("params", "inputs")) -> str:
    st = r.stats
    kinds: dict[str, int] = {}
    for k in st.get("kinds", []):
        kinds[k] = kinds.get(k, 0) + 1
    kb = st.get("bytes", 0) / 1024
    lines = [f"rhino demo: {r.title}", "",
             f"mesh         @mesh {r.mesh}",
             *([f"plan         {r.plan}"] if r.plan else []),
             f"arguments    {len(r.args)}:", *_table(r.args, roles),
             f"results      {len(r.outs)}:", *_table(r.outs, ()),
             f"collectives  {st.get('collectives', 0)} inserted ("
             + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none")
             + f"), {kb:.1f} KiB moved per device per step"]
    gathered = st.get("gathered", [])
    if gathered:
        lines.append(f"             {len(gathered)} operand(s) gathered first, e.g. {gathered[0]}")
    lines += [f"compile      partition {r.partition_s:.2f} s; IREE {r.target} {r.compile_s:.2f} s"
              f"{' (cache hit)' if r.cache_hit else ''}, one executable for {r.n} ranks",
              f"step         {r.step_s * 1e3:.2f} ms, median of {max(1, len(r.steps) - 1)} after a "
              f"warm-up (IREE {r.driver}, {os.cpu_count()} cores); {r.calls_per_step:.0f} rhino "
              f"runtime calls per step on each rank",
              f"check        max error {max(r.errors.values(), default=0.0):.3g} vs the single-"
              f"device JAX/XLA result over {len(r.errors)} output(s): "
              + ("ok" if r.ok else "FAILED (" + r.check_line.split("(", 1)[-1])]
    return "\n".join(ln.rstrip() for ln in lines)


def main(a) -> int:
    """Entry from `rhino demo` (flags from add_arguments)."""
    from .. import zoo
    if a.model not in zoo.names():
        from ..errors import RhinoError
        raise RhinoError(f"unknown zoo model '{a.model}' (known: {', '.join(zoo.names())})")
    r = run_demo(a.model, a.fn, a.batch, a.repeat, a.output, a.timeout, not a.no_cache, plan_args=a)
    roles = zoo.get(a.model).signature[a.fn]
    print(format_report(r, roles))
    return 0 if r.ok else 1
