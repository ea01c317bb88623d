"""Runtime collective cost vs plain mpi4py on the same buffers.

    .venv/bin/python benchmarks/bench_collectives.py [-n 4] [--reps 20] [--sizes 64K,...,64M]

For each size the parent compiles a one-collective local program (all_reduce sum, and
all_gather along dim 0) with rhino-lower-collectives + IREE llvm-cpu, then starts N ranks
with mpiexec. Each rank times, after a barrier, (a) the IREE executable whose only work
is the `rhino` import (input already a device buffer, result left on the device) and
(b) mpi4py's Allreduce / Allgather on numpy buffers of the same size. A repetition's
time is the slowest rank's; the figure is the median of --reps. JSON goes to
benchmarks/results/collectives.json (and stdout).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = "64K,256K,1M,4M,16M,64M"


def _bytes(s: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def _program(kind: str, n: int, elems: int) -> str:
    groups = "[[" + ", ".join(map(str, range(n))) + f"]]> : tensor<1x{n}xi64>"
    if kind == "all_reduce":
        op = f'''%0 = "stablehlo.all_reduce"(%x) ({{
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }}) {{replica_groups = dense<{groups}, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids}} : (tensor<{elems}xf32>) -> tensor<{elems}xf32>'''
        rt = f"tensor<{elems}xf32>"
    else:
        rt = f"tensor<{elems * n}xf32>"
        op = (f'%0 = "stablehlo.all_gather"(%x) {{all_gather_dim = 0 : i64, replica_groups = '
              f'dense<{groups}, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, '
              f'use_global_device_ids}} : (tensor<{elems}xf32>) -> {rt}')
    return f'''module attributes {{mhlo.num_partitions = {n} : i32, mhlo.num_replicas = 1 : i32}} {{
  func.func public @main(%x: tensor<{elems}xf32>) -> {rt} {{
    {op}
    return %0 : {rt}
  }}
}}
'''


def parent(a) -> int:
    sys.path.insert(0, str(ROOT))
    from rhino_mlir import ir as rir
    from rhino_mlir.launch.build.iree_compile import compile_one
    from rhino_mlir.launch.rank.launcher import find_mpiexec, rank_env
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for kind in ("all_reduce", "all_gather"):
        for s in a.sizes.split(","):
            nbytes = _bytes(s)
            ctx = rir.new_context()
            m = rir.parse_module(_program(kind, a.n, nbytes // 4), ctx)
            run_pipeline_str(m, "rhino-lower-collectives,rhino-strip-sharding", PassContext(ctx))
            p = work / f"{kind}_{s}.vmfb"
            p.write_bytes(compile_one(p.stem, str(m), "llvm-cpu").vmfb)
            jobs.append({"kind": kind, "size": s, "bytes": nbytes, "vmfb": str(p)})
    (work / "jobs.json").write_text(json.dumps(jobs))
    out = work / "raw.json"
    cmd = [find_mpiexec(), "-n", str(a.n), sys.executable, __file__, "--worker",
           "--work", str(work), "--reps", str(a.reps), "--driver", a.driver]
    # same rank environment as `rhino launch` (malloc settings that keep result buffers warm)
    subprocess.run(cmd, check=True, timeout=1800, env=rank_env())
    rows = json.loads(out.read_text())
    for r in rows:
        r["ratio"] = round(r["rhino_ms"] / r["mpi4py_ms"], 3)
    result = {"suite": "runtime", "ranks": a.n, "driver": a.driver, "reps": a.reps, "statistic": "median",
              "dtype": "float32", "command": " ".join(["python", "benchmarks/bench_collectives.py"]
                                                     + sys.argv[1:]),
              "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    dest = ROOT / "benchmarks" / "results" / f"collectives_{a.driver}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"{'kind':<11}{'size':>6}{'rhino ms':>10}{'mpi4py ms':>11}{'ratio':>7}", file=sys.stderr)
    for r in rows:
        print(f"{r['kind']:<11}{r['size']:>6}{r['rhino_ms']:>10.3f}{r['mpi4py_ms']:>11.3f}"
              f"{r['ratio']:>7.2f}", file=sys.stderr)
    return 0


def worker(a) -> int:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from mpi4py import MPI
    from rhino_mlir.launch.rank.comm import MpiCommunicator
    from rhino_mlir.launch.rank.runtime import Executor
    import iree.runtime as rt
    world = MPI.COMM_WORLD
    rank, n = world.rank, world.size
    comm = MpiCommunicator(world)
    jobs = json.loads((Path(a.work) / "jobs.json").read_text())
    rows = []

    def timed(fn) -> float:
        ts = []
        for _ in range(a.reps + 2):                    # 2 warm-up runs
            world.Barrier()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            ts.append(world.allreduce(dt, op=MPI.MAX))
        return float(np.median(ts[2:])) * 1e3

    for job in jobs:
        elems = job["bytes"] // 4
        x = np.full(elems, rank + 1, np.float32)
        with Executor(job["vmfb"], comm, driver=a.driver) as ex:
            dev_x = rt.asdevicearray(ex.device, x)
            res = ex.invoker(dev_x)                     # check once, numerically
            got = res.to_host()
            want = float(sum(range(1, n + 1))) if job["kind"] == "all_reduce" else None
            assert (got[0] == want) if want else (got[-1] == n), (job, got[:4])
            del res, got
            rhino_ms = timed(lambda: ex.invoker(dev_x))
            del dev_x
        if job["kind"] == "all_reduce":
            out = np.empty_like(x)
            mpi_ms = timed(lambda: world.Allreduce(x, out, MPI.SUM))
        else:
            out = np.empty(elems * n, np.float32)
            mpi_ms = timed(lambda: world.Allgather(x, out))
        rows.append({"kind": job["kind"], "size": job["size"], "bytes": job["bytes"],
                     "rhino_ms": round(rhino_ms, 3), "mpi4py_ms": round(mpi_ms, 3)})
    if rank == 0:
        (Path(a.work) / "raw.json").write_text(json.dumps(rows))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=4, help="ranks (default 4)")
    ap.add_argument("--reps", type=int, default=20, help="timed repetitions (default 20)")
    ap.add_argument("--sizes", default=SIZES, help=f"bytes per rank (default {SIZES})")
    ap.add_argument("--work", default="/tmp/rhino-bench-collectives")
    ap.add_argument("--driver", default="local-task", help="IREE driver (local-task|local-sync)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    return worker(a) if a.worker else parent(a)


if __name__ == "__main__":
    sys.exit(main())
