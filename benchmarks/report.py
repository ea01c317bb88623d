"""Shared by the benchmark scripts: the machine line, JSON results, docs/benchmarks.md.

docs/benchmarks.md holds one `<!-- bench:SUITE -->` ... `<!-- /bench:SUITE -->` section
per suite; a run rewrites only the sections of the suites it ran (a missing section is
appended at the end).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    """One line: cores, CPU model, memory, OS, date (what the figures were measured on)."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = f"{cpu} {line.split(':', 1)[1].strip()}"
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / (1 << 20):.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()}-core {cpu} CPU container{mem}, Linux {platform.release().split('-')[0]}, "
            f"Python {platform.python_version()}, {datetime.date.today().isoformat()}")


def revision() -> str:
    """The commit measured, '+ uncommitted changes' when the rhino_mlir tree differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "rhino_mlir")
    return head + (" + uncommitted changes to rhino_mlir/" if dirty else "")


def versions() -> dict:
    out = {}
    for mod in ("jax", "jaxlib"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a version line is informative only
            pass
    return out


def write_json(name: str, data) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def write_section(suite: str, body: str) -> None:
    """Replace (or append) the `bench:{suite}` section of docs/benchmarks.md."""
    start, end = f"<!-- bench:{suite} -->", f"<!-- /bench:{suite} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else (
        "# Benchmarks\n\nFigures are written by the scripts in `benchmarks/` (JSON under "
        "`benchmarks/results/`)\nand quoted here with the command and machine that made them.\n")
    pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
