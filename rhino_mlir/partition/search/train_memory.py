"""The memory side of a training candidate's price (training.py): the pieces that turn the
memory model's live intervals, priced with a candidate's local bytes, into its peak.

  outputs       the results at @main's result shardings (a result computed in another
                sharding is a temporary until the return reshards it);
  temporaries   XLA's count of them beside the liveness peak (results' buffers hold the
                temporaries that die before they are written);
  windows       recomputation's interval changes as extra buffers;
  kept_at       the activations the forward keeps for the backward;
  extrapolate   a profile of the program with C copies from its 4- and 6-copy versions
                (train_fold.py).
"""
from __future__ import annotations

import numpy as np

from ...analysis.liveness import OUT, TEMP


def outputs(cand, lv, w: np.ndarray, result_of=None) -> tuple[float, tuple, tuple]:
    """(bytes of the non-donated results at @main's result shardings, (starts, ends, bytes) of
    the values computed in another sharding: temporaries until the return reshards them,
    (points where the result buffers are written, their bytes))."""
    from ...analysis.memory import local_nbytes
    res = getattr(cand, "results", None)
    last = len(lv.points) - 1
    total, rows, slots = 0.0, [], []
    for r, i in enumerate(lv.results):
        if r in lv.aliases:
            continue
        b, at = int(w[i]), int(lv.start[i])
        rr = r if result_of is None else result_of[r]        # the program's result number
        if res is not None and rr < len(res) and res[rr] is not None and lv.kind[i] == OUT:
            b = local_nbytes(lv.shapes[i], res[rr], cand.mesh, int(lv.elem_bytes[i]))
            if b != w[i] and at < last:
                rows.append((at, last, int(w[i])))
                at = last
        total += b
        if lv.kind[i] == OUT:
            slots.append((at, b))
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    sl = np.array(slots, dtype=np.int64).reshape(-1, 2)
    return total, (a[:, 0], a[:, 1], a[:, 2]), (sl[:, 0], sl[:, 1])


def xla_temporaries(lv, b, extra) -> np.ndarray:
    """The temporaries at each point as XLA's buffer assignment counts them (analysis/memory.py
    `outside_outputs`, without its slot-by-slot packing): a temporary that dies before some
    result buffer at least its size is written lives inside result buffers, as far as the
    bytes of those written after it allow; the accumulators (extra's first row: one per
    gradient, each the size of its parameter's new value) fit wherever a result is written
    after the loop."""
    n = len(lv.points)
    at, size = np.minimum(b.slots[0], n), b.slots[1]
    room, most = np.zeros(n + 1), np.zeros(n + 1)
    np.add.at(room, at, size)
    np.maximum.at(most, at, size)
    cap = np.cumsum(room[::-1])[::-1][1:]                 # bytes of result buffers written after t
    big = np.maximum.accumulate(most[::-1])[::-1][1:]     # the largest of them
    tw = np.where(lv.kind == TEMP, lv._weights(b.w), 0)
    fits = tw <= big[lv.end]
    s, e, x = extra if extra is not None else (np.zeros(0, np.int64),) * 3
    x_fits = np.abs(x) <= big[e]
    if b.acc and len(x):
        k = len(x) - len(b.extra[0])                 # the accumulators' row
        x_fits[k] = big[e[k]] > 0

    def prof(sel, xsel) -> np.ndarray:
        d = np.zeros(n + 1)
        for a, z, v in ((lv.start[sel], lv.end[sel], tw[sel]), (s[xsel], e[xsel], x[xsel])):
            v = v.astype(np.float64)
            d += np.bincount(a, v, minlength=n + 1)[:n + 1] - np.bincount(z + 1, v, minlength=n + 1)[:n + 1]
        return np.cumsum(d[:n])
    inside = prof(fits, x_fits)
    return prof(~fits, ~x_fits) + np.maximum(0.0, inside - cap)


def windows(parts: list, w: np.ndarray) -> tuple:
    """(starts, ends, bytes) of the groups' interval changes; a buffer that several groups
    keep alive longer (an input their anchors' copies share) is extended once, to the latest."""
    bufs, starts, ends, signs = (np.concatenate([x[i] for x in parts]) for i in range(4))
    pos = np.flatnonzero(signs > 0)
    order = pos[np.lexsort((-ends[pos], bufs[pos]))]
    first = order[np.r_[True, bufs[order][1:] != bufs[order][:-1]]] if len(order) else order
    keep = np.concatenate([np.flatnonzero(signs < 0), first])
    return starts[keep], ends[keep], signs[keep] * w[bufs[keep]]


def kept_at(fx, w: np.ndarray, extra) -> float:
    """Bytes of batch-sized buffers live where the backward starts (the activations the
    forward keeps), after recomputation's interval changes `extra`."""
    lv, p = fx.lv, fx.loss_point
    live = fx.buf_batch & (lv.start <= p) & (lv.end >= p)
    out = float(w[live].sum())
    if extra is not None:
        s, e, b = extra
        out += float(b[(s <= p) & (e >= p)].sum())
    return out


def extrapolate(a, b, t: float):
    """Bytes of the program with C copies from those with 4 (`a`) and 6 (`b`): t = (C - 4) / 2."""
    return np.rint(np.asarray(a, dtype=np.float64) + t * (np.asarray(b, dtype=np.float64) - a))
