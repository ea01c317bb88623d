"""Coarsening for the search: dimension classes, and their groups across repeated layers.

A dimension class is a set of (value, dim) pairs that the factor rules tie together
(they carry one factor through an op: the batch dim of every activation, the hidden
dim of w1, h and w2, ...). Giving a mesh axis to a class shards all its dims at once
with no resharding between them, so the search decides per class (Rhino's cones,
generalized). Compound dimensions (reshapes merging factors) are not tied, so e.g.
heads and head_dim stay apart from d_model. need_replication/permutation factors do
not tie. Classes of identical layers (same structural labels) form one group: the
search solves one layer and reuses the decision for all of them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ...analysis.graph import Graph


class _UF:
    def __init__(self):
        self.p: dict = {}

    def find(self, a):
        p = self.p.setdefault(a, a)
        while p != self.p.get(p, p):
            self.p[p] = self.p.get(self.p[p], self.p[p])
            p = self.p[p]
        self.p[a] = p
        return p

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


@dataclass
class DimClasses:
    of: dict                                   # (value, dim) -> class id
    members: list[list[tuple[int, int]]]
    groups: list[list[int]]                    # group -> class ids (identical layers)
    group_of: list[int]                        # class -> group
    nbytes: list[int] = field(default_factory=list)   # class -> bytes of its values


def dim_classes(g: Graph) -> DimClasses:
    uf = _UF()
    for n in g.nodes:
        if n.kind == "tie":
            a, b = n.operands[0], n.results[0]
            for d in range(len(g.shapes[a])):
                uf.union((a, d), (b, d))
            continue
        if n.kind != "rule":
            continue
        r = n.rule
        seen: dict[int, tuple[int, int]] = {}
        for vals, dims_list in ((n.operands, r.operands), (n.results, r.results)):
            for v, dims in zip(vals, dims_list):
                for d, fs in enumerate(dims):
                    if len(fs) != 1 or not r.shardable(fs[0]) or g.shapes[v][d] == 1:
                        continue
                    f = fs[0]
                    if f in seen:
                        uf.union(seen[f], (v, d))
                    else:
                        seen[f] = (v, d)
    roots: dict = {}
    members: list[list[tuple[int, int]]] = []
    of = {}
    for v in range(len(g.values)):
        for d, size in enumerate(g.shapes[v]):
            if size == 1:
                continue
            r = uf.find((v, d))
            cid = roots.setdefault(r, len(roots))
            if cid == len(members):
                members.append([])
            members[cid].append((v, d))
            of[(v, d)] = cid
    nbytes = [sum(g.nbytes(v) for v, _ in m) for m in members]
    by_label: dict[str, list[int]] = defaultdict(list)
    for cid, m in enumerate(members):
        key = hash(tuple(sorted((g.labels[v], d) for v, d in m)))
        by_label[key].append(cid)
    groups = sorted(by_label.values(), key=lambda cs: -sum(nbytes[c] for c in cs))
    group_of = [0] * len(members)
    for gi, cs in enumerate(groups):
        for c in cs:
            group_of[c] = gi
    return DimClasses(of, members, groups, group_of, nbytes)
