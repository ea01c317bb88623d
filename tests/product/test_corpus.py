"""Product corpus: testdata-style StableHLO programs, random (often uneven) shardings,
through `rhino run`'s whole path (partition, lower collectives, IREE, MPI ranks, output
assembly) on 2 and 4 ranks, against one device (XLA; IREE alone where they differ).

fast  FAST: 20 cases in `make test`, one per family that moves, indexes or reduces.
slow  the sweep: SWEEP programs x {2, 4} ranks, in chunks of CHUNK programs (so the
      two xdist workers share the work), in `make test-all`.
Cases run in batches (one mpiexec per chunk, runner.py / mpi_batch.py); the results
of a chunk are computed once per session and shared between xdist workers through a
file lock. Cases that IREE cannot run on one device pass (they are listed by
benchmarks/product_corpus.py); MISMATCH / ERROR cases are bugs: those known are
xfail(strict=False) below with their reason, repros in the issue reports.
"""
from __future__ import annotations

import fcntl
import json
from pathlib import Path

import numpy as np
import pytest

from product import corpus, runner
from product.corpus import case_name

# (program index, ranks, seed): the second draw of 20 families (the second cycle of
# FAMILY_ORDER), and one pinned seed-1 case that showed a bug (negative pad edges)
_ORDER = corpus.FAMILY_ORDER
FAST = [(len(_ORDER) + _ORDER.index(f), n, 0) for f, n in (
    ("binary", 4), ("reshape", 2), ("slice", 4), ("pad", 2), ("dot_general", 4),
    ("convolution", 2), ("reduce", 4), ("reduce_window", 2), ("gather", 4), ("scatter", 2),
    ("dynamic_slice", 4), ("dynamic_update_slice", 2), ("sort", 4), ("while_cumsum", 2),
    ("case", 4), ("softmax", 2), ("dense", 4), ("passthrough", 2), ("layout_chain", 4),
    ("select_and_scatter", 2))] + [(95, 2, 1)]
SWEEP, CHUNK = 150, 15                  # seed 0, programs 0..SWEEP-1, on 2 and 4 ranks
PINNED = [(95, 4, 1)]                   # cases of other seeds that showed bugs (slow tier)

# Known bugs (MISMATCH / ERROR) by case name, one line each (repros: /tmp/work/repro/<bug>/
# at the time of writing; benchmarks/product_corpus.py --repro-dir writes them anew).
KNOWN: dict[str, str] = {}


def _param(index: int, n: int, seed: int, slow: bool):
    name = case_name(index, n, seed)
    marks = [pytest.mark.slow] if slow else []
    if name in KNOWN:
        marks.append(pytest.mark.xfail(reason=KNOWN[name], strict=False))
    return pytest.param(index, n, seed, id=name, marks=marks)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory, worker_id) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base      # one dir for all workers


_SEEN: dict[str, dict] = {}


def outcomes(key: str, cases: list, shared: Path) -> dict[str, dict]:
    """Run `cases` once per session (the first worker to ask does; others read the JSON)."""
    if key in _SEEN:
        return _SEEN[key]
    path = shared / f"product-{key}.json"
    with open(shared / f"product-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            outs = runner.run_cases([corpus.case(i, n, s) for i, n, s in cases],
                                    shared / f"product-{key}", eager_single=False)
            path.write_text(json.dumps({o.name: o.to_json() for o in outs}))
        _SEEN[key] = json.loads(path.read_text())
    return _SEEN[key]


def check(o: dict) -> None:
    assert o["cls"] not in runner.BUGS + ("xla-fails",), (
        f"{o['name']} {o['cls']}: {o['detail']} [{o['notes']}; {o['sharding']}]")


@pytest.mark.parametrize("index,n,seed", [_param(*c, slow=False) for c in FAST])
def test_fast_case(index, n, seed, shared_dir):
    batch = [c for c in FAST if c[1] == n]                  # one mpiexec per rank count
    check(outcomes(f"fast-n{n}", batch, shared_dir)[case_name(index, n, seed)])


SWEEP_CASES = [(i, n, 0) for n in (2, 4) for i in range(SWEEP)] + PINNED


@pytest.mark.parametrize("index,n,seed", [_param(*c, slow=True) for c in SWEEP_CASES])
def test_sweep_case(index, n, seed, shared_dir):
    if (index, n, seed) in PINNED:
        batch, key = PINNED, "pinned"
    else:
        lo = index - index % CHUNK
        batch, key = [(i, n, 0) for i in range(lo, min(lo + CHUNK, SWEEP))], f"sweep-n{n}-{lo}"
    check(outcomes(key, batch, shared_dir)[case_name(index, n, seed)])


# ----------------------------------------------------------------------------- the corpus itself

def test_cases_are_reproducible():
    a, b, c = corpus.case(40, 4), corpus.case(40, 4), corpus.case(40, 4, seed=1)
    assert a.text == b.text and all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))
    assert (a.text, a.notes) != (c.text, c.notes)
    assert corpus.case(40, 2).program == a.program         # same program, its own sharding
    assert a.name == case_name(40, 4) == "040-slice-n4" and c.name == "s1-040-slice-n4"


def test_family_order_covers_the_op_families():
    want = {"unary", "binary", "compare_select", "broadcast_binary", "reshape", "transpose",
            "reverse", "slice", "pad", "concatenate", "iota", "dot_general", "convolution",
            "reduce", "reduce_window", "gather", "scatter", "dynamic_slice",
            "dynamic_update_slice", "sort", "while_cumsum", "case", "clamp", "convert",
            "bitcast_convert"}
    assert want <= set(corpus.FAMILY_ORDER)
    assert len({corpus.FAMILY_ORDER[i % len(corpus.FAMILY_ORDER)] for i, _, _ in FAST}) >= 20


def test_shardings_are_random_and_uneven():
    cases = corpus.sweep(29, (2, 4))
    meshes = {tuple(c.mesh.axes) for c in cases}
    assert meshes == {(("x", 2),), (("x", 4),), (("x", 2), ("y", 2))}
    uneven = 0
    for c in cases:
        assert any(s is not None for s in c.arg_shardings), f"{c.name}: nothing sharded"
        size = dict(c.mesh.axes)
        for s, x in zip(c.arg_shardings, c.inputs):
            for axes, d in zip(s or (), x.shape):
                k = int(np.prod([size[a] for a in ((axes,) if isinstance(axes, str) else axes or ())]))
                uneven += d % k != 0
    assert uneven >= 10


def test_classify():
    a = [np.array([1.0, 2.0], np.float32)]
    b = [np.array([1.0, 2.5], np.float32)]
    err = RuntimeError("boom")
    assert runner.classify(a, a, a)[0] == "match"
    assert runner.classify(a, b, a)[0] == "iree-single-device-wrong"
    assert runner.classify(a, b, b)[0] == "iree-single-device-wrong"
    assert runner.classify(a, a, b)[0] == "MISMATCH"
    assert runner.classify(a, err, a)[0] == "iree-single-device-fails"
    assert runner.classify(a, err, err)[0] == "iree-single-device-fails"
    assert runner.classify(a, err, b)[0] == "MISMATCH"
    assert runner.classify(a, a, err)[0] == "ERROR"
    assert runner.classify(err, a, a)[0] == "xla-fails"
    ints = [np.array([1, 2], np.int32)]
    assert runner.classify(ints, ints, [np.array([1, 3], np.int32)])[0] == "MISMATCH"


@pytest.mark.slow
def test_every_family_draws_valid_programs():
    """Three more draws per family slot run on XLA (the corpus must not be the bug)."""
    for k in range(3 * len(corpus.FAMILY_ORDER)):
        c = corpus.case(200 + k, 2)
        runner.xla_reference(c.text, c.inputs)
