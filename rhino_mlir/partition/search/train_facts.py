"""What recomputation and gradient accumulation can do to one training step (no sharding yet).

Read once per program and shared by every candidate plan (training.py prices them):
  groups      the layer groups of partition/remat/plan.py; per policy, the searched-graph
              nodes one layer of the group clones (its recomputation, priced by the evaluator);
  bdim        the batch dim of every searched-graph value (-1: none), from the micro-batch
              analysis (through reshapes) and the roles' batch class (values in regions);
  acc         the values reduced over the batch (gradients): rhino-accumulate's carries;
  lv          the memory model's live intervals of the program (analysis/liveness.py: fusion
              and donation included), each buffer tied to its searched-graph value (`buf`);
  windows     per (group, policy): how recomputation changes those intervals, as extra
              buffers for Liveness.profile: a dropped residual is not live from its last
              forward read to the point where its clone is made (negative bytes there), a
              value the recomputation starts from lives on until that point (positive), and
              so do the inputs of its producer when the anchor gets a copy of it
              (Liveness.copies), and those of the trigger's producer (the anchor's -0.0
              slices the trigger and gets a copy of that producer too).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ... import ir as I
from ...analysis.liveness import ARG, liveness
from ...errors import RhinoError

POLICIES = ("none", "selective", "full")


@dataclass
class LayerGroup:
    group: int
    layers: int
    nodes: dict                      # policy -> searched-graph nodes one layer recomputes
    windows: dict = field(default_factory=dict)   # policy -> (buffers, starts, ends, signs)


@dataclass
class Facts:
    groups: list[LayerGroup] = field(default_factory=list)
    bdim: np.ndarray | None = None
    acc: list = field(default_factory=list)              # (value id, summed in f32 for bf16/f16)
    data: list[int] = field(default_factory=list)        # batch arguments (value ids)
    batch: int = 0
    training: str | None = None      # why recomputation and accumulation do not apply
    lv: object = None                # Liveness of the program
    gbytes: np.ndarray | None = None # its buffers' global bytes (for buffers with no value found)
    buf: np.ndarray | None = None    # buffer -> searched-graph value (-1: none found)
    buf_batch: np.ndarray | None = None   # buffer holds a batch dim (scaled by 1/K)
    buf_arg: np.ndarray | None = None
    batch_end: int = 0               # last point where a batch-sized buffer is live
    loss_point: int = 0              # where the backward starts
    boundary: float = 0.0            # bytes per example of a layer's input (what a pipeline stage sends)
    cache: dict = field(default_factory=dict)            # training.py's scaled spaces
    name_of: object = None           # "op:result" -> searched-graph value id (fused values too)
    parts: tuple | None = None       # fold-first (train_fold.py): (facts of the 4-copy and the
    #                                  6-copy program, t = (C - 4) / 2, their points aligned);
    #                                  lv and the per-buffer fields above are then theirs
    result_of: list | None = None    # a cut-short program's result -> the program's result number

    def divisors(self) -> list[int]:
        b = self.batch
        return [k for k in range(1, b + 1) if b % k == 0] if b else [1]


def batch_args(g, dc, ro) -> list[int] | None:
    """Argument indices whose dim 0 is the batch (what microbatch.analyze would search for)."""
    data = set(ro.data)
    out = [i for i, a in enumerate(g.args) if a in data and dc.of.get((a, 0)) in ro.batch_classes]
    return out or None


def _value_ids(g, module, short=None):
    """(ir.Value, its "op:result" name) of @main -> searched-graph value id, or None; names
    of a cut-short program (`short`, train_fold.py) are its walk indices, translated."""
    f = I.main_func(module)
    args = {a: g.args[i] for i, a in enumerate(f.regions[0].blocks[0].arguments)}
    if g.fold is None:
        ids = {v: i for i, v in enumerate(g.values)}
        return lambda v, name=None: args.get(v, ids.get(v))
    fo = g.fold
    keys, ids = _name_index(fo)

    def get(v, name=None):
        if v in args:
            return args[v]
        if name is None:
            return None
        k, j = name.split(":")
        k = int(k) if short is None else short.walk(int(k))
        key = k * _RES + int(j)
        i = int(np.searchsorted(keys, key))
        return int(ids[i]) if i < len(keys) and keys[i] == key else None
    return get


_RES = 1 << 20                       # results per op in the keys of _name_index


def _name_index(fo):
    """(sorted keys walk * _RES + result, folded ids) of the program's values, once per fold."""
    got = getattr(fo, "_name_index", None)
    if got is None:
        pos = np.flatnonzero(fo.walk >= 0)
        keys = fo.walk[pos] * _RES + fo.resno[pos]
        order = np.argsort(keys, kind="stable")
        got = fo._name_index = (keys[order], fo.full_to_folded[pos][order])
    return got


def _buffers(fx: Facts, g, module, lookup) -> None:
    """Tie every buffer of the liveness walk to its searched-graph value."""
    lv = fx.lv
    buf = np.full(len(lv), -1, dtype=np.int64)
    for i, key in enumerate(lv.keys):
        if key[0] == "arg":
            buf[i] = g.args[key[1]]
        else:                                   # ("op" | "carry", walk, result)
            j = lookup(f"{key[1]}:{key[2]}")
            buf[i] = -1 if j is None else j
    fx.buf = buf
    fx.gbytes = lv.global_bytes
    fx.buf_arg = lv.kind == ARG
    fx.buf_batch = (buf >= 0) & (fx.bdim[np.maximum(buf, 0)] >= 0) & ~fx.buf_arg
    fx.batch_end = int(lv.end[fx.buf_batch].max(initial=0))


def facts(module, g, dc, ro, seeds: list[int] | None = None, fold_first: bool = True) -> Facts:
    """Layer groups, batch dims, accumulators and live intervals of `module` (after rhino-inline,
    rules populated: they stay, reshard pricing reads them), whose searched graph is `g`
    (dimension classes `dc`, roles `ro`). A folded graph of many copies gets them from two
    cut-short versions of the program (train_fold.py) when they line up."""
    seeds = seeds if seeds is not None else batch_args(g, dc, ro)
    if fold_first and g.fold is not None:
        from . import train_fold
        if train_fold.usable(g.fold.reps):
            fx = _fold_first(module, g, dc, ro, seeds)
            if fx is not None:
                return fx
    return _facts(module, g, dc, ro, seeds)


def _fold_first(module, g, dc, ro, seeds) -> Facts | None:
    """The facts of the program from its 4- and 6-copy versions (train_fold.py), or None."""
    from collections import Counter

    from ...analysis import rules
    from . import train_fold as TF
    parts = []
    for h in TF.KEEP:
        short = TF.shorten(g.fold.reps, g.fold.walk_base, h, module.context)
        if short is None:
            return None
        with short.module.context, I.ir.Location.unknown():
            rules.populate(short.module)
        fx = _facts(short.module, g, dc, ro, seeds, short)
        if fx.training is not None:
            return None                    # the whole program says why, in its own terms
        fx.result_of = short.results
        parts.append((fx, short))
    (fa, sa), (fb, sb) = parts
    if (fa.batch, fa.data, fa.boundary) != (fb.batch, fb.data, fb.boundary) or \
            not np.array_equal(fa.bdim, fb.bdim) or \
            [lg.group for lg in fa.groups] != [lg.group for lg in fb.groups]:
        return None
    t = (g.fold.reps.runs[0].copies - sa.copies) / (sb.copies - sa.copies)

    def whole(a: float, b: float) -> int | None:
        x = a + t * (b - a)
        return int(round(x)) if abs(x - round(x)) < 1e-6 and x >= -0.5 else None
    groups = []
    for la, lb in zip(fa.groups, fb.groups):
        n = whole(la.layers, lb.layers)
        if n is None or la.nodes != lb.nodes:
            return None
        groups.append(LayerGroup(lb.group, n, lb.nodes))
    ca, cb = Counter(fa.acc), Counter(fb.acc)
    acc = []
    for key in sorted(set(ca) | set(cb)):
        n = whole(ca[key], cb[key])
        if n is None:
            return None
        acc += [key] * n
    kb = TF.point_keys(fb.lv, sb)
    index = {k: i for i, k in enumerate(kb)}
    align = [index.get(k) for k in TF.point_keys(fa.lv, sa)]
    if any(i is None for i in align) or not TF.affine(fb.lv, kb, g.fold.reps, g.fold.walk_base):
        return None
    return Facts(groups=groups, bdim=fb.bdim, acc=acc, data=fb.data, batch=fb.batch, boundary=fb.boundary,
                 parts=(fa, fb, t, np.array(align, dtype=np.int64)))


def _facts(module, g, dc, ro, seeds, short=None) -> Facts:
    from ..remat import plan as R
    fx = Facts(bdim=np.full(len(g.values), -1, dtype=np.int64))
    for c in ro.batch_classes:                        # values in regions: the batch class
        for v, d in dc.members[c]:
            fx.bdim[v] = d
    try:
        with module.context, I.ir.Location.unknown():   # the planner populated the rules
            an = R.analyze(module, "rhino plan", seeds, rules_ready=True)
            fx.lv = liveness(module)
    except RhinoError as e:
        fx.training = str(e)
        return fx
    vid = _value_ids(g, module, short)
    ident = lambda v: vid(v, an.ids.get(v))  # noqa: E731
    for v, d in list(an.batch_dim.items()) + list(an.const_dim.items()):
        i = ident(v)
        if i is not None:
            fx.bdim[i] = d
    fx.batch = an.batch
    fx.data = [g.args[i] for i in seeds] if seeds else \
        [a for a in dict.fromkeys(g.args) if fx.bdim[a] >= 0]
    for v, comb in an.acc.items():
        i = ident(v)
        if i is not None and I.is_tensor(v.type):
            fx.acc.append((i, str(I.elem_of(v.type)) in ("bf16", "f16") and comb in ("add", "mul")))
    fx.name_of = lambda name: vid(None, name) if g.fold is not None else _by_name(an, vid, name)
    _buffers(fx, g, module, fx.name_of)
    pts = _Points(an, fx.lv)
    fx.loss_point = pts.point(an.fwd_end) or 0
    cuts = [L.inputs[0] for L in an.layers if L.inputs]
    fx.boundary = max((an.nbytes(v) for v in cuts), default=0) / max(1, an.batch)

    def ids(values) -> list[int]:
        return [i for i in (ident(v) for v in values) if i is not None]
    for grp in an.groups:
        L = an.layers[grp.layers[len(grp.layers) // 2]]     # a middle layer stands for the group
        nodes, windows = {}, {}
        for p in POLICIES:
            c = R.chain(an, L, p)
            made = ids(an.ops[k].results[0] for k in c.ops if len(an.ops[k].results))
            nodes[p] = sorted({g.producer[i] for i in made if g.producer[i] >= 0})
            windows[p] = pts.windows(R, [an.layers[li] for li in grp.layers], p)
        fx.groups.append(LayerGroup(grp.group, len(grp.layers), nodes, windows))
    return fx


def _by_name(an, vid, name: str):
    """Unfolded graphs: a buffer's "op:result" name -> value id (through the analysis' names)."""
    if not hasattr(an, "_by_name"):
        an._by_name = {n: v for v, n in an.ids.items()}
    v = an._by_name.get(name)
    return None if v is None else vid(v, name)


class _Points:
    """Op indices of the remat analysis -> points of the liveness walk."""

    def __init__(self, an, lv):
        self.an, self.lv = an, lv
        self.pw = np.array([-1 if p is None else p for p in lv.point_ops], dtype=np.int64)
        self.buf = {k: i for i, k in enumerate(lv.keys)}

    def walk(self, i: int) -> int | None:
        op = self.an.ops[i]
        if not len(op.results):
            return None
        return int(self.an.ids[op.results[0]].split(":")[0])

    def point(self, i: int) -> int | None:
        w = self.walk(i)
        return None if w is None else int(np.searchsorted(self.pw, w, side="right") - 1)

    def buffer(self, v) -> int | None:
        name = self.an.ids.get(v)
        if name is None:
            return None
        k, j = name.split(":")
        return self.buf.get(("op", int(k), int(j)))

    def roots(self, v, mine: set, keep: set) -> list:
        """`v` if it has a buffer, else the layer's own values with buffers that its fused
        expression reads (not those kept anyway)."""
        out, seen, todo = [], set(), [v]
        while todo:
            x = todo.pop()
            if x in seen or x in keep or x not in mine:
                continue
            seen.add(x)
            if self.buffer(x) is not None:
                out.append(x)
                continue
            p = self.an.producer.get(x)
            if p is not None:
                todo.extend(self.an.ops[p].operands)
        return out

    def windows(self, R, layers, policy: str):
        """(buffers, starts, ends, signs) of the interval changes of `layers` under `policy`."""
        an, lv = self.an, self.lv
        rows, grow = [], {}
        for L in layers:
            c = R.chain(an, L, policy)
            if not c.dropped:
                continue
            at = self.point(c.first_use)
            if at is None:
                continue
            keep = (set(L.residuals) - set(c.dropped)) | set(c.leaves) | set(L.inputs)
            mine = {r for i in L.ops for r in an.ops[i].results}
            done = set()
            for r in c.dropped:
                # a fused value (no buffer) keeps the buffers it is computed from alive instead
                for v in self.roots(r, mine, keep):
                    b = self.buffer(v)
                    if b is None or b in done:
                        continue
                    done.add(b)
                    fwd = [u for u in an.users.get(v, []) if u <= an.fwd_end]
                    last = self.point(max(fwd)) if fwd else None
                    s = (int(lv.start[b]) if last is None else last) + 1
                    if s <= at - 1:
                        rows.append((b, s, at - 1, -1))
            # the anchor (leaf + -0.0, rhino-remat) reads each leaf, and gets a copy of the
            # leaf's producer when that is copyable, which reads the producer's inputs; its
            # -0.0 slices the trigger, whose copyable producer is copied there too (the
            # anchor's own buffer is consumed by the first clone, before the op at `at`)
            for v in list(c.leaves) + [c.trigger]:
                b = self.buffer(v) if v is not None else None
                if b is None:
                    continue
                for i in ((b,) if v is not c.trigger else ()) + lv.copies.get(b, ()):
                    if lv.end[i] < at and lv.kind[i] != ARG:
                        grow[i] = max(grow.get(i, 0), at)
        rows += [(i, int(lv.end[i]) + 1, at, 1) for i, at in grow.items()]   # once per buffer
        a = np.array(rows, dtype=np.int64).reshape(-1, 4)
        return a[:, 0], a[:, 1], a[:, 2], a[:, 3]
