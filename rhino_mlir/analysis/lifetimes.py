"""When each value is allocated and freed: the events of the planner's memory sweep.

The sweep (partition/search/evaluate.py) walks the nodes in program order: a value is
allocated by the node that computes it (ties allocate nothing) and freed after its last
reader unless @main returns it; arguments live throughout. A folded graph (fold.py)
compresses the program's timeline: a run of identical layers becomes one stretch of
copy 0's nodes standing for `copies` copies (a segment). Every copy of a segment
allocates and frees the same bytes at the same places, so copy j's live bytes are copy
0's plus j times the net bytes a copy leaves behind, and the sweep needs one copy and
the count. Copies that free different things (the last layer's output is read by the
glue, not by a next layer) get segments of their own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph


@dataclass
class Lifetimes:
    n: int                                  # positions
    alloc: tuple[np.ndarray, np.ndarray]    # (value ids, positions)
    free: tuple[np.ndarray, np.ndarray]     # (value ids, positions): freed after that position
    seg: np.ndarray                         # (k, 3): start, end, copies of segments with copies > 1
    full_pos: np.ndarray                    # position -> program node index (in the segment's copy 0)
    stride: np.ndarray                      # position -> nodes per copy of its segment (0 elsewhere)
    outputs: list[int]                      # returned values that are not arguments, one per value

    def sweep(self, lb: np.ndarray, base: float) -> tuple[float, int]:
        """(peak live bytes, program node where it is reached) given bytes per value `lb`
        and `base` bytes live throughout (the arguments)."""
        n = self.n
        a = np.bincount(self.alloc[1], weights=lb[self.alloc[0]], minlength=n)
        f = np.bincount(self.free[1], weights=lb[self.free[0]], minlength=n)
        grow = None
        if len(self.seg):
            s, e, m = self.seg[:, 0], self.seg[:, 1], self.seg[:, 2]
            cs = np.concatenate([[0.0], np.cumsum(a - f)])
            net = cs[e] - cs[s]                  # bytes one copy leaves behind
            grow = net >= 0                      # copy 0 stands for the last copy, else the first
            a = np.concatenate([a, [0.0]])
            np.add.at(a, np.where(grow, s, e), (m - 1) * net)
            a = a[:n]
        live = base + a.cumsum() - np.concatenate([[0.0], f.cumsum()[:-1]])
        at = int(np.argmax(live)) if n else 0
        peak = float(max(base, live[at] if n else base))
        node = int(self.full_pos[at])
        if grow is not None and self.stride[at]:
            i = np.flatnonzero((s <= at) & (at < e))
            if len(i) and grow[i[0]]:
                node += int((m[i[0]] - 1) * self.stride[at])
        return peak, node


def _arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    a = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return a[:, 0].copy(), a[:, 1].copy()


def of_graph(g: Graph) -> Lifetimes:
    return _plain(g) if g.fold is None else _folded(g)


def _plain(g: Graph) -> Lifetimes:
    last = [-1] * len(g.values)
    for n in g.nodes:
        for v in n.operands:
            last[v] = n.idx
    outs, seen = set(g.outputs), set(g.args)
    alloc, free = [], []
    for n in g.nodes:
        if n.kind == "tie":
            continue
        for v in n.results:
            if v not in seen:
                seen.add(v)
                alloc.append((v, n.idx))
                if v not in outs and last[v] >= 0:
                    free.append((v, last[v]))
    n = max(1, len(g.nodes))
    return Lifetimes(n, _arrays(alloc), _arrays(free), np.zeros((0, 3), dtype=np.int64),
                    np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64), sorted(outs - set(g.args)))


def _folded(g: Graph) -> Lifetimes:
    fold = g.fold
    reps = fold.reps
    fc = reps.first_code
    in_run = np.zeros(len(g.values), dtype=bool)
    for info in fold.runs:
        in_run[info.values[0]:info.values[1]] = True
    args = set(g.args)

    def allocated(v: int) -> bool:
        p = g.producer[v]
        return p >= 0 and g.nodes[p].kind != "tie" and v not in args

    # --- last readers of the program's values, as program node positions: top-level
    # results by code, values inside the glue's control regions by folded id
    last_c = np.full(int(fc[-1]), -1, dtype=np.int64)
    last_n: dict[int, int] = {}
    glue_at: dict[int, int] = {}                     # glue node -> program position
    run_at: list[int] = []                           # run -> program position of copy 0
    sizes = [info.nodes[1] - info.nodes[0] for info in fold.runs]
    starts = {info.run.start: ri for ri, info in enumerate(fold.runs)}
    k, t = 0, 0
    while k < reps.n_ops:
        ri = starts.get(k)
        if ri is None:
            n0, n1 = fold.op_nodes[k].tolist()
            reads: dict[int, int] = {}
            for n in range(n0, n1):
                glue_at[n] = pos = t + n - n0
                for v in g.nodes[n].operands:
                    reads[v] = pos
                    if not in_run[v] and v not in args:
                        c = fold.code_of.get(v)
                        if c is None:
                            last_n[v] = pos
                        else:
                            last_c[c] = pos
            cs = reps.codes[reps.ptr[k]:reps.ptr[k + 1]]
            cs = cs[cs >= 0]
            for c in cs[fold.run_of[np.searchsorted(fc, cs, side="right") - 1] >= 0].tolist():
                at = reads.get(int(fold.of_code[c]))   # a copy's value the glue reads
                if at is not None and at > last_c[c]:
                    last_c[c] = at
            t += n1 - n0
            k += 1
            continue
        info = fold.runs[ri]
        r, (n0, n1), size = info.run, info.nodes, sizes[ri]
        run_at.append(t)
        ext_last: dict[int, int] = {}
        for n in range(n0, n1):
            for v in g.nodes[n].operands:
                if not (info.values[0] <= v < info.values[1]):
                    ext_last[v] = n - n0
        at = np.array([ext_last.get(v, -1) for v in fold.fold_codes(r.ext[0]).tolist()], dtype=np.int64)
        pos = t + size * np.arange(r.copies)[:, None] + at[None, :]
        ok = (r.ext >= 0) & (at >= 0)[None, :]
        np.maximum.at(last_c, r.ext[ok], pos[ok])
        t += r.copies * size
        k = r.end
    out_c = np.zeros(len(last_c), dtype=bool)
    out_c[[c for c in reps.outputs if c >= 0]] = True

    # --- where each freed value goes: a glue node, or (run, copy, offset) of a copy
    run_lo = np.array(run_at, dtype=np.int64)
    run_hi = run_lo + np.array([info.run.copies * sz for info, sz in zip(fold.runs, sizes)], dtype=np.int64)
    glue_pos = {p: n for n, p in glue_at.items()}
    glue_free: dict[int, list[int]] = {}
    ext_free: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def free_at(values: list[int], when: np.ndarray) -> None:
        ri = np.searchsorted(run_lo, when, side="right") - 1
        inside = (ri >= 0) & (when < run_hi[np.maximum(ri, 0)])
        for v, p, q, ins in zip(values, when.tolist(), ri.tolist(), inside.tolist()):
            if not ins:
                glue_free.setdefault(glue_pos[p], []).append(v)
            else:
                j, off = divmod(p - run_at[q], sizes[q])
                ext_free.setdefault((q, j), []).append((off, v))

    vals, when = [], []
    for n in glue_at:
        for v in g.nodes[n].results:
            if allocated(v):
                c = fold.code_of.get(v)
                w = last_n.get(v, -1) if c is None else (-1 if out_c[c] else int(last_c[c]))
                if w >= 0:
                    vals.append(v)
                    when.append(w)
    for info in fold.runs:
        r = info.run
        j, rel = np.nonzero(r.escapes)
        codes = fc[r.start + r.period * j] + rel
        keep = ~out_c[codes] & (last_c[codes] >= 0)
        for v, w in zip(fold.of_code[codes[keep]].tolist(), last_c[codes[keep]].tolist()):
            if allocated(v):
                vals.append(v)
                when.append(w)
    free_at(vals, np.array(when, dtype=np.int64))
    return _assemble(g, fold, glue_at, glue_free, ext_free, run_at, allocated)


def _assemble(g, fold, glue_at, glue_free, ext_free, run_at, allocated) -> Lifetimes:
    """Positions in program order: glue nodes one each, runs one stretch per segment."""
    reps = fold.reps
    alloc, free, seg, full_pos, stride = [], [], [], [], []
    starts = {info.run.start: ri for ri, info in enumerate(fold.runs)}
    pos, k = 0, 0
    while k < reps.n_ops:
        ri = starts.get(k)
        if ri is None:
            for n in range(*fold.op_nodes[k].tolist()):
                node = g.nodes[n]
                if node.kind != "tie":
                    alloc += [(v, pos) for v in node.results if allocated(v)]
                free += [(v, pos) for v in glue_free.get(n, ())]
                full_pos.append(glue_at[n])
                stride.append(0)
                pos += 1
            k += 1
            continue
        info = fold.runs[ri]
        r, (n0, n1), (v0, v1) = info.run, info.nodes, info.values
        size = n1 - n0
        c0 = int(reps.first_code[r.start])
        own_alloc, inner_last = [], {}
        for n in range(n0, n1):
            node = g.nodes[n]
            if node.kind != "tie":
                own_alloc += [(v, n - n0) for v in node.results if allocated(v)]
            for v in node.operands:
                if v0 <= v < v1:
                    inner_last[v] = n - n0
        inner = [(v, off, fold.code_of.get(v)) for v, off in inner_last.items() if allocated(v)]
        sigs = [(r.escapes[j].tobytes(), tuple(sorted(ext_free.get((ri, j), ())))) for j in range(r.copies)]
        j = 0
        while j < r.copies:                        # copies that free alike share a segment
            e = j
            while e + 1 < r.copies and sigs[e + 1] == sigs[j]:
                e += 1
            esc = r.escapes[j]
            alloc += [(v, pos + off) for v, off in own_alloc]
            free += [(v, pos + off) for v, off, c in inner if c is None or not esc[c - c0]]
            free += [(v, pos + off) for off, v in ext_free.get((ri, j), ())]
            if e > j:
                seg.append((pos, pos + size, e - j + 1))
            full_pos += range(run_at[ri] + j * size, run_at[ri] + j * size + size)
            stride += [size] * size
            pos += size
            j = e + 1
        k = r.end
    n = max(1, pos)
    outputs = [fold.fold_code(c) for c in sorted(set(reps.outputs)) if c >= 0]
    return Lifetimes(n, _arrays(alloc), _arrays(free), np.array(seg, dtype=np.int64).reshape(-1, 3),
                    np.array(full_pos or [0], dtype=np.int64), np.array(stride or [0], dtype=np.int64), outputs)
