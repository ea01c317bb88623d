"""Coarsening for the search: dimension classes, and their groups across repeated layers.

A dimension class is a set of (value, dim) pairs that the factor rules tie together
(they carry one factor through an op: the batch dim of every activation, the hidden
dim of w1, h and w2, ...). Giving a mesh axis to a class shards all its dims at once
with no resharding between them, so the search decides per class (Rhino's cones,
generalized). Compound dimensions (reshapes merging factors) are not tied, so e.g.
heads and head_dim stay apart from d_model. need_replication/permutation factors do
not tie. Classes of identical layers (same structural labels) form one group: the
search solves one layer and reuses the decision for all of them. On a folded graph
(analysis/fold.py) a class of copy 0 stands for the class in every copy: its bytes count
each copy, and a node's other copies' operands (`Node.alt`) are tied like its own.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ...analysis.graph import Graph, UnionFind, dim_ties


@dataclass
class DimClasses:
    of: dict                                   # (value, dim) -> class id
    members: list[list[tuple[int, int]]]
    groups: list[list[int]]                    # group -> class ids (identical layers)
    group_of: list[int]                        # class -> group
    nbytes: list[int] = field(default_factory=list)   # class -> bytes of its values
    copies: list[int] = field(default_factory=list)   # class -> classes of the program it stands for


def dim_classes(g: Graph) -> DimClasses:
    uf = UnionFind()
    for n in g.nodes:
        for operands in ([n.operands] if not n.alt else [o for o, _ in n.bindings()]):
            for a, b in dim_ties(g, n, operands):
                uf.union(a, b)
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
    mult = g.mult or [1] * len(g.values)
    nbytes = [sum(g.nbytes(v) * mult[v] for v, _ in m) for m in members]
    copies = [min(mult[v] for v, _ in m) for m in members]
    by_label: dict[str, list[int]] = defaultdict(list)
    for cid, m in enumerate(members):
        key = hash(tuple(sorted((g.labels[v], d) for v, d in m)))
        by_label[key].append(cid)
    groups = sorted(by_label.values(), key=lambda cs: -sum(nbytes[c] for c in cs))
    group_of = [0] * len(members)
    for gi, cs in enumerate(groups):
        for c in cs:
            group_of[c] = gi
    return DimClasses(of, members, groups, group_of, nbytes, copies)
