"""The folded graph: the glue and one copy of each repeated layer, built from the IR once.

analysis/repeats.py finds runs of identical layers in @main's text. Here the graph is
built (rules, costs, values) for the glue ops and for copy 0 of each run only; copy j's
values map onto copy 0's by position, and so do arguments read at the same places of
different copies (layer j's weights onto layer 0's). A node of copy 0 stands for the
run's `copies` ops: where a copy reads other outside values than copy 0 (layer 0 reads
the embedding, layer j the output of layer j-1), `Node.alt` keeps those operand lists
with their counts, so dimension classes and costs see every copy. Value ids follow
graph.build's numbering of the whole program (`Fold.full_to_folded`), so results are
expanded to it exactly; `Fold.names` gives the plan's "op:result" names the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ir as I
from . import graph
from .graph import Graph, UnionFind, _Builder, dim_ties, structural_labels
from .repeats import Repeats, Run


@dataclass
class RunInfo:
    run: Run
    nodes: tuple[int, int]             # folded nodes of copy 0
    values: tuple[int, int]            # folded values copy 0 defines
    binds: list = None                 # per distinct operand row: {copy 0's operand: this row's}
    row_of: np.ndarray = None          # copy -> its row in `binds`
    touched: list = None               # copy-0 nodes that read from outside the copy


@dataclass
class Fold:
    reps: Repeats
    runs: list[RunInfo]
    full_to_folded: np.ndarray         # program value id (graph.build numbering) -> folded id
    op_nodes: np.ndarray               # (n_ops, 2): folded nodes [first, end) of each built op
    op_values: np.ndarray              # (n_ops, 2): folded values [first, end) each built op defines
    rep_of: np.ndarray                 # op index -> the copy-0 op it repeats (-1: built itself)
    run_of: np.ndarray                 # op index -> its run in `runs` (-1: glue)
    code_of: dict                      # folded value -> its code (top-level results of built ops)
    res_pos: dict                      # built op -> position of each result among its new values
    of_code: np.ndarray                # code of a top-level result -> folded id
    args: np.ndarray                   # argument -> folded id
    walk: np.ndarray = None            # program value id -> walk index of its op (-1: block argument)
    resno: np.ndarray = None           # program value id -> result number
    walk_base: np.ndarray = None       # op index -> walk index of the op (its nested ops follow it)

    def fold_code(self, code: int) -> int:
        """Folded value id of a code (a top-level result, or -1-k for argument k)."""
        return int(self.args[-1 - code]) if code < 0 else int(self.of_code[code])

    def fold_codes(self, codes: np.ndarray) -> np.ndarray:
        return np.where(codes < 0, self.args[np.maximum(-1 - codes, 0)], self.of_code[np.maximum(codes, 0)])

    def expand(self, per_folded: list) -> list:
        """One entry per program value (graph.build's numbering) from one per folded value."""
        return [per_folded[i] for i in self.full_to_folded.tolist()]

    def names(self) -> list[str | None]:
        """'op:result' per program value (walk order of @main), None for block arguments."""
        return [None if w < 0 else f"{w}:{r}" for w, r in zip(self.walk.tolist(), self.resno.tolist())]


class _FoldBuilder(_Builder):
    def __init__(self, op_index: dict, rep_of: np.ndarray, res_ids: dict, memo: dict):
        super().__init__(memo)
        self.op_index, self.rep_of, self.res_ids = op_index, rep_of, res_ids

    def vid(self, v) -> int:
        i = self.ids.get(v)
        if i is not None:
            return i
        if isinstance(v, I.ir.OpResult):                 # a result of a copy that is not built
            k = self.op_index.get(v.owner)
            if k is not None and self.rep_of[k] >= 0:
                return self.res_ids[int(self.rep_of[k])][v.result_number]
        return super().vid(v)


def build(module, reps: Repeats) -> Graph:
    """The folded graph of @main (call rules.populate(module) first); the full graph when
    no run survives the check that copies bind alike (`_odd_copies`)."""
    memo: dict = {}
    if _saved(reps) < MIN_SHARE * reps.n_ops:
        return graph.build(module, memo)           # not worth a second graph
    f = I.main_func(module)
    block = f.regions[0].blocks[0]
    ops = I.block_ops(block)
    op_index = {op: k for k, op in enumerate(ops)}
    for _ in range(ROUNDS):
        if _saved(reps) < MIN_SHARE * reps.n_ops:
            break
        g = _build(f, block, ops, op_index, reps, memo)
        drop = _odd_copies(g)
        if not drop:
            g.labels = structural_labels(g)
            return g
        reps = reps.without(drop)
        if reps is None:
            break
    return graph.build(module, memo)


# the copies left out of a run can leave other runs' copies reading from the glue; a few
# rounds settle that (layers whose backward differs), more mean the runs do not line up
ROUNDS = 3
# fold when the copies after the first make at least this share of the program's ops
MIN_SHARE = 0.5


def _saved(reps: Repeats) -> int:
    return sum((r.copies - 1) * r.period for r in reps.runs)


def _build(f, block, ops: list, op_index: dict, reps: Repeats, memo: dict) -> Graph:
    n = len(ops)
    rep_of = np.full(n, -1, dtype=np.int64)
    run_of = np.full(n, -1, dtype=np.int64)
    for ri, r in enumerate(reps.runs):
        idx = np.arange(r.start + r.period, r.end)
        rep_of[idx] = r.start + (idx - r.start) % r.period
        run_of[r.start:r.end] = ri
    res_ids: dict[int, list[int]] = {}
    b = _FoldBuilder(op_index, rep_of, res_ids, memo)
    g = b.g
    g.func = f
    args = list(block.arguments)
    for k, a in enumerate(args):
        rk = reps.arg_rep[k]
        if rk == k:
            b.vid(a)
        else:
            b.ids[a] = i = b.ids[args[rk]]
            g.mult[i] += 1
    g.args = [b.ids[a] for a in args]
    op_nodes = np.zeros((n, 2), dtype=np.int64)
    op_values = np.zeros((n, 2), dtype=np.int64)
    starts = {r.start: r for r in reps.runs}
    runs, k = [], 0
    while k < n:
        r = starts.get(k)
        last = r.start + r.period if r is not None else k + 1
        for kk in range(k, last):
            n0, v0 = len(g.nodes), len(g.values)
            b.op(ops[kk], 1)
            op_nodes[kk], op_values[kk] = (n0, len(g.nodes)), (v0, len(g.values))
            res_ids[kk] = [b.ids[x] for x in ops[kk].results]
        if r is None:
            k += 1
            continue
        info = RunInfo(r, (int(op_nodes[r.start, 0]), len(g.nodes)), (int(op_values[r.start, 0]), len(g.values)))
        runs.append(info)
        k = r.end
    g.outputs = [b.vid(v) for v in ops[-1].operands]
    res_pos = {kk: [i - int(op_values[kk, 0]) for i in ids] for kk, ids in res_ids.items()}
    fc = reps.first_code
    of_code = np.full(int(fc[-1]), -1, dtype=np.int64)
    code_of = {}
    for kk, ids in res_ids.items():
        c0 = int(fc[kk])
        of_code[c0:c0 + len(ids)] = ids
        for r_, i in enumerate(ids):
            code_of.setdefault(i, c0 + r_)
    for r in reps.runs:                            # copy j's codes -> copy 0's
        c0, c1, per = int(fc[r.start]), int(fc[r.end]), int(fc[r.start + r.period] - fc[r.start])
        of_code[c0:c1] = of_code[c0 + (np.arange(c0, c1) - c0) % per]
    fold = Fold(reps, runs, np.zeros(0, dtype=np.int64), op_nodes, op_values, rep_of, run_of, code_of, res_pos,
                of_code, np.array(g.args, dtype=np.int64))
    g.fold = fold
    for info in runs:
        _copies(g, fold, info)
    _expand(g, fold, ops, n)
    return g


def _odd_copies(g: Graph) -> dict[int, np.ndarray]:
    """Per run, the copies whose outside operands would tie classes that copy 0's do not:
    a copy reading from the glue where the others read another run's copy (the backward
    of a layer whose forward was left out), or two copies of one op text applied to
    unrelated tensors. Folding them would merge what the program keeps apart. Of two
    sides of a conflict the smaller one is dropped."""
    uf = UnionFind()
    for n in g.nodes:
        for a, b in dim_ties(g, n, n.operands):
            uf.union(a, b)
    drop = {}
    for ri, info in enumerate(g.fold.runs):
        if len(info.binds) == 1:
            continue
        merges = [any(uf.find(a) != uf.find(b) for n in info.touched
                      for a, b in dim_ties(g, g.nodes[n], [bj.get(v, v) for v in g.nodes[n].operands]))
                  for bj in info.binds]
        bad = np.array(merges, dtype=bool)[info.row_of]
        if bad.any():
            drop[ri] = ~bad if bad.sum() > (~bad).sum() else bad
    return drop


def _copies(g: Graph, fold: Fold, info: RunInfo) -> None:
    """Multiplicities of copy 0's nodes and values, and the operands other copies read."""
    r = info.run
    n0, n1 = info.nodes
    v0, v1 = info.values
    for v in range(v0, v1):
        g.mult[v] = r.copies
    folded = fold.fold_codes(r.ext)                # (copies, outside reads) as folded ids
    row0 = folded[0].tolist()
    ext = set(row0)
    info.touched = [n for n in range(n0, n1) if any(v in ext for v in g.nodes[n].operands)]
    if row0:
        rows, inv, counts = np.unique(folded, axis=0, return_inverse=True, return_counts=True)
    else:
        rows, inv, counts = folded[:1], np.zeros(r.copies, dtype=np.int64), [r.copies]
    info.binds = [{a: b for a, b in zip(row0, row) if a != b} for row in rows.tolist()]
    info.row_of = inv.reshape(-1)
    variants: dict[int, dict[tuple, int]] = {n: {} for n in info.touched}
    for bj, count in zip(info.binds, list(counts)):
        for n in info.touched:
            ops = tuple(bj.get(v, v) for v in g.nodes[n].operands)
            variants[n][ops] = variants[n].get(ops, 0) + int(count)
    for n in range(n0, n1):
        node = g.nodes[n]
        node.mult = r.copies
        own = tuple(node.operands)
        alt = [(list(o), c) for o, c in variants.get(n, {}).items() if o != own]
        if alt:
            node.alt = alt
            seen = set(node.operands)
            for o, _ in alt:
                for v in o:
                    if v not in seen:
                        seen.add(v)
                        g.users[v].append(n)


def _walk_count(op) -> int:
    return 1 + (sum(1 for _ in I.walk_ops(op)) if len(op.regions) else 0)


def _expand(g: Graph, fold: Fold, ops: list, n: int) -> None:
    """Program value ids -> folded ids, walk indices and result numbers; node count."""
    rep_of = fold.rep_of
    built = np.flatnonzero(rep_of < 0)
    walks = np.zeros(n, dtype=np.int64)
    for k in built.tolist():
        walks[k] = _walk_count(ops[k])
    copied = np.flatnonzero(rep_of >= 0)
    walks[copied] = walks[rep_of[copied]]
    walk_base = np.concatenate([[0], np.cumsum(walks)[:-1]])
    fold.walk_base = walk_base
    # per folded value defined by a built op: (op, walk offset in its subtree, result number)
    nv = len(g.values)
    v_op = np.full(nv, -1, dtype=np.int64)
    v_off = np.full(nv, -1, dtype=np.int64)
    v_res = np.zeros(nv, dtype=np.int64)
    ids = {}
    for k in built.tolist():
        lo, hi = fold.op_values[k].tolist()
        if hi == lo:
            continue
        v_op[lo:hi] = k
        op = ops[k]
        if not len(op.regions):
            for r_, p in enumerate(fold.res_pos[k]):
                v_off[lo + p], v_res[lo + p] = 0, r_
            continue
        if not ids:
            ids = {v: i for i, v in enumerate(g.values)}
        for off, sub in enumerate([op] + list(I.walk_ops(op))):
            for r_, x in enumerate(sub.results):
                i = ids.get(x)
                if i is not None and lo <= i < hi:
                    v_off[i], v_res[i] = off, r_
    node_counts = fold.op_nodes[:, 1] - fold.op_nodes[:, 0]
    node_counts[copied] = node_counts[rep_of[copied]]
    g.n_full_nodes = int(node_counts.sum())
    # program value ids: the arguments, then each op's new values in order
    parts_f, parts_op = [np.array(g.args, dtype=np.int64)], [np.full(len(g.args), -1, dtype=np.int64)]
    starts = {info.run.start: info for info in fold.runs}
    k = 0
    while k < n:
        info = starts.get(k)
        if info is None:
            lo, hi = fold.op_values[k].tolist()
            parts_f.append(np.arange(lo, hi))
            parts_op.append(np.full(hi - lo, k, dtype=np.int64))
            k += 1
            continue
        r = info.run
        lo, hi = info.values
        for j in range(r.copies):
            parts_f.append(np.arange(lo, hi))
            parts_op.append(v_op[lo:hi] + j * r.period)
        k = r.end
    f2f = np.concatenate(parts_f)
    full_op = np.concatenate(parts_op)
    fold.full_to_folded = f2f
    off = v_off[f2f]
    fold.walk = np.where((full_op >= 0) & (off >= 0), walk_base[np.maximum(full_op, 0)] + off, -1)
    fold.resno = v_res[f2f]
