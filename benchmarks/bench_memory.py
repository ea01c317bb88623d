"""Memory model vs XLA: per-device bytes of the same sharding, and the model's speed.

    .venv/bin/python benchmarks/bench_memory.py [--speed-layers 12] [--repeat 20]

For each case of tests/harness/xla_memory.py (zoo train steps on 8 XLA CPU devices:
MLP data parallel with donated state, transformer block DP x TP, GPT-tiny DP x TP, and
GPT-tiny with a vocabulary-sharded embedding) the global program is annotated and run
through rhino-inline + rhino-propagate; then
  ours  partition/spmd/memory.memory_report on that program (no partitioning), and
  XLA   the same text compiled with SPMD partitioning (num_partitions=8), whose
        get_compiled_memory_stats() gives argument, output, alias and temp bytes.
Compared: arguments + outputs - aliased + temporaries (XLA's sum), temporaries apart,
and our liveness peak. Speed: one IR walk (`liveness`) and one `Liveness.peak` on a
GPT-tiny train step of --speed-layers layers. JSON: benchmarks/results/memory.json;
table: the `bench:memory` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

_FLAG = "--xla_force_host_platform_device_count=8"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import report  # noqa: E402

MIB = float(1 << 20)


def compare(case) -> dict:
    from harness import xla_memory as X
    from rhino_mlir import ir as I
    from rhino_mlir.analysis import memory as M
    from rhino_mlir.partition.spmd import memory as SM

    t0 = time.perf_counter()
    text, roles = X.build(case)
    mod = I.parse_module(text, I.new_context())
    ours = SM.memory_report(mod, roles=roles)
    no_reshard = SM.memory_report(mod, roles=roles, reshard=False)
    unfused = SM.memory_report(mod, roles=roles, fusion=False)
    n = 1
    for _, s in case.mesh:
        n *= s
    xla = X.xla_memory(text, n)
    err = lambda a, b: (a - b) / b if b else 0.0  # noqa: E731
    return {"case": case.name, "mesh": "x".join(str(s) for _, s in case.mesh), "donated": case.donate,
            "ours": ours.to_dict(), "xla": {"arguments": xla.arguments, "outputs": xla.outputs,
                                            "aliased": xla.aliased, "temporaries": xla.temporaries,
                                            "comparable": xla.comparable},
            "error": err(ours.xla_comparable, xla.comparable),
            "temp_error": err(ours.xla_temporaries, xla.temporaries),
            "error_without_reshards": err(no_reshard.xla_comparable, xla.comparable),
            "error_unfused": err(unfused.xla_comparable, xla.comparable),
            "peak_vs_xla": err(ours.peak, xla.comparable), "seconds": time.perf_counter() - t0}


def speed(layers: int, repeat: int) -> dict:
    import dataclasses

    import numpy as np

    from harness import xla_memory as X
    from rhino_mlir import ir as I
    from rhino_mlir.analysis import memory as M
    from rhino_mlir.partition.spmd import memory as SM

    case = next(c for c in X.CASES if c.name == "gpt_tiny_train_dp2_tp4")
    case = dataclasses.replace(case, overrides=tuple((k, layers if k == "n_layer" else v)
                                                     for k, v in case.overrides))
    text, _ = X.build(case)
    mod = I.parse_module(text, I.new_context())
    with mod.context:
        ops = sum(1 for op in I.walk_ops(I.main_func(mod)) if not op.name.endswith("return"))
    t0 = time.perf_counter()
    lv = M.liveness(mod)
    walk = time.perf_counter() - t0
    sh, mesh = M.shardings_from_ir(mod, lv)
    t0 = time.perf_counter()
    w = M.local_bytes(lv, sh, mesh)
    price = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        lv.peak(w)
        times.append(time.perf_counter() - t0)
    cands = np.stack([w] * 64)
    t0 = time.perf_counter()
    lv.peaks(cands)
    batch = time.perf_counter() - t0
    return {"layers": layers, "ops": ops, "buffers": len(lv), "points": len(lv.points),
            "liveness_s": walk, "local_bytes_s": price, "peak_s_median": statistics.median(times),
            "peaks_64_s": batch}


def section(rows: list[dict], sp: dict, cmd: str) -> str:
    mib = lambda b: f"{b / MIB:.2f}"  # noqa: E731
    head = ["program", "mesh", "args", "outputs", "aliased", "temps ours", "temps XLA",
            "total ours", "total XLA", "error", "liveness peak"]
    body = []
    for r in rows:
        o, x = r["ours"], r["xla"]
        body.append([r["case"] + (" (donated)" if r["donated"] else ""), r["mesh"], mib(o["arguments"]),
                     mib(o["outputs"]), mib(o["aliased"]), mib(o["xla_temporaries"]),
                     mib(x["temporaries"]), mib(o["xla_comparable"]), mib(x["comparable"]),
                     f"{r['error']:+.1%}", mib(o["peak"])])
    alt = report.table(["program", "full model", "no reshard buffers", "no fusion (every value stored)",
                        "liveness peak vs XLA total"],
                       [[r["case"], f"{r['error']:+.1%}", f"{r['error_without_reshards']:+.1%}",
                         f"{r['error_unfused']:+.1%}", f"{r['peak_vs_xla']:+.1%}"] for r in rows])
    return f"""## Memory model vs XLA's memory analysis

`{cmd}`

The same sharding (annotated, then rhino-propagate on every op) given to
analysis/memory.py (global program, no partitioning) and to XLA (SPMD partitioning on
8 CPU devices, `get_compiled_memory_stats()`). MiB per device. "total" = arguments +
outputs - aliased + temporaries, XLA's sum; our temporaries there are those that do not
fit in result buffers not yet written (XLA's buffer assignment puts, e.g., gradients
in the buffers of the new parameters). Machine: {report.machine()};
jax {report.versions().get('jax', '?')}; commit {report.revision()}.

{report.table(head, body)}

- Issue target |error| <= 15% on the total: met on the three test programs (MLP DP,
  block DP x TP, GPT-tiny DP x TP); tests/analysis/test_memory.py asserts it.
- The vocabulary-sharded GPT differs by design: rhino-spmd-partition computes the
  (B, T, V) scatter of the loss gradient unsharded on V (its indexed dimension) and
  slices it afterwards; the model counts that buffer, XLA's partitioner keeps it sharded.
- Temporaries alone differ more: fusion, schedule and layout copies are XLA's own.
  The total under model variants (error vs XLA):

{alt}

Speed on a GPT-tiny train step of {sp['layers']} layers ({sp['ops']} ops, {sp['buffers']} buffers,
{sp['points']} points): one IR walk (`liveness`) {sp['liveness_s'] * 1e3:.0f} ms; pricing one sharding
(`local_bytes`) {sp['local_bytes_s'] * 1e3:.1f} ms; `Liveness.peak` {sp['peak_s_median'] * 1e3:.2f} ms
(median of the repeats); 64 candidates at once (`Liveness.peaks`) {sp['peaks_64_s'] * 1e3:.1f} ms.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed-layers", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    from harness import xla_memory as X
    rows = []
    for case in X.CASES:
        r = compare(case)
        print(f"{r['case']:32s} ours {r['ours']['xla_comparable'] / MIB:8.2f} MiB  XLA "
              f"{r['xla']['comparable'] / MIB:8.2f} MiB  error {r['error']:+.1%}", file=sys.stderr)
        rows.append(r)
    sp = speed(a.speed_layers, a.repeat)
    cmd = ".venv/bin/python benchmarks/bench_memory.py" + (
        f" --speed-layers {a.speed_layers}" if a.speed_layers != 12 else "")
    report.write_json("memory", {"machine": report.machine(), "revision": report.revision(),
                                 "versions": report.versions(), "command": cmd, "cases": rows, "speed": sp})
    report.write_section("memory", section(rows, sp, cmd))
    print(f"speed: {sp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
