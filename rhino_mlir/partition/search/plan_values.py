"""What a Plan records about values: sharding text per "op:result", and the largest decision groups.

Values are named by (op index in walk order of @main, result number), as plan.json does;
on a folded search (analysis/fold.py) every copy's values take copy 0's shardings.
"""
from __future__ import annotations

import numpy as np

from ... import ir as I


def value_texts(g, sh) -> dict[str, str]:
    """'op:result' -> sharding text of every program value that is split somewhere."""
    memo: dict[int, str] = {}

    def text(s) -> str:
        t = memo.get(id(s))
        if t is None:
            t = memo[id(s)] = s.to_text()
        return t

    if g.fold is None:
        names = value_names(g)
        return {names[v]: text(s) for v, s in enumerate(sh) if v in names and g.shapes[v] and any(s.dims)}
    fo = g.fold                                   # each copy's values take copy 0's shardings
    split = np.array([bool(g.shapes[v]) and any(s.dims) for v, s in enumerate(sh)], dtype=bool)
    sel = np.flatnonzero(split[fo.full_to_folded] & (fo.walk >= 0))
    return {f"{w}:{r}": text(sh[v]) for w, r, v in zip(fo.walk[sel].tolist(), fo.resno[sel].tolist(),
                                                        fo.full_to_folded[sel].tolist())}


def groups_summary(best: Candidate, top: int = 12) -> list[dict]:
    """The biggest decision groups: what they hold and which axes they got."""
    if best.asg is None:
        return []                                 # a per-value plan (ZeRO): no groups
    sp = best.asg.space
    g, dc = sp.g, sp.dc
    out = []
    for gi, cs in enumerate(dc.groups[:top]):
        v, d = dc.members[cs[0]][0]
        out.append({"group": gi, "layers": sum(dc.copies[c] for c in cs), "example": f"dim {d} of {g.dtypes[v]}{g.shapes[v]}",
                    "bytes": int(sum(dc.nbytes[c] for c in cs)),
                    "axes": [a.to_text().strip('"') for a in best.asg.choice[gi]]})
    return out


def value_names(g) -> dict[int, str]:
    """value id -> 'op:result' (op index in walk order of @main)."""
    ids = {v: i for i, v in enumerate(g.values)}
    out = {}
    for k, op in enumerate(I.walk_ops(g.func)):
        for j, r in enumerate(op.results):
            i = ids.get(r)
            if i is not None:
                out[i] = f"{k}:{j}"
    return out
