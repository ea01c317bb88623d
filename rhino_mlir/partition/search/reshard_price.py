"""The partitioner's reshard buffers for one candidate plan, priced once per kind of op site.

partition/spmd/memory.reshards walks every op of the program for each sharding it is asked
about. The planner asks about ~20 candidates of one program whose repeated layers share
their shardings (the folded graph: copy j's values are copy 0's), so the walk repeats the
same decision for every copy of a layer. Here the sites are sorted once into classes of
identical decisions: same op (a folded value has one producer, its copies' ops are
identical), same searched-graph values read and written, same shapes. Per candidate each
class is decided once (spmd/memory.decide, the code rhino-spmd-partition runs) and the
rows are laid out over every site with numpy: a reshard copy per (operand buffer, target
layout) live from its first to its last reader, a pre-collective buffer at each site that
makes a result partial or in another layout. Rows, their order and their bytes are those
of memory.reshards (its cache on (rule, combiner, layouts) is kept: first site wins).

Programs with accumulator carries in a loop (partition/spmd/carry.py) keep the walk:
those sites depend on the order the loop is met in.
"""
from __future__ import annotations

import numpy as np

from ...analysis import dataflow, rules
from ...analysis.local_rules import combiner, restrict
from ...analysis.memory import local_nbytes
from ...sharding import Mesh, TensorSharding
from ..spmd import memory as M

_NO_RESHARD = dataflow.LOOP_OPS | dataflow.BRANCH_OPS | dataflow.IDENTITY_OPS | dataflow.TERMINATORS
_EMPTY = (np.zeros(0, np.int64),) * 3


class Table:
    """The sites of a Liveness sorted into classes (candidate-independent, built once)."""

    def __init__(self, lv, vid_of):
        """`vid_of(key)` -> the searched-graph value of a buffer key (-1: none)."""
        self.lv, self.vid_of = lv, vid_of
        self.walk = bool(M._updates(lv))          # accumulator carries: memory.reshards itself
        self.memo: dict = {}                      # (class rule, layouts, mesh) -> decision
        self.tids: dict = {}                      # target dims -> id
        vids: dict = {}
        self.vids = vids                          # buffer key -> searched-graph value
        if self.walk:
            return
        info: dict = {}                           # buffer key -> (key id, token); token < 0: no value
        toks: dict = {}                           # (value, shape, bytes) -> token

        def token(x) -> tuple:
            v = vid_of(x.key)
            vids[x.key] = v
            t = toks.setdefault((v, x.shape, x.ebytes), len(toks))
            return len(info), (t if v >= 0 else -1 - t)
        sig_of: dict = {}
        self.reps: list = []                      # class -> (site, operand vids, result vids)
        site_cls, site_pt, n_ops, n_res, use_key = [], [], [], [], []
        for i, s in enumerate(lv.sites):
            if s.op.name in _NO_RESHARD:
                continue
            ot, rt = [], []
            for x in s.operands:
                k = info.get(x.key)
                if k is None:
                    k = info[x.key] = token(x)
                ot.append(k[1])
                use_key.append(k[0])
            for x in s.results:
                k = info.get(x.key)
                if k is None:
                    k = info[x.key] = token(x)
                rt.append(k[1])
            # results with values name the op (copies of a layer share them); else one class per site
            sig = (s.op.name, i if not rt or min(rt) < 0 else -1, tuple(ot), tuple(rt))
            c = sig_of.get(sig)
            if c is None:
                c = sig_of[sig] = len(self.reps)
                self.reps.append((s, tuple(vids[x.key] for x in s.operands), tuple(vids[x.key] for x in s.results)))
            site_cls.append(c)
            site_pt.append(s.point)
            n_ops.append(len(ot))
            n_res.append(len(rt))
        nops = np.array([len(s.operands) for s, _, _ in self.reps], dtype=np.int64)
        nres = np.array([len(s.results) for s, _, _ in self.reps], dtype=np.int64)
        self.op_off = np.concatenate([[0], np.cumsum(nops)]).astype(np.int64)
        self.res_off = np.concatenate([[0], np.cumsum(nres)]).astype(np.int64)
        cls, pt = np.asarray(site_cls, np.int64), np.asarray(site_pt, np.int64)
        self.use_slot, self.use_pt = _spread(self.op_off[cls], pt, np.asarray(n_ops, np.int64))
        self.use_key = np.asarray(use_key, np.int64)
        self.res_slot, self.res_pt = _spread(self.res_off[cls], pt, np.asarray(n_res, np.int64))
        self.rule: list = []                      # class -> (rule id, r2, comb) or None: replicated
        rid: dict = {}
        for s, _, _ in self.reps:
            r = rules.rule_of(s.op)
            if r is None or len(r.operands) != len(s.operands) or len(r.results) != len(s.results):
                self.rule.append(None)
                continue
            r2, comb = restrict(s.op, r), combiner(s.op)
            self.rule.append((rid.setdefault((r2, comb), len(rid)), r2, comb))

    def __len__(self) -> int:
        return 0 if self.walk else len(self.reps)

    def rows(self, sh, mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, bytes) of the reshard buffers under per-value shardings `sh`
        (indexed by searched-graph value), as memory.reshards gives them."""
        if self.walk:
            def lookup(key, value):
                v = self.vids[key] if key in self.vids else self.vids.setdefault(key, self.vid_of(key))
                return sh[v] if v >= 0 else None
            return M.reshards(self.lv, lookup, mesh)
        rep = lambda x: TensorSharding.replicated_of(mesh.name, len(x.shape))  # noqa: E731
        get = lambda v, x: ((sh[v] if v >= 0 else None) or rep(x)).closed()  # noqa: E731
        need_t = np.full(int(self.op_off[-1]), -1, dtype=np.int64)
        need_b = np.zeros(int(self.op_off[-1]), dtype=np.int64)
        made_b = np.full(int(self.res_off[-1]), -1, dtype=np.int64)
        cache: dict = {}
        mkey = (mesh.name, mesh.axes, mesh.device_ids)
        for c, (s, ov, rv) in enumerate(self.reps):
            have = [get(v, x) for v, x in zip(ov, s.operands)]
            want = [get(v, x) for v, x in zip(rv, s.results)]
            ru = self.rule[c]
            if ru is None:
                need, made = [rep(x) for x in s.operands], want
            else:
                k = (ru[0], tuple(h.dims for h in have), tuple(t.dims for t in want))
                d = cache.get(k)
                if d is None:
                    mk = (ru[0], tuple((x.shape, x.ebytes) for x in s.operands + s.results),
                          tuple(have), tuple(want), mkey)
                    d = self.memo.get(mk)
                    if d is None:
                        d = self.memo[mk] = M.decide(ru[1], ru[2], s, have, want, mesh)
                    cache[k] = d
                need, made = d[0], d[1]
            o = int(self.op_off[c])
            for p, (x, h, n) in enumerate(zip(s.operands, have, need)):
                if n.dims != h.dims:
                    need_t[o + p] = self.tids.setdefault(n.dims, len(self.tids))
                    need_b[o + p] = local_nbytes(x.shape, n, mesh, x.ebytes)
            o = int(self.res_off[c])
            for p, (x, t, m) in enumerate(zip(s.results, want, made)):
                if m is None or m.dims != t.dims:
                    made_b[o + p] = local_nbytes(x.shape, m or t, mesh, x.ebytes)
        return self._layout(need_t, need_b, made_b)

    def _layout(self, need_t, need_b, made_b) -> tuple:
        tid = need_t[self.use_slot]
        at = np.flatnonzero(tid >= 0)             # operand reads that need a copy
        span = self.use_key[at] * (len(self.tids) + 1) + tid[at]
        _, first, inv = np.unique(span, return_index=True, return_inverse=True)
        end = np.full(len(first), -1, dtype=np.int64)
        np.maximum.at(end, inv.reshape(-1), self.use_pt[at])
        order = np.argsort(first, kind="stable")   # memory.reshards: spans by first reader
        lead = at[first[order]]
        mb = made_b[self.res_slot]
        out = np.flatnonzero(mb >= 0)
        return (np.concatenate([self.use_pt[lead], self.res_pt[out]]),
                np.concatenate([end[order], self.res_pt[out]]),
                np.concatenate([need_b[self.use_slot[lead]], mb[out]]))


def _spread(first: np.ndarray, pt: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per site `first` slot, point and count -> (slot, point) of each of its n entries."""
    at = np.repeat(first - np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64), n)
    return at + np.arange(int(n.sum()), dtype=np.int64), np.repeat(pt, n)


def table(fx) -> Table:
    """The Table of a training program's Facts (train_facts.py), built on first use."""
    t = fx.cache.get("reshards")
    if t is None:
        index = {k: i for i, k in enumerate(fx.lv.keys)}

        def vid_of(key) -> int:
            i = index.get(key)
            v = -1 if i is None else int(fx.buf[i])
            if v < 0 and key[0] == "op":
                j = fx.name_of(f"{key[1]}:{key[2]}")
                v = -1 if j is None else int(j)
            return v
        t = fx.cache["reshards"] = Table(fx.lv, vid_of)
    return t
