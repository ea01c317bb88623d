"""Shared collective cases for the threads and MPI communicator tests (pure numpy).

Each case gives every rank an input that depends on its rank, runs one collective and
states the numpy expectation, so the same table checks both backends."""
from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64", "bool")
REDUCE = ("sum", "prod", "min", "max")


def dtype(name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def value(rank: int, shape, name: str) -> np.ndarray:
    rng = np.random.default_rng(100 + rank)
    if name == "bool":
        return rng.random(shape) < 0.5
    if name.startswith("int"):
        return rng.integers(-3, 4, shape).astype(name)
    return rng.integers(-4, 5, shape).astype(np.float32).astype(dtype(name))


def reduce_ref(op: str, xs):
    if xs[0].dtype == np.bool_:
        f = np.logical_or if op in ("sum", "max") else np.logical_and
    else:
        f = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum}[op]
    acc = xs[0].astype(np.float32) if xs[0].dtype.kind == "f" or xs[0].dtype.name == "bfloat16" else xs[0]
    for x in xs[1:]:
        acc = f(acc, x.astype(acc.dtype))
    return acc.astype(xs[0].dtype)


def run_all(comm, size: int) -> int:
    """Run every case on `comm`; returns the number of cases checked (raises on mismatch)."""
    r = comm.rank
    groups = [tuple(range(size))]
    if size % 2 == 0 and size > 2:
        groups.append(tuple(g for g in range(size) if g % 2 == r % 2))    # strided
    n = 0
    for name in DTYPES:
        for group in groups:
            g = len(group)
            xs = {q: value(q, (g * 2, 3), name) for q in range(size)}
            x = xs[r]
            for op in REDUCE:
                out = np.empty_like(x)
                comm.all_reduce(x, out, op, group)
                want = reduce_ref(op, [xs[q] for q in group])
                assert np.array_equal(out.astype(np.float64), want.astype(np.float64)), (name, op, group)
                out = np.empty((2, 3), x.dtype)
                comm.reduce_scatter(x, out, op, group)
                i = group.index(r)
                assert np.array_equal(out.astype(np.float64), want[2 * i:2 * i + 2].astype(np.float64)), \
                    ("reduce_scatter", name, op)
                n += 2
            out = np.empty((g * g * 2, 3), x.dtype)
            comm.all_gather(x, out, group)
            assert np.array_equal(out, np.concatenate([xs[q] for q in group])), ("all_gather", name)
            out = np.empty_like(x)
            comm.all_to_all(x, out, group)
            i = group.index(r)
            assert np.array_equal(out, np.concatenate([xs[q][2 * i:2 * i + 2] for q in group])), \
                ("all_to_all", name)
            n += 2
        # ring shift, and rank 0 receiving from nobody
        out = np.empty_like(xs[r])
        send_to = (r + 1) % size if r != size - 1 else None
        recv_from = r - 1 if r > 0 else None
        comm.permute(xs[r], out, send_to, recv_from)
        want = xs[r - 1] if r > 0 else np.zeros_like(xs[r])
        assert np.array_equal(out, want), ("permute", name)
        n += 1
    return n
