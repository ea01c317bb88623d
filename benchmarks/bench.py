"""`rhino bench`: every benchmark suite behind one command (DESIGN.md "benchmarks").

    .venv/bin/python benchmarks/bench.py [--quick] [--suite S ...] [--out DIR] [--json]
    rhino bench ...                       (the same, through tools/bench_cmd.py)

Suites (one module each, `run(ctx) -> dict`):
  search    planner wall time vs model size, layers (unrolled / scan) and devices, split
            parse / rules / coarsen / solve; beside the published anchors (suite_search.py)
  quality   predicted step time of auto vs the baselines per model and cluster
  fidelity  measured vs predicted step time of transformer-block plans on 4 CPU ranks
  memory    predicted vs XLA-measured peak bytes per device, per plan
  measured  GPT train step plans executed by XLA on 8 CPU devices, and XLA's auto-sharding
  runtime   collectives and the transformer block (bench_collectives.py, bench_block.py)
Each suite writes JSON to benchmarks/results/ (or --out) and rewrites only its own
`<!-- bench:NAME -->` section of docs/benchmarks.md (--no-doc: neither docs nor plots),
labelled quick or full with the command and the machine; plots go to docs/img/, and
the README's `bench:results` block gets the headline figures (readme.py).
"""
from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):          # before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report  # noqa: E402

SUITES = ("search", "quality", "fidelity", "memory", "measured", "runtime")
QUICK = ("search", "quality", "fidelity", "memory", "measured")     # runtime: full only


@dataclass
class Ctx:
    quick: bool
    out: Path
    doc: bool = True
    img: Path = report.ROOT / "docs" / "img"
    command: str = ""
    only: str | None = None                      # run only the cases whose role starts with this
    started: float = field(default_factory=time.perf_counter)

    @property
    def label(self) -> str:
        return "quick" if self.quick else "full"

    def log(self, msg: str) -> None:
        print(f"  bench: {msg}", file=sys.stderr, flush=True)

    def write_json(self, name: str, data) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{name}.json"
        path.write_text(json.dumps(data, indent=1, default=str) + "\n")
        return path

    def header(self, title: str, what: str) -> str:
        """Section head: title, what was measured, and how/where (quick or full)."""
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = float("nan")
        return (f"## {title}\n\n{what}\n\n**{self.label} run**: `{self.command}` — "
                f"{report.machine()}; load average {load:.1f} at the start; revision "
                f"{report.revision()}; jax {report.versions().get('jax', '?')}.\n")

    def section(self, name: str, body: str) -> None:
        if self.doc:
            report.write_section(name, body)

    def plot_path(self, name: str) -> Path | None:
        """Where a plot goes (None with --no-doc); callers skip plotting on None."""
        if not self.doc:
            return None
        self.img.mkdir(parents=True, exist_ok=True)
        return self.img / name


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="rhino bench", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    return ap.parse_args(argv)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--quick", action="store_true",
                    help="a subset that runs in a few minutes on 2 cores (sections say 'quick')")
    ap.add_argument("--suite", action="append", choices=SUITES, metavar="S",
                    help=f"suite to run (repeatable; {', '.join(SUITES)}); default: all "
                    f"(with --quick: {', '.join(QUICK)})")
    ap.add_argument("--out", metavar="DIR", help="JSON results here (default benchmarks/results)")
    ap.add_argument("--no-doc", action="store_true", help="write JSON only: no docs/benchmarks.md, no plots")
    ap.add_argument("--json", action="store_true", help="print one JSON document {suite: result} on stdout")
    ap.add_argument("--only", metavar="ROLE", help="search suite: rerun only the cases whose role starts with "
                    "ROLE (layers, devices, target, level); the other rows are kept from the last run")


def main(argv=None, command: str | None = None) -> int:
    a = parse(argv)
    cmd = command or "rhino bench " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    ctx = Ctx(a.quick, Path(a.out) if a.out else report.RESULTS, not a.no_doc, command=cmd.strip(), only=a.only)
    suites = a.suite or list(QUICK if a.quick else SUITES)
    results, failed = {}, []
    for s in suites:
        t0 = time.perf_counter()
        ctx.log(f"suite {s} ({ctx.label})")
        try:
            res = importlib.import_module(f"suite_{s}").run(ctx)
        except Exception as e:  # noqa: BLE001 - one suite failing must not hide the others
            import traceback
            traceback.print_exc()
            res, _ = {"error": f"{type(e).__name__}: {e}"}, failed.append(s)
        res["suite_seconds"] = round(time.perf_counter() - t0, 1)
        results[s] = res
        ctx.log(f"suite {s} done in {res['suite_seconds']} s")
    if ctx.doc and not failed:
        import readme
        readme.write(ctx.out, ctx.command)
    if a.json:
        print(json.dumps(results, default=str))
    else:
        for s, r in results.items():
            print(f"{s}: {r.get('summary', r.get('error', 'done'))} ({r['suite_seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
