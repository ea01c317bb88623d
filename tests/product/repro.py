"""A failing corpus case as a self-contained repro directory for whoever fixes it.

    DIR/program.mlir     the annotated global program (what `rhino run` takes)
    DIR/plain.mlir       the same program without shardings (IREE / XLA alone)
    DIR/inputs.npz       arg0... (the case's deterministic inputs)
    DIR/README.md        class, detail, what was drawn, sharding, and the commands
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_repro(case, outcome, root: Path) -> Path:
    d = Path(root) / case.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "program.mlir").write_text(case.text)
    (d / "plain.mlir").write_text(case.program)
    np.savez(d / "inputs.npz", **{f"arg{i}": x for i, x in enumerate(case.inputs)})
    (d / "README.md").write_text(
        f"# {case.name}: {outcome.cls}\n\n"
        f"- drawn: {case.notes}\n- sharding: {case.sharding_line()}\n"
        f"- detail: {outcome.detail}\n\n"
        "Reproduce (from the repository root):\n\n"
        f"    .venv/bin/rhino run {d}/program.mlir -n {case.n} --inputs {d}/inputs.npz --check\n"
        f"    .venv/bin/python -m pytest tests/product/test_corpus.py -q -m '' -k '{case.name}'\n\n"
        f"The case is corpus.case({case.index}, {case.n}, seed={case.seed}) in tests/product/corpus.py.\n")
    return d
