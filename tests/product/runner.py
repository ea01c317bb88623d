"""Run corpus cases through the product path and classify each against one device.

Per case:
  xla      the global program on one XLA CPU device (tests/harness/xla_oracle.run_global);
  single   the unannotated global program compiled by IREE alone (the product's lowering
           and flags, no partitioning) and run on one rank (`rhino run --check`'s reference);
  product  compile_global (partition, lower collectives, strip, IREE) into an artifact,
           run on N real MPI ranks by the rank code of `rhino launch`, many cases per
           mpiexec (mpi_batch.py).
Both IREE runs happen in child processes: a partitioned program that corrupts memory
(seen: a scatter) must end its own job, not the test session. Without eager_single,
IREE alone runs only where the product does not equal XLA (what classification needs).
Classes, first that applies:
  xla-fails                  the generator wrote a program XLA rejects (a corpus bug)
  iree-single-device-fails   IREE alone cannot compile or run it (not the partitioner's bug)
  ERROR                      our pipeline raised (partition, lowering, IREE on our output, ranks)
  MISMATCH                   the product's result differs from both XLA and IREE single
  iree-single-device-wrong   IREE alone differs from XLA (the product matches one of them)
  match                      the product equals XLA (DESIGN.md tolerances)
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .mpi_batch import run_batch

CLASSES = ("match", "iree-single-device-fails", "iree-single-device-wrong", "MISMATCH",
           "ERROR", "xla-fails")
BUGS = ("MISMATCH", "ERROR")


@dataclass
class Outcome:
    name: str
    family: str
    n: int
    cls: str
    detail: str                     # one line: why this class
    notes: str                      # what the generator drew
    sharding: str
    seconds: dict                   # phase -> seconds

    def to_json(self) -> dict:
        return asdict(self)


def one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = next((ln for ln in lines if "error:" in ln), lines[0] if lines else type(e).__name__)
    return f"{type(e).__name__}: {text}"[:400]


def xla_reference(text: str, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    import jax
    from harness.xla_oracle import run_global
    with jax.enable_x64(True):            # f64 inputs stay f64 on the way in
        return [np.asarray(r) for r in run_global(text, inputs)]


def build_product(text: str, out: Path) -> Path:
    """The partitioned artifact, as `rhino compile` writes it."""
    from rhino_mlir.launch.build.single_stage import compile_global
    return compile_global(text, out)


def build_single(program: str, out: Path) -> Path:
    """The unannotated global program as a one-device artifact: the same lowering and
    IREE flags as the product, no partitioning (`rhino run --check`'s reference)."""
    from rhino_mlir.launch.build.single_stage import compile_local
    return compile_local(program, out)


def differs(got, ref) -> str | None:
    """None when equal under DESIGN.md tolerances, else the first difference."""
    from harness.xla_oracle import assert_close
    if len(got) != len(ref):
        return f"{len(got)} results, reference has {len(ref)}"
    for i, (g, r) in enumerate(zip(got, ref)):
        try:
            with np.errstate(invalid="ignore"):          # inf - inf where both are inf
                assert_close(np.asarray(g), np.asarray(r), np.asarray(r).dtype, f"result {i}")
        except AssertionError as e:
            return str(e).splitlines()[0][:300]
    return None


def classify(xla, single, product) -> tuple[str, str]:
    """Each argument: a list of arrays, or the exception that stage raised."""
    if isinstance(xla, BaseException):
        return "xla-fails", one_line(xla)
    if isinstance(single, BaseException):
        if not isinstance(product, BaseException) and differs(product, xla):
            return "MISMATCH", f"IREE single fails ({one_line(single)}); product differs from XLA: " \
                               f"{differs(product, xla)}"
        return "iree-single-device-fails", one_line(single)
    if isinstance(product, BaseException):
        return "ERROR", one_line(product)
    vs_xla, vs_single, single_xla = differs(product, xla), differs(product, single), differs(single, xla)
    if vs_xla and vs_single:
        return "MISMATCH", f"vs XLA: {vs_xla}" + ("; IREE single also differs from XLA"
                                                  if single_xla else "")
    if single_xla:
        return "iree-single-device-wrong", (f"IREE single vs XLA: {single_xla}; product "
                                            f"{'equals IREE single' if not vs_single else 'equals XLA'}")
    return "match", ""


def _timed(sec: dict, key: str, fn, *a):
    t0 = time.perf_counter()
    try:
        return fn(*a)
    except Exception as e:  # noqa: BLE001 - every stage's failure is classified
        return e
    finally:
        sec[key] = round(sec.get(key, 0.0) + time.perf_counter() - t0, 3)


def run_cases(cases: Sequence, workdir: Path, eager_single: bool = True,
              log=None) -> list[Outcome]:
    """Every case through XLA, the product on its ranks and (eagerly, or only where the
    product does not match XLA) IREE alone; one mpiexec per rank count, crashes isolated."""
    say = log or (lambda msg: None)
    sec = [dict() for _ in cases]
    xla, product, single = [None] * len(cases), [None] * len(cases), [None] * len(cases)
    arts: dict[int, list[tuple[int, Path]]] = {}
    for k, c in enumerate(cases):
        xla[k] = _timed(sec[k], "xla", xla_reference, c.text, c.inputs)
        art = _timed(sec[k], "build", build_product, c.text, workdir / "product" / c.name)
        if isinstance(art, BaseException):
            product[k] = art
        else:
            arts.setdefault(c.n, []).append((k, art))
        say(f"built {c.name}")
    notes: dict[str, str] = {}
    for n, items in sorted(arts.items()):
        t0 = time.perf_counter()
        res = run_batch([(cases[k].name, a, cases[k].inputs) for k, a in items], n,
                        workdir / f"ranks{n}", notes=notes)
        per = (time.perf_counter() - t0) / max(1, len(items))
        for k, _ in items:
            product[k] = res[cases[k].name]
            sec[k]["ranks"] = round(per, 3)
        say(f"ran {len(items)} case(s) on {n} ranks in {time.perf_counter() - t0:.1f} s")
    need = {k for k in range(len(cases)) if eager_single or isinstance(xla[k], BaseException)
            or isinstance(product[k], BaseException) or differs(product[k], xla[k])}
    singles = []
    for k in sorted(need):
        c = cases[k]
        art = _timed(sec[k], "single_build", build_single, c.program, workdir / "single" / c.name)
        if isinstance(art, BaseException):
            single[k] = art
        else:
            singles.append((k, art))
    if singles:
        t0 = time.perf_counter()
        res = run_batch([(cases[k].name, a, cases[k].inputs) for k, a in singles], 1,
                        workdir / "single-run")
        for k, _ in singles:
            single[k] = res[cases[k].name]
        say(f"ran {len(singles)} case(s) on one device in {time.perf_counter() - t0:.1f} s")
    out = []
    for k, c in enumerate(cases):
        s = single[k] if k in need else product[k]       # not needed: the product matched XLA
        cls, detail = classify(xla[k], s, product[k])
        if c.name in notes:
            detail = "; ".join(x for x in (detail, notes[c.name]) if x)
        out.append(Outcome(c.name, c.family, c.n, cls, detail, c.notes, c.sharding_line(),
                           sec[k]))
    return out
