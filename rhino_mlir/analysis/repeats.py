"""Repeated layers, found by structure in one linear pass over @main's printed ops.

An unrolled L-layer model prints the same run of ops L times (the forward, again in the
backward, again in the optimizer), differing only in the values that come in from
outside (the layer's weights, the previous layer's output, saved activations). Before
any per-op work (rules, costs, the graph) this module hashes every top-level op of
@main with its SSA names blanked out (name, attributes, types and regions stay) and
looks for tandem repeats of that hash sequence: a period P where op i and op i+P hash
alike over at least two periods. Each candidate is checked against the references:
copy j must read its own values at the same relative positions as copy 0 (relative to
the copy's first result number) and its outside values in the same pattern (the k-th
distinct outside value at the same places). Copies that pass form a `Run`; the planner
builds one copy (the representative) and maps every copy's values onto it by position
(analysis/fold.py). Arguments read at the same places of different copies (layer j's
weights) fold onto one argument the same way.

Codes name values: top-level results are numbered 0, 1, ... in program order; argument
k of @main is -1-k; values defined inside an op's regions get codes below LOCAL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_NAME = re.compile(r"%[A-Za-z0-9_$.\-]+(?:#\d+)?")
LOCAL = -(1 << 40)
MIN_PERIOD = 8            # ops per copy: shorter repeats (q/k/v reshapes) are not layers
MIN_SAVED = 64            # ops a run must save, (copies - 1) * period
WINDOW = 8                # ops per hashed window when looking for candidate periods
MAX_CANDIDATES = 16


@dataclass
class Run:
    start: int                 # op index of copy 0 (the representative)
    period: int                # ops per copy
    copies: int
    ext: np.ndarray            # (copies, n): codes each copy reads from outside itself, text order
    escapes: np.ndarray        # (copies, results per copy): read outside the copy or returned

    def op_start(self, j: int) -> int:
        return self.start + j * self.period

    @property
    def end(self) -> int:
        return self.start + self.copies * self.period


@dataclass
class Repeats:
    n_ops: int
    nargs: int
    first_code: np.ndarray     # (n_ops + 1,): code of each op's first result
    runs: list[Run]
    arg_rep: list[int]         # argument -> the argument it folds onto (itself when none)
    outputs: list[int]         # codes @main returns
    ptr: np.ndarray            # (n_ops + 1,): each op's first entry in `codes`
    codes: np.ndarray          # the codes each op reads, in text order
    arg_types: list[str]
    text: str | None = None    # the printed module and @main's body in it: text[span[0]:span[1]]
    span: tuple[int, int] = (0, 0)     # is the ops' texts `chunks` joined by newlines
    chunks: list[str] | None = None
    indent: int = 0            # the body's indentation

    def op_of_code(self, code: int) -> int:
        return int(np.searchsorted(self.first_code, code, side="right")) - 1

    def without(self, drop: dict[int, np.ndarray]) -> "Repeats | None":
        """The runs with the copies marked in `drop` (run index -> bool per copy) left out:
        the longest stretches of the others that still save enough stay runs."""
        runs = []
        for ri, r in enumerate(self.runs):
            bad = drop.get(ri)
            if bad is None:
                runs.append(Run(r.start, r.period, r.copies, r.ext, np.zeros_like(r.escapes)))
                continue
            j = 0
            while j < r.copies:
                if bad[j]:
                    j += 1
                    continue
                e = j
                while e + 1 < r.copies and not bad[e + 1]:
                    e += 1
                n = e - j + 1
                if n >= 2 and (n - 1) * r.period >= MIN_SAVED:
                    runs.append(Run(r.op_start(j), r.period, n, r.ext[j:e + 1],
                                    np.zeros((n, r.escapes.shape[1]), dtype=bool)))
                j = e + 1
        t = _Text([], self.ptr, self.codes, self.first_code, self.outputs, self.text, self.span, self.chunks,
                  self.indent)
        return _finish(t, runs, self.n_ops, self.arg_types)


@dataclass
class _Text:
    sigs: list[int]            # per op: hash of its text with SSA names blanked
    ptr: np.ndarray            # (n_ops + 1,) first token of each op
    codes: np.ndarray          # every name an op reads, in text order
    first_code: np.ndarray     # (n_ops + 1,)
    outputs: list[int] | None
    text: str | None = None
    span: tuple[int, int] = (0, 0)
    chunks: list[str] | None = None
    indent: int = 0


def find(text: str, func_name: str, arg_types: list[str], n_ops: int) -> Repeats | None:
    """Runs of repeated layers in @func_name of the printed module `text` (None if none)."""
    t = _parse(text, func_name, len(arg_types))
    if t is None or len(t.sigs) != n_ops or t.outputs is None:
        return None                   # the text does not line up with the block: no folding
    runs = []
    for start, period, copies in _regions(np.array(t.sigs, dtype=np.int64)):
        runs += _verify(t, start, period, copies)
    runs.sort(key=lambda r: r.start)
    return _finish(t, runs, n_ops, arg_types)


def _finish(t: _Text, runs: list[Run], n_ops: int, arg_types: list[str]) -> Repeats | None:
    if not runs:
        return None
    piece = _pieces(runs, n_ops)
    _escapes(t, runs, piece, n_ops)
    return Repeats(n_ops, len(arg_types), t.first_code, runs, _fold_args(t, runs, piece, arg_types, n_ops),
                   t.outputs, t.ptr, t.codes, arg_types, t.text, t.span, t.chunks, t.indent)


# ----------------------------------------------------------------------------- text


def _parse(text: str, func_name: str, nargs: int) -> _Text | None:
    head = re.search(rf"^( *)func\.func [^\n]*@{re.escape(func_name)}\(", text, re.M)
    if head is None:
        return None
    outer = len(head.group(1))
    lo = text.find("\n", head.end()) + 1
    hi = text.find("\n" + " " * outer + "}\n", lo)
    if lo <= 0 or hi < 0:
        return None
    body = text[lo:hi]
    ind = outer + 2
    # an op starts at the body's indentation; region lines are deeper or start with } ^ )
    split = re.compile(rf"\n(?= {{{ind}}}[^ }})^])")
    chunks = split.split(body)
    sigs = list(map(hash, split.split(_NAME.sub("%", body))))
    flat = _NAME.findall(body)
    counts = [c.count("%") for c in chunks]
    if len(sigs) != len(chunks) or sum(counts) != len(flat):   # a stray % in some string
        counts = [len(_NAME.findall(c)) for c in chunks]
        if sum(counts) != len(flat):
            return None
    ptr = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    # results "%0 = ", "%0:2 = ", "%a, %b = " open an op's text; their names stay among its
    # reads (an op reading its own results is the same in every copy)
    has = np.array([c[ind] == "%" for c in chunks], dtype=bool)
    lhs = [c[ind:c.find(" = ", ind)] for c, h in zip(chunks, has.tolist()) if h]
    nres = np.ones(len(lhs), dtype=np.int64)
    odd = [i for i, x in enumerate(lhs) if ":" in x or "," in x]
    for i in odd:
        nres[i] = sum(int(p.partition(":")[2] or 1) for p in lhs[i].split(", "))
    start = np.concatenate([[0], np.cumsum(nres)])
    names = {f"%arg{k}": -1 - k for k in range(nargs)}
    names.update(zip(lhs, start[:-1].tolist()))
    for i in odd:
        code = int(start[i])
        for part in lhs[i].split(", "):
            nm, _, k = part.partition(":")
            names[nm] = code
            for r in range(int(k or 1)):
                names[f"{nm}#{r}" if k else nm] = code + r
            code += int(k or 1)
    per_op = np.zeros(len(chunks), dtype=np.int64)
    per_op[has] = nres
    first = np.concatenate([[0], np.cumsum(per_op)])
    codes = list(map(names.get, flat))
    missing = [i for i, c in enumerate(codes) if c is None]
    if missing:                                     # names defined inside the op's regions
        for i in np.unique(np.searchsorted(ptr, missing, side="right") - 1).tolist():
            p0, p1 = int(ptr[i]), int(ptr[i + 1])
            local: dict[str, int] = {}
            codes[p0:p1] = [c if c is not None else LOCAL - local.setdefault(x, len(local))
                            for x, c in zip(flat[p0:p1], codes[p0:p1])]
    outputs = codes[int(ptr[-2]):] if chunks[-1][ind:].startswith("return") else None
    return _Text(sigs, ptr, np.array(codes, dtype=np.int64), first, outputs, text, (lo, hi), chunks, ind)


# ----------------------------------------------------------------------------- periods


def _regions(sig: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, period, copies) of non-overlapping periodic stretches, most ops saved first."""
    n = len(sig)
    if n < 2 * MIN_PERIOD + WINDOW:
        return []
    # candidate periods: distances between consecutive occurrences of equal windows
    h = np.zeros(n - WINDOW + 1, dtype=np.uint64)
    u = sig.view(np.uint64)
    for t in range(WINDOW):
        h = h * np.uint64(1000003) + u[t:n - WINDOW + 1 + t]
    order = np.argsort(h, kind="stable")
    same = h[order[1:]] == h[order[:-1]]
    d = (order[1:] - order[:-1])[same]
    vals, counts = np.unique(d[d >= MIN_PERIOD], return_counts=True)
    best = np.argsort(-counts, kind="stable")[:MAX_CANDIDATES]
    found = []
    for p in vals[best].tolist():
        eq = np.concatenate([[0], (sig[:-p] == sig[p:]).astype(np.int8), [0]])
        dx = np.diff(eq)
        for a, b in zip(np.flatnonzero(dx == 1).tolist(), np.flatnonzero(dx == -1).tolist()):
            copies = (b - a + p) // p             # [a, b + p) is p-periodic
            if copies >= 2 and (copies - 1) * p >= MIN_SAVED:
                found.append(((copies - 1) * p, p, a, copies))
    taken: list[tuple[int, int]] = []
    out = []
    for _, p, a, copies in sorted(found, key=lambda f: (-f[0], f[1], f[2])):
        lo, hi = _free_span(a, a + copies * p, taken)
        copies = (hi - lo) // p
        if copies >= 2 and (copies - 1) * p >= MIN_SAVED:
            taken.append((lo, lo + copies * p))
            out.append((lo, p, copies))
    return out


def _free_span(lo: int, hi: int, taken: list[tuple[int, int]]) -> tuple[int, int]:
    """The longest part of [lo, hi) that no taken interval covers."""
    cuts = sorted((max(lo, a), min(hi, b)) for a, b in taken if a < hi and b > lo)
    best, cur = (lo, lo), lo
    for a, b in cuts + [(hi, hi)]:
        if a - cur > best[1] - best[0]:
            best = (cur, a)
        cur = max(cur, b)
    return best


# ----------------------------------------------------------------------------- checks


def _verify(t: _Text, start: int, period: int, copies: int) -> list[Run]:
    """Split a periodic stretch into runs of copies that read their values alike."""
    p0, p1 = int(t.ptr[start]), int(t.ptr[start + period])
    width = p1 - p0
    ends = t.ptr[start + period * np.arange(1, copies + 1)] - t.ptr[start + period * np.arange(copies)]
    if np.any(ends != width):
        return []
    m = t.codes[p0:p0 + copies * width].reshape(copies, width)
    base = t.first_code[start + period * np.arange(copies)][:, None]
    n_res = int(t.first_code[start + period] - t.first_code[start])
    rel = m - base
    inside = (rel >= 0) & (rel < n_res)
    local = m <= LOCAL
    outside = ~inside & ~local
    canon = np.where(inside, rel, m)
    for j in range(copies):                        # outside values: k-th distinct one -> k
        row = m[j, outside[j]]
        if len(row):
            _, first, inv = np.unique(row, return_index=True, return_inverse=True)
            rank = np.empty(len(first), dtype=np.int64)
            rank[np.argsort(first)] = np.arange(len(first))
            canon[j, outside[j]] = (1 << 50) + rank[inv]
    same = np.all(canon[1:] == canon[:-1], axis=1) & np.all(outside[1:] == outside[:-1], axis=1)
    runs, j = [], 0
    while j < copies:
        k = j
        while k + 1 < copies and same[k]:
            k += 1
        n = k - j + 1
        if n >= 2 and (n - 1) * period >= MIN_SAVED:
            ext = m[j:k + 1][:, outside[j]]
            runs.append(Run(start + j * period, period, n, ext, np.zeros((n, n_res), dtype=bool)))
        j = k + 1
    return runs


def _pieces(runs: list[Run], n_ops: int) -> np.ndarray:
    """Per op: the index of its copy among all runs' copies (-1 for glue)."""
    piece = np.full(n_ops, -1, dtype=np.int64)
    k = 0
    for r in runs:
        for j in range(r.copies):
            piece[r.op_start(j):r.op_start(j + 1)] = k
            k += 1
    return piece


def _copy_table(runs: list[Run]) -> tuple[list[int], list[int]]:
    run_of, copy_of = [], []
    for ri, r in enumerate(runs):
        run_of += [ri] * r.copies
        copy_of += list(range(r.copies))
    return run_of, copy_of


def _escapes(t: _Text, runs: list[Run], piece: np.ndarray, n_ops: int) -> None:
    """Mark the results of each copy that something outside the copy reads (or returns)."""
    tok_op = np.repeat(np.arange(n_ops), np.diff(t.ptr))
    top = t.codes >= 0
    codes = t.codes[top]
    prod = np.searchsorted(t.first_code, codes, side="right") - 1
    pp, cp = piece[prod], piece[tok_op[top]]
    cross = (pp >= 0) & (pp != cp)
    run_of, copy_of = _copy_table(runs)
    for c, k in set(zip(codes[cross].tolist(), pp[cross].tolist())):
        r = runs[run_of[k]]
        j = copy_of[k]
        r.escapes[j, c - int(t.first_code[r.op_start(j)])] = True


def _fold_args(t: _Text, runs: list[Run], piece: np.ndarray, arg_types: list[str], n_ops: int) -> list[int]:
    """Arguments read at the same places of different copies (the same ops of the same runs),
    and nowhere else, fold onto the first of them: layer j's weights onto layer 0's."""
    nargs = len(arg_types)
    tok_op = np.repeat(np.arange(n_ops), np.diff(t.ptr))
    sel = np.flatnonzero((t.codes < 0) & (t.codes >= -nargs))
    run_of, copy_of = _copy_table(runs)
    slots: dict[int, list] = {}
    for ti, c in zip(sel.tolist(), t.codes[sel].tolist()):
        k = int(piece[tok_op[ti]])
        if k < 0:
            slot = (-1, ti)                        # read by the glue: its own place, never folds
        else:
            r = runs[run_of[k]]
            slot = (run_of[k], ti - int(t.ptr[r.op_start(copy_of[k])]))
        slots.setdefault(-1 - c, []).append(slot)
    rep: dict[tuple, int] = {}
    out = []
    for a in range(nargs):
        s = slots.get(a)
        key = (arg_types[a], tuple(sorted(s))) if s and all(x[0] >= 0 for x in s) else ("own", a)
        out.append(rep.setdefault(key, a))
    return out
