"""GPU check (issue 3, "On a GPU"): cross-compiled transformer block on 2 ranks sharing a GPU.

Here, where the compiler is (the venv):
    .venv/bin/python benchmarks/gpu_check.py prepare [--out build/gpu_check] [--config 8x256x512x8]
On the GPU machine, from the repo root (no compiler, no venv: carried wheels, see
benchmarks/gpu_check.sh, which installs them and runs):
    python3 benchmarks/gpu_check.py run build/gpu_check

`prepare` lowers the zoo transformer block (BATCHxSEQxD_MODELxHEADS, f32 and f16) from
JAX, annotates Megatron over 2 devices (w_qkv, w_fc column-parallel; w_o, w_proj
row-parallel: one all_reduce per sub-block), partitions it and cross-compiles for
`cuda` (sm_80 PTX, which the driver JITs on Hopper) into an artifact directory per dtype;
it also compiles the single-device program for cuda, and once for a generic x86-64 CPU
(the reference), and writes an input recipe (inputs are generated there, not shipped).
`run` (imports no compiler and no jax until the optional XLA part) then, per dtype:
  check      `rhino launch` on 2 MPI ranks sharing the GPU, collectives through the
             `rhino` import module (IREE's CUDA driver, host round trips); outputs vs
             the single-device f32 result on the CPU (DESIGN.md tolerances); median step;
  iree_1dev  the single-device program on the GPU by IREE (same numbers check, time);
  rank_exe   one rank's executable alone (rank 0's shard; collectives answered locally
             by a loopback communicator, so the time is its compute + import overhead);
  xla        the same JAX function by XLA (jax on the GPU), default precision (TF32
             matmuls for f32) and "highest", time and error vs the reference.
One JSON document goes to stdout (and $OUT/gpu_check.json when $OUT is set);
`gpu_check.py doc FILE.json` (here) turns it into the `bench:gpu` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rhino_mlir.launch.rank.comm import Communicator  # noqa: E402  (numpy only)

SPECS = {r"w_qkv|w_fc": (None, "y"), r"b_qkv|b_fc": ("y",), r"w_o|w_proj": ("y", None)}
DTYPES = {"f32": "float32", "f16": "float16"}
CPU_FLAGS = ["--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
             "--iree-llvmcpu-target-cpu=generic"]       # runs on any x86-64 host


# ----------------------------------------------------------------------------- prepare (here)

def _init(path: str) -> tuple[str, float]:
    """Input recipe by argument path: layernorm gains near 1, everything else small normals."""
    if re.search(r"ln\d?_g", path):
        return "one_plus", 0.1
    if path == "[1]":
        return "normal", 1.0                                # x (B, T, D)
    return "normal", 0.02


def prepare(a) -> int:
    import iree.compiler as ic

    from rhino_mlir import ir as rir
    from rhino_mlir import zoo
    from rhino_mlir.frontend import annotate
    from rhino_mlir.launch.build.single_stage import compile_global
    from rhino_mlir.launch.build.iree_compile import COMMON_FLAGS, compile_one, iree_version
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    from rhino_mlir.sharding import Mesh

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    b, t, d, h = (int(v) for v in a.config.split("x"))
    meta = {"config": a.config, "target": a.target, "iree": iree_version(), "cases": {}}
    for case, dtype in DTYPES.items():
        t0 = time.perf_counter()
        m = zoo.get("transformer-block", batch=b, seq=t, d_model=d, n_head=h, dtype=dtype)
        text, info = m.lower("forward")
        sh = [next((s for pat, s in SPECS.items() if re.search(pat, p)), None) for p in info.arg_paths]
        glob = annotate(text, Mesh("mesh", (("y", 2),)), sh)
        compile_global(glob, out / case / "artifact", target=a.target, filename=f"block_{case}")
        ctx = rir.new_context()
        mod = rir.parse_module(glob, ctx)
        run_pipeline_str(mod, "rhino-inline,rhino-lower-collectives,rhino-strip-sharding",
                         PassContext(ctx))
        single = str(mod)
        (out / case / f"global.{a.target}.vmfb").write_bytes(
            compile_one(f"global_{case}", single, a.target).vmfb)
        if case == "f32":                                   # the reference, for both dtypes
            (out / "global.cpu.vmfb").write_bytes(ic.compile_str(
                single, input_type="stablehlo", extra_args=CPU_FLAGS + list(COMMON_FLAGS)))
        recipe = [{"name": f"arg{i}", "path": p, "type": ty, "init": _init(p)}
                  for i, (p, ty) in enumerate(zip(info.arg_paths, info.arg_types))]
        meta["cases"][case] = {"dtype": dtype, "inputs": recipe,
                               "prepare_s": round(time.perf_counter() - t0, 2)}
        print(f"prepared {case}: {out / case} ({meta['cases'][case]['prepare_s']} s)", file=sys.stderr)
    (out / "prepared.json").write_text(json.dumps(meta, indent=1))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB to carry", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- run (GPU machine)

def make_inputs(recipe: list, dtype: str, seed: int = 0) -> list:
    """The inputs from prepare's recipe (numpy only: no jax needed on the GPU machine)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    out = []
    for r in recipe:
        shape = [int(v) for v in re.findall(r"(\d+)x", r["type"])]     # tensor<8x256x512xf32>
        kind, scale = r["init"]
        x = rng.standard_normal(shape) * scale + (1.0 if kind == "one_plus" else 0.0)
        out.append(x.astype(dtype))
    return out


def _median_ms(fn, reps: int, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return round(statistics.median(ts) * 1e3, 3)


class Loopback(Communicator):
    """Communicator stand-in for one rank timed alone: every collective answers with this
    rank's own data in the right shape (numbers are wrong; the time is the compute's)."""

    def __init__(self, size: int):
        self.rank, self.size, self.name = 0, size, "loopback"

    def all_reduce(self, x, out, op, group):
        out[...] = x

    def all_gather(self, x, out, group):
        out.reshape(len(group), -1)[:] = x.reshape(1, -1)

    def reduce_scatter(self, x, out, op, group):
        out.reshape(-1)[:] = x.reshape(len(group), -1)[0]

    def all_to_all(self, x, out, group):
        out.reshape(-1)[:] = x.reshape(-1)

    def permute(self, x, out, send_to, recv_from):
        out[...] = x

    def barrier(self):
        pass


def _timed_executor(vmfb, comm, driver, inputs, reps, imports=None) -> tuple[dict, list]:
    """Median ms of one call with inputs already on the device: the call alone, and the
    call plus copying the results to the host (IREE may return before the GPU is done)."""
    import iree.runtime as rt

    from rhino_mlir.launch.rank.runtime import Executor
    with Executor(vmfb, comm, driver=driver, imports=imports) as ex:
        dev = [rt.asdevicearray(ex.device, x) for x in inputs]

        def call():
            r = ex.invoker(*dev)
            return r if isinstance(r, (list, tuple)) else [r]
        host = [r.to_host() for r in call()]
        res = {"call_ms": _median_ms(call, reps),
               "call_to_host_ms": _median_ms(lambda: [r.to_host() for r in call()], reps)}
        del dev
    return res, host


def phase(results: dict, key: str, fn) -> None:
    t0 = time.perf_counter()
    try:
        results[key] = fn()
    except Exception as e:  # noqa: BLE001 - one run must report every phase it can
        results[key] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:400],
                        "where": traceback.format_exc().strip().splitlines()[-3][:200]}
    results[key]["seconds"] = round(time.perf_counter() - t0, 2)


def _xla(case: str, meta: dict, inputs: list, ref: list, reps: int, specs) -> dict:
    import jax
    import numpy as np

    from rhino_mlir import zoo
    from rhino_mlir.launch.build.check import compare
    dev = jax.devices()[0]
    b, t, d, h = (int(v) for v in meta["config"].split("x"))
    m = zoo.get("transformer-block", batch=b, seq=t, d_model=d, n_head=h,
                dtype=meta["cases"][case]["dtype"])
    tree = jax.tree_util.tree_structure(m.args("forward", abstract=True))
    args = jax.device_put(jax.tree_util.tree_unflatten(tree, inputs), dev)
    out = {"jax": jax.__version__, "device": str(getattr(dev, "device_kind", dev.platform))}
    for prec in ("default", "highest"):
        ctx = contextlib.nullcontext() if prec == "default" else jax.default_matmul_precision("highest")
        with ctx:
            f = jax.jit(m.fns["forward"])
            y = np.asarray(f(*args))
            out[f"{prec}_ms"] = _median_ms(lambda: jax.block_until_ready(f(*args)), reps)
        out[f"{prec}_max_error"] = compare({"out0": y}, ref, specs).errors["out0"]
    return out


def run_case(case: str, root: Path, meta: dict, reps: int) -> dict:
    import numpy as np

    from rhino_mlir.launch.artifact import read_artifact
    from rhino_mlir.launch.build.check import compare
    from rhino_mlir.launch.rank.comm import ThreadWorld
    from rhino_mlir.launch.rank.launcher import launch
    from rhino_mlir.launch.rank.layout import slice_value
    from rhino_mlir.launch.rank.runtime import Executor

    cdir, info = root / case, meta["cases"][case]
    art = read_artifact(cdir / "artifact")
    driver = art.manifest["iree"]["driver"]
    inputs = make_inputs(info["inputs"], info["dtype"])
    one = lambda: ThreadWorld(1).communicators()[0]  # noqa: E731
    t0 = time.perf_counter()
    with Executor(root / "global.cpu.vmfb", one(), driver="local-task") as ex:   # f32 reference
        ref = ex(*[x.astype(np.float32) for x in inputs])
    res: dict = {"dtype": info["dtype"], "reference_cpu_s": round(time.perf_counter() - t0, 2)}

    def check():
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            npz = str(Path(tmp) / "inputs.npz")
            np.savez(npz, **{f"arg{i}": x for i, x in enumerate(inputs)})
            r = launch(cdir / "artifact", 2, inputs=npz, repeat=reps + 1, timeout=300)
        cr = compare(r.outputs, ref, art.outputs)
        return {"ok": cr.ok, "max_error": max(cr.errors.values()), "line": cr.line(),
                "step_ms": round(r.step_seconds * 1e3, 3), "steps_ms": [round(s * 1e3, 3) for s in r.steps],
                "rhino_calls_per_step": r.collective_calls // (reps + 1), "jax_in_ranks": r.jax_imported}

    def single():
        t, host = _timed_executor(cdir / f"global.{art.target}.vmfb", one(), driver, inputs, reps)
        cr = compare({"out0": host[0]}, ref, art.outputs)
        return {**t, "ok": cr.ok, "max_error": cr.errors["out0"]}

    def rank_exe():
        mine = [slice_value(x, s, art.meshes, 2)[0] for x, s in zip(inputs, art.inputs)]
        prog = art.program("main")
        t, _ = _timed_executor(art.path(prog.vmfb), Loopback(2), driver, mine, reps, prog.imports)
        return {**t, "imports": prog.imports}

    phase(res, "check", check)
    phase(res, "iree_1dev", single)
    phase(res, "rank_exe", rank_exe)
    if os.environ.get("GPU_CHECK_NO_XLA"):
        res["xla"] = {"skipped": "GPU_CHECK_NO_XLA is set"}
    else:
        phase(res, "xla", lambda: _xla(case, meta, inputs, ref, reps, art.outputs))
    x, i = res.get("xla", {}), res.get("iree_1dev", {})
    if "highest_ms" in x and "call_to_host_ms" in i:
        res["iree_over_xla_highest"] = round(i["call_to_host_ms"] / x["highest_ms"], 2)
        res["iree_over_xla_default"] = round(i["call_to_host_ms"] / x["default_ms"], 2)
    return res


def _gpu_name() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30).stdout.strip() or "none"
    except (OSError, subprocess.SubprocessError):
        return "none (no nvidia-smi)"


def run(a) -> int:
    # jax (XLA part) must not take 75 % of the GPU up front: the ranks and IREE need it too
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if os.environ.get("MPIEXEC"):
        # the carried MPICH's mpiexec: its libmpi is the one the carried mpi4py loads
        from rhino_mlir.launch.rank import launcher
        launcher.find_mpiexec = lambda: os.environ["MPIEXEC"]
    from importlib.metadata import version
    root = Path(a.dir)
    meta = json.loads((root / "prepared.json").read_text())
    t0 = time.perf_counter()
    doc = {"suite": "gpu_check", "gpu": _gpu_name(), "python": sys.version.split()[0],
           "iree_runtime": version("iree-base-runtime"), "prepared_with_iree": meta["iree"],
           "config": meta["config"], "target": meta["target"], "reps": a.reps, "cases": {}}
    for case in a.cases.split(","):
        doc["cases"][case] = run_case(case, root, meta, a.reps)
        print(f"{case}: {json.dumps(doc['cases'][case])[:600]}", file=sys.stderr)
    doc["wall_s"] = round(time.perf_counter() - t0, 1)
    doc["ok"] = all(c.get("check", {}).get("ok") and c.get("iree_1dev", {}).get("ok")
                    for c in doc["cases"].values())
    text = json.dumps(doc, indent=1)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text)
    return 0 if doc["ok"] else 1


def doc(a) -> int:
    """Write the `bench:gpu` section of docs/benchmarks.md from a run's JSON."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report
    d = json.loads(Path(a.json).read_text())
    g = lambda c, k, f: c.get(k, {}).get(f, c.get(k, {}).get("error", "-"))  # noqa: E731
    rows = [[case, g(c, "check", "ok"), f"{g(c, 'check', 'max_error'):.2g}" if "max_error" in
             c.get("check", {}) else g(c, "check", "max_error"), g(c, "check", "step_ms"),
             g(c, "iree_1dev", "call_to_host_ms"), g(c, "rank_exe", "call_to_host_ms"),
             g(c, "xla", "highest_ms"), g(c, "xla", "default_ms"),
             c.get("iree_over_xla_highest", "-"), c.get("iree_over_xla_default", "-")]
            for case, c in d["cases"].items()]
    body = f"""## On a GPU: 2 ranks sharing one GPU, import collectives; IREE vs XLA

Prepared here with `.venv/bin/python benchmarks/gpu_check.py prepare` (zoo transformer
block {d['config']} as BATCHxSEQxD_MODELxHEADS, Megatron over 2 devices, cross-compiled for
`{d['target']}`{' (sm_80 PTX)' if d['target'] == 'cuda' else ''} by IREE {d['prepared_with_iree']}); run there with `bash benchmarks/gpu_check.sh`
(carried wheels: iree-base-runtime {d['iree_runtime']}, mpich, mpi4py; Python {d['python']}).
GPU: {d['gpu']}. Median of {d['reps']} calls. "check": `rhino launch` on 2 MPI ranks sharing
the GPU, collectives through the `rhino` import module (host round trips), outputs vs the
single-device f32 result computed on the CPU; "IREE 1 dev": the unpartitioned program by
IREE on the GPU (call + copy of the result to the host); "rank exe": one rank's
executable alone (collectives answered locally); XLA: the same JAX function by jax on the
GPU, f32 at "highest" precision and at its default (TF32 matmuls).

{report.table(["dtype", "check ok", "max err", "2-rank step ms", "IREE 1 dev ms", "rank exe ms",
               "XLA highest ms", "XLA default ms", "IREE / XLA highest", "IREE / XLA default"], rows)}

Whole run {d['wall_s']} s. IREE's native NCCL channels (collectives on the GPU without host
round trips) cannot be reached from the Python runtime yet (FACTS.md): future work."""
    report.write_section("gpu", body)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="lower, partition and cross-compile (needs the venv)")
    p.add_argument("--out", default="build/gpu_check")
    p.add_argument("--config", default="8x256x512x8", help="BATCHxSEQxD_MODELxHEADS")
    p.add_argument("--target", default="cuda", help="cuda (default), or llvm-cpu for a rehearsal")
    r = sub.add_parser("run", help="launch, check and time (on the GPU machine)")
    r.add_argument("dir", nargs="?", default="build/gpu_check")
    r.add_argument("--reps", type=int, default=20)
    r.add_argument("--cases", default="f32,f16")
    dp = sub.add_parser("doc", help="write the bench:gpu section of docs/benchmarks.md from a run's JSON")
    dp.add_argument("json")
    a = ap.parse_args()
    return {"prepare": prepare, "run": run, "doc": doc}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
