"""Product corpus sweep: small StableHLO op programs with random shardings through the
whole path a user runs (`rhino run`: partition, lower collectives, IREE, MPI ranks,
output assembly) on 2 and 4 ranks, against one device.

    .venv/bin/python benchmarks/product_corpus.py [--count 150] [--ranks 2,4] [--seed 0]
        [--repro-dir DIR] [--warm-cache] [--no-doc] [--out JSON]

Programs and shardings come from tests/product/corpus.py (program i of seed s is the
same everywhere); tests/product/runner.py classifies each case (match,
iree-single-device-fails, iree-single-device-wrong, MISMATCH, ERROR, xla-fails). Every
case runs on real MPI ranks, many cases per mpiexec; IREE alone runs every case too
(one rank). The IREE compile cache starts empty unless --warm-cache, so the times are
cold. Writes benchmarks/results/product_corpus.json and the `bench:product` section
of docs/benchmarks.md; --repro-dir writes a repro directory per MISMATCH / ERROR case.
"""
from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):          # before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import report  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=150, help="programs (each run at every --ranks)")
    ap.add_argument("--start", type=int, default=0, help="first program index")
    ap.add_argument("--ranks", default="2,4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repro-dir", help="write a repro directory per MISMATCH / ERROR case here")
    ap.add_argument("--warm-cache", action="store_true", help="keep RHINO_CACHE (times not cold)")
    ap.add_argument("--no-doc", action="store_true", help="JSON only; leave docs/benchmarks.md")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/product_corpus.json)")
    a = ap.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="rhino-product-corpus-")
    if not a.warm_cache:
        os.environ["RHINO_CACHE"] = str(Path(tmp.name) / "cache")
    from product import corpus, runner
    from product.repro import write_repro

    ranks = tuple(int(r) for r in a.ranks.split(","))
    t0 = time.perf_counter()
    cases = corpus.sweep(a.count, ranks, a.seed, a.start)
    print(f"product corpus: {len(cases)} cases ({a.count} programs x ranks {ranks})", file=sys.stderr)
    outs = runner.run_cases(cases, Path(tmp.name) / "work", eager_single=True,
                            log=lambda m: None if m.startswith("built") else
                            print(f"  {m}", file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    if a.repro_dir:
        for c, o in zip(cases, outs):
            if o.cls in runner.BUGS:
                write_repro(c, o, Path(a.repro_dir))
    counts = {n: Counter(o.cls for o in outs if o.n == n) for n in ranks}
    data = {"command": " ".join(["benchmarks/product_corpus.py"] + [shlex.quote(x) for x in (argv or sys.argv[1:])]),
            "machine": report.machine(), "revision": report.revision(), "versions": report.versions(),
            "seed": a.seed, "programs": a.count, "ranks": list(ranks), "wall_seconds": round(wall, 1),
            "counts": {str(n): {k: counts[n].get(k, 0) for k in runner.CLASSES} for n in ranks},
            "phase_seconds": {p: round(sum(o.seconds.get(p, 0.0) for o in outs), 1)
                              for p in ("xla", "build", "ranks", "single_build")},
            "cases": [o.to_json() for o in outs]}
    if a.out:
        path = Path(a.out)
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path = report.write_json("product_corpus", data)
    print(f"wrote {path} ({wall:.0f} s)", file=sys.stderr)
    for n in ranks:
        print(f"  {n} ranks: " + ", ".join(f"{k} {v}" for k, v in counts[n].most_common()), file=sys.stderr)
    if not a.no_doc:
        report.write_section("product", section(data, outs))
    tmp.cleanup()
    return 0


def section(d: dict, outs) -> str:
    from product import runner
    ranks = d["ranks"]
    rows = [[n] + [d["counts"][str(n)][k] for k in runner.CLASSES] + [sum(d["counts"][str(n)].values())]
            for n in ranks]
    lines = ["## Product corpus: op programs through `rhino run`'s whole path", "",
             f"`.venv/bin/python {d['command']}` ({d['programs']} programs of tests/product/corpus.py, "
             f"seed {d['seed']}, each on {' and '.join(map(str, ranks))} MPI ranks with its own random "
             f"sharding; partition, lower collectives, IREE llvm-cpu, ranks, assembly; compared with "
             f"XLA on one device and IREE alone on one device). Machine: {d['machine']}; "
             f"revision {d['revision']}. Wall time {d['wall_seconds']:.0f} s with a cold IREE cache "
             f"(phases summed: " + ", ".join(f"{k} {v:.0f} s" for k, v in d["phase_seconds"].items()) + ").",
             "", report.table(["ranks", *runner.CLASSES, "total"], rows), ""]
    bugs = [o for o in outs if o.cls in runner.BUGS]
    iree = [o for o in outs if o.cls.startswith("iree-")]
    if bugs:
        lines += ["Bugs (MISMATCH / ERROR; xfail in tests/product/test_corpus.py):", ""]
        lines += [f"- `{o.name}` {o.cls}: {o.notes}; {o.sharding}. {o.detail[:220]}" for o in bugs]
        lines.append("")
    if iree:
        lines += ["IREE alone fails or differs on one device (not partitioner bugs):", ""]
        lines += [f"- `{o.name}` {o.cls}: {o.notes}. {o.detail[:200]}" for o in iree]
        lines.append("")
    flaky = [o for o in outs if "passed alone" in o.detail]
    if flaky:
        lines += ["Ranks died in a batched job but the case passed alone (memory corrupted by an "
                  "earlier case of that job): " + ", ".join(f"`{o.name}`" for o in flaky), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
