"""Program -> artifact directory: partition (if global), lower, strip, IREE-compile, write.

Two entry points:
  compile_global(text, out)  global annotated program: the full pipeline
      rhino-inline, rhino-propagate, rhino-spmd-partition, then as below;
  compile_local(text, out)   an already-local program (hand-written, or from another
      partitioner): rhino-lower-collectives, rhino-legalize-for-iree,
      rhino-strip-sharding, IREE.
The manifest's value specs come from the local program's `@main`: each argument and
result keeps its global `sdy.sharding` and `rhino.global_type` (DESIGN.md, local
program); a value without them is replicated with global type = local type.
Compile side only (imports jaxlib through rhino_mlir.ir); ranks never import this.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Sequence

from ... import ir as rir
from ...errors import RhinoError
from ...passes.auto_shard import apply_training, training_choices
from ...sharding import meshes_in
from ..artifact import package_version, write_artifact
from .iree_compile import compile_many, driver_of, iree_version, target_flags
from ..rank.layout import MLIR_DTYPES

PARTITION_PIPELINE = "rhino-inline,rhino-propagate,rhino-spmd-partition"
# rhino-legalize-for-iree rewrites what IREE refuses or gets wrong (select_and_scatter, scatters)
LOWER_PIPELINE = "rhino-lower-collectives{mode=%s},rhino-legalize-for-iree,rhino-strip-sharding"
_TENSOR = re.compile(r"tensor<(?P<dims>(?:\d+x)*)(?P<elem>[a-z0-9]+)>")


def parse_tensor_type(text: str, what: str) -> tuple[list[int], str]:
    """'tensor<4x8xbf16>' -> ([4, 8], 'bfloat16')."""
    m = _TENSOR.fullmatch(text.strip())
    if not m or m["elem"] not in MLIR_DTYPES:
        raise RhinoError(f"{what}: unsupported type '{text}' (expected a static tensor of "
                         f"{', '.join(MLIR_DTYPES)})")
    return [int(d) for d in m["dims"].split("x") if d], MLIR_DTYPES[m["elem"]]


def _values(types, attrs, prefix: str, info_key: str) -> list[dict]:
    out = []
    for i, t in enumerate(types):
        d = attrs[i] if attrs is not None else None
        keys = {na.name: na.attr for na in d} if d is not None else {}
        name = f"{prefix}{i}"
        local, dtype = parse_tensor_type(str(t), name)
        gshape = local
        if "rhino.global_type" in keys:
            gtext = str(keys["rhino.global_type"])
            gshape, gdtype = parse_tensor_type(gtext, name)
            if gdtype != dtype:
                raise RhinoError(f"{name}: rhino.global_type {gtext} disagrees with local type {t}")
        sh = str(keys["sdy.sharding"]) if "sdy.sharding" in keys else None
        path = str(keys[info_key]).strip('"') if info_key in keys else ""
        out.append({"name": name, "dtype": dtype, "shape": gshape, "sharding": sh,
                    "path": path, "local_shape": local})
    return out


def local_signature(module) -> dict:
    """Manifest facts of a local program: values, meshes, number of devices."""
    f = rir.main_func(module)
    ftype = rir.ir.FunctionType(rir.ir.TypeAttr(f.attributes["function_type"]).value)
    get = lambda k: list(f.attributes[k]) if k in f.attributes else None  # noqa: E731
    ins = _values(ftype.inputs, get("arg_attrs"), "arg", "jax.arg_info")
    outs = _values(ftype.results, get("res_attrs"), "out", "jax.result_info")
    attrs = module.operation.attributes
    n = rir.ir.IntegerAttr(attrs["mhlo.num_partitions"]).value if "mhlo.num_partitions" in attrs else 1
    meshes = {name: {"axes": [list(a) for a in m.axes],
                     "device_ids": None if m.device_ids is None else list(m.device_ids)}
              for name, m in meshes_in(str(module)).items()}
    if "mhlo.num_replicas" in attrs and rir.ir.IntegerAttr(attrs["mhlo.num_replicas"]).value != 1:
        raise RhinoError("local program has mhlo.num_replicas != 1; rhino runs one replica of "
                         "mhlo.num_partitions devices")
    return {"inputs": ins, "outputs": outs, "num_devices": n, "meshes": meshes}


def _run(module, pipeline: str, debug: bool = False) -> None:
    from ...passes import PassContext
    from ...passes.pass_pipeline import run_pipeline_str
    run_pipeline_str(module, pipeline, PassContext(module.context, debug=debug))


def compile_local(local_text: str, out: str | Path, target: str = "llvm-cpu",
                  global_text: str | None = None, extra_flags: Sequence[str] = (),
                  mode: str = "import", plan_text: str | None = None,
                  use_cache: bool = True, debug: bool = False, filename: str = "<input>",
                  partition_seconds: float | None = None) -> Path:
    """Lower, strip and compile one local program; write the artifact directory `out`."""
    flags = target_flags(target, extra_flags)          # unknown target: fail first
    ctx = rir.new_context()
    module = rir.parse_module(local_text, ctx, filename)
    sig = local_signature(module)
    pretty = str(module)
    t0 = time.perf_counter()
    _run(module, LOWER_PIPELINE % mode, debug)
    imports = sorted({f.attributes["sym_name"].value for f in rir.funcs(module)
                      if f.attributes["sym_name"].value.startswith("rhino.")})
    lowered = str(module)
    lower_s = time.perf_counter() - t0
    res = compile_many({"main": lowered}, target, extra_flags, use_cache=use_cache)["main"]
    tname = target.replace("-", "_")
    files: dict[str, bytes | str] = {"programs/main.mlir": pretty,
                                     f"executables/main.{tname}.vmfb": res.vmfb}
    if global_text is not None:
        files["programs/global.mlir"] = global_text
    if plan_text is not None:
        files["plan.json"] = plan_text
    n = sig["num_devices"]
    manifest = {
        "rhino_mlir": package_version(),
        "iree": {"version": iree_version(), "target": target, "driver": driver_of(target),
                 "flags": list(res.flags) or flags, "mode": mode},
        "num_devices": n,
        "meshes": sig["meshes"],
        "stages": [{"stage": 0, "program": "main", "devices": list(range(n))}],
        "ranks": [{"rank": r, "stage": 0, "device": r, "program": "main"} for r in range(n)],
        "programs": {"main": {"mlir": "programs/main.mlir",
                              "vmfb": f"executables/main.{tname}.vmfb",
                              "entry": "main", "imports": imports}},
        "inputs": sig["inputs"], "outputs": sig["outputs"],
        "schedule": None,
        "compile": {"seconds": round(res.seconds, 3), "cache_hit": res.cache_hit,
                    "cache_key": res.key, "lower_seconds": round(lower_s, 3),
                    "partition_seconds": partition_seconds},
    }
    files["report.md"] = _report(manifest, filename)
    return write_artifact(out, manifest, files)


def compile_global(global_text: str, out: str | Path, target: str = "llvm-cpu",
                   plan_text: str | None = None, batch_args: list[int] | None = None, **kw) -> Path:
    """Partition a global annotated program, then compile_local on the result. A plan with
    recomputation or micro-batches (`remat`, `microbatches` in plan.json) is applied by
    rhino-remat and rhino-accumulate between rhino-inline and rhino-propagate;
    programs/global.mlir stays the program as given (what --check and re-planning read)."""
    ctx = rir.new_context()
    module = rir.parse_module(global_text, ctx, kw.get("filename", "<input>"))
    t0 = time.perf_counter()
    debug = kw.get("debug", False)
    policies, k = training_choices(json.loads(plan_text)) if plan_text else ({}, 1)
    if policies or k > 1:
        _run(module, "rhino-inline", debug)
        apply_training(module, policies, k, batch_args)
    _run(module, PARTITION_PIPELINE, debug)
    return compile_local(str(module), out, target, global_text=global_text,
                         plan_text=plan_text, partition_seconds=round(time.perf_counter() - t0, 3),
                         **kw)


def _report(m: dict, source: str) -> str:
    c = m["compile"]
    lines = [f"# rhino artifact: {source}", "",
             f"- devices: {m['num_devices']}; meshes: " +
             (", ".join(f"@{k} {dict((a, s) for a, s in v['axes'])}" for k, v in m["meshes"].items())
              or "none"),
             f"- target: {m['iree']['target']} (IREE {m['iree']['version']}, "
             f"flags `{' '.join(m['iree']['flags'])}`)",
             f"- compile: {c['seconds']} s ({'cache hit' if c['cache_hit'] else 'compiled'}); "
             f"lowering {c['lower_seconds']} s"
             + (f"; partitioning {c['partition_seconds']} s" if c.get("partition_seconds") else ""),
             "", "| value | global type | sharding | pytree path |", "|---|---|---|---|"]
    for v in m["inputs"] + m["outputs"]:
        lines.append(f"| {v['name']} | {v['dtype']}{v['shape']} | `{v['sharding'] or 'replicated'}` "
                     f"| {v['path'] or '-'} |")
    for name, p in m["programs"].items():
        lines += ["", f"## program {name}: {len(p['imports'])} rhino import(s)", ""]
        lines += [f"- `{i}`" for i in p["imports"]]
    return "\n".join(lines) + "\n"


def dump_json(obj) -> str:
    return json.dumps(obj, indent=1)
