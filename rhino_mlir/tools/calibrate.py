"""`rhino calibrate`: measure this machine and cache the `cpu` device profile.

    rhino calibrate [-o FILE] [--no-mpi] [--json]

A short micro-benchmark (well under 30 s on 2 cores):
  - f32 (and f64) matmul FLOP/s of ONE core (BLAS pinned to one thread in a
    subprocess): the cpu profile's peaks are per rank with a core to itself, and
    DeviceProfile.shared_by divides them when ranks outnumber cores;
  - memcpy bandwidth (numpy copy, read + write bytes, as op_bytes counts them);
  - with mpiexec and mpi4py in this environment, 2 ranks: Allreduce time of 8 bytes
    (latency per ring step) and of 4 / 16 MiB (bandwidth, from the slope, which
    cancels the fixed cost), and the same small all_reduce through the rank runtime
    (an IREE executable calling the `rhino` import): the difference is the runtime's
    per-call overhead that the time model adds to every collective.
Writes $RHINO_CACHE/cpu_profile.json (default ~/.cache/rhino_mlir/), which
`devices.get_profile("cpu")` then loads. Tests never use it: they use `cpu-test`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..devices import DeviceProfile, cache_path, cpu_default
from ..errors import RhinoError

# matmul of one core, in a child whose BLAS cannot start threads (the env is read at load)
_MATMUL = r"""
import json, time, numpy as np
out = {}
for dt, n in (("f32", 512), ("f64", 384)):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dt.replace("f", "float"))
    b = a.copy(); a @ b
    best, t_end = float("inf"), time.perf_counter() + 0.6
    while time.perf_counter() < t_end:
        t0 = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t0)
    out[dt] = 2 * n ** 3 / best
print(json.dumps(out))
"""
_ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                 "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}

SMALL_ELEMS = 2                                  # 8 bytes of f32
BIG = (4 << 20, 16 << 20)                        # bytes for the bandwidth slope


def measure_matmul() -> dict[str, float]:
    """Single-core matmul FLOP/s per dtype ('f32', 'f64')."""
    r = subprocess.run([sys.executable, "-c", _MATMUL], capture_output=True, text=True,
                       timeout=60, env={**os.environ, **_ONE_THREAD})
    if r.returncode:
        raise RhinoError(f"calibrate: matmul benchmark failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout)


def measure_memcpy(nbytes: int = 64 << 20, seconds: float = 0.6) -> float:
    """Best memcpy rate in B/s, counting bytes read plus bytes written."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)                          # fault the pages in first
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def _runtime_program(ranks: int = 2) -> tuple[str, str]:
    """A local program whose only work is one `rhino` all_reduce import over `ranks` ranks."""
    from ..collective_imports import Collective
    name = "rhino." + Collective("all_reduce", reduce="sum", groups=(tuple(range(ranks)),)).encode(0)
    t = f"tensor<{SMALL_ELEMS}xf32>"
    text = f"""module {{
  func.func private @{name}({t}) -> {t}
  func.func @main(%x: {t}) -> {t} {{
    %0 = func.call @{name}(%x) : ({t}) -> {t}
    return %0 : {t}
  }}
}}
"""
    return name, text


def measure_mpi(use_runtime: bool = True, timeout: float = 60, ranks: int = 2) -> dict | None:
    """`ranks`-rank timings (seconds) from a child under mpiexec; None when MPI is missing."""
    try:
        import mpi4py  # noqa: F401
        from ..launch.rank.launcher import find_mpiexec, rank_env
        mpiexec = find_mpiexec()
    except (ImportError, RhinoError):
        return None
    with tempfile.TemporaryDirectory(prefix="rhino-calibrate-") as tmp:
        vmfb = ""
        if use_runtime:
            try:
                import iree.compiler as ic
                from ..launch.build.iree_compile import target_flags
                data = ic.compile_str(_runtime_program(ranks)[1], input_type="stablehlo",
                                      extra_args=target_flags("llvm-cpu"))
                vmfb = os.path.join(tmp, "allreduce.vmfb")
                Path(vmfb).write_bytes(data)
            except Exception as e:             # the runtime overhead is optional
                print(f"calibrate: skipping the runtime call ({type(e).__name__}: {e})",
                      file=sys.stderr)
        cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "rhino_mlir.tools.calibrate",
               "--mpi-worker", vmfb or "-"] + (["small"] if ranks > 2 else [])
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env=rank_env())
        except subprocess.TimeoutExpired:
            raise RhinoError(f"calibrate: the 2-rank MPI benchmark took over {timeout:g} s; "
                             "rerun with --no-mpi") from None
    if r.returncode:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RhinoError(f"calibrate: the 2-rank MPI benchmark failed: {tail}; "
                         "rerun with --no-mpi")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _mpi_worker(vmfb: str, small_only: bool = False) -> int:
    """Runs under mpiexec; rank 0 prints one JSON line of medians (slowest rank).
    `small_only`: just the small calls, few repetitions (oversubscribed ranks are slow)."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD

    def timed(fn, reps: int) -> float:
        ts = []
        for _ in range(reps + 2):                # 2 warm-ups
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return comm.allreduce(float(np.median(ts[2:])), op=MPI.MAX)

    out = {}
    sizes = ((SMALL_ELEMS * 4, 20),) if small_only else ((SMALL_ELEMS * 4, 200), (BIG[0], 10), (BIG[1], 5))
    for nbytes, reps in sizes:
        x = np.ones(nbytes // 4, np.float32)
        y = np.empty_like(x)
        out[str(nbytes)] = timed(lambda: comm.Allreduce(x, y, op=MPI.SUM), reps)
    if vmfb != "-":
        from ..launch.rank.comm import MpiCommunicator
        from ..launch.rank.runtime import Executor
        driver = os.environ.get("RHINO_IREE_DRIVER", "local-task")
        with Executor(vmfb, MpiCommunicator(comm), driver=driver) as ex:
            x = np.ones(SMALL_ELEMS, np.float32)
            out["runtime_small"] = timed(lambda: ex(x), 20 if small_only else 200)
    if comm.Get_rank() == 0:
        print(json.dumps(out))
    return 0


def fit_mpi(t: dict) -> dict:
    """Link fields from 2-rank timings: all_reduce on 2 ranks is 2 ring steps and puts
    ring_bytes = nbytes on the wire per device."""
    small = t[str(SMALL_ELEMS * 4)]
    t1, t2 = t[str(BIG[0])], t[str(BIG[1])]
    bw = (BIG[1] - BIG[0]) / (t2 - t1) if t2 > t1 else 0.0
    if bw <= 0:                                  # noise: fall back to one point
        bw = BIG[1] / max(t2 - small, 1e-9)
    out = {"link_latency": small / 2, "link_bandwidth": bw}
    if "runtime_small" in t:
        out["collective_overhead"] = max(0.0, t["runtime_small"] - small)
    return out


def calibrate(mpi: bool = True, log=lambda msg: print(msg, file=sys.stderr)) -> DeviceProfile:
    """Measure this machine; returns the cpu profile (not yet written)."""
    t0 = time.perf_counter()
    p = cpu_default()
    flops = measure_matmul()
    log(f"matmul, one core: f32 {flops['f32'] / 1e9:.1f} GFLOP/s, f64 {flops['f64'] / 1e9:.1f}")
    bw = measure_memcpy()
    log(f"memcpy: {bw / 1e9:.1f} GB/s (read + write)")
    fields = {}
    if mpi:
        t = measure_mpi()
        if t is None:
            log("mpi: no mpiexec/mpi4py in this environment; keeping link defaults")
        else:
            fields = fit_mpi(t)
            cores = p.cores or os.cpu_count() or 1
            over = measure_mpi(ranks=2 * cores) if cores >= 1 else None
            if over is not None and "runtime_small" in over and "runtime_small" in t:
                # each rank beyond the cores adds this much to every collective call
                fields["oversubscribed_overhead"] = max(0.0, over["runtime_small"] - t["runtime_small"])
                log(f"mpi, {2 * cores} ranks on {cores} cores: "
                    f"+{fields['oversubscribed_overhead'] * 1e3:.3f} ms per collective call")
            log(f"mpi, 2 ranks: {fields['link_latency'] * 1e6:.1f} us per ring step, "
                f"{fields['link_bandwidth'] / 1e9:.2f} GB/s"
                + (f", runtime overhead {fields['collective_overhead'] * 1e3:.3f} ms per call"
                   if "collective_overhead" in fields else ""))
    src = (f"rhino calibrate on {os.uname().nodename}, {time.strftime('%Y-%m-%d %H:%M')}, "
           f"{p.cores} cores, {time.perf_counter() - t0:.1f} s")
    return replace(p, flops=tuple(sorted(flops.items())), hbm_bandwidth=bw, source=src,
                   **fields)


def register(subparsers) -> None:
    """Add the `calibrate` subcommand (run by `run`)."""
    p = subparsers.add_parser("calibrate", help="measure this machine and cache the cpu "
                              "device profile", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"where to write the profile (default {cache_path()})")
    p.add_argument("--no-mpi", action="store_true", help="skip the 2-rank MPI benchmark")
    p.add_argument("--json", action="store_true", help="print the profile as JSON on stdout")


def run(args) -> int:
    prof = calibrate(mpi=not getattr(args, "no_mpi", False))
    out = Path(getattr(args, "output", None) or cache_path())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(prof.to_json(), indent=1) + "\n")
    os.replace(tmp, out)                         # readers never see half a file
    if getattr(args, "json", False):
        print(json.dumps(prof.to_json()))
    else:
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--mpi-worker":
        sys.exit(_mpi_worker(sys.argv[2], len(sys.argv) == 4))
    import argparse
    ap = argparse.ArgumentParser(prog="rhino")
    register(ap.add_subparsers(dest="cmd", required=True))
    sys.exit(run(ap.parse_args()))
