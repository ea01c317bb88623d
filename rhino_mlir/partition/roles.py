"""Roles of @main's arguments and dimension classes, read off the program itself.

- stateful arguments: an output has the same type (parameters and optimizer state of
  a training step);
- parameters: stateful arguments that reach a contraction, convolution or gather
  (the rest of the stateful ones are optimizer state);
- data arguments: the others (batch inputs);
- the batch class: among the dimension classes holding dim 0 of a data argument (and
  no other dim of any argument), the one covering the most activation bytes
  (`batch_args` overrides: their dim 0);
- the model width class: the class holding dims of the most parameters (d_model);
- tensor-parallel classes: classes holding a parameter dim that are neither the batch
  nor the width class nor a dim of a data argument (hidden, heads, vocab, ...).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..analysis.graph import Graph
from ..analysis.local_rules import WEIGHT_CONSUMERS
from .coarsen import DimClasses


@dataclass
class Roles:
    stateful: list[int]
    params: list[int]
    data: list[int]
    batch_classes: set[int]
    width_class: int | None
    model_classes: set[int]


def _reaches_heavy(g: Graph, v: int, depth: int = 6) -> bool:
    frontier, seen = [v], {v}
    for _ in range(depth):
        nxt = []
        for x in frontier:
            for n in g.users[x]:
                node = g.nodes[n]
                if node.name in WEIGHT_CONSUMERS:
                    return True
                for r in node.results:
                    if r not in seen and len(g.shapes[r]) >= 1:
                        seen.add(r)
                        nxt.append(r)
        frontier = nxt
    return False


def roles(g: Graph, dc: DimClasses, batch_args: list[int] | None = None) -> Roles:
    out_types = Counter((tuple(g.shapes[v]), g.dtypes[v]) for v in g.outputs)
    stateful = [a for a in g.args if g.shapes[a] and out_types[(tuple(g.shapes[a]), g.dtypes[a])] > 0]
    params = [a for a in stateful if _reaches_heavy(g, a)]
    if not params:                                    # inference: weights are what feeds contractions
        params = [a for a in g.args if len(g.shapes[a]) >= 1 and _reaches_heavy(g, a)
                  and a not in _first_data_guess(g)]
    data = [a for a in g.args if g.shapes[a] and a not in stateful and a not in params]
    if batch_args is not None:
        chosen = [g.args[i] for i in batch_args]
        batch = {dc.of[(a, 0)] for a in chosen if (a, 0) in dc.of}
    else:
        cands = {dc.of[(a, 0)] for a in data if (a, 0) in dc.of}
        # a batch dimension is dim 0 of every argument that has it (a sequence or width
        # dimension also shows up as dim 1 of the inputs or inside the weights)
        args = set(g.args)
        lead = {c for c in cands if all(d == 0 for v, d in dc.members[c] if v in args)}
        cands = lead or cands
        batch = {max(sorted(cands), key=lambda c: dc.nbytes[c])} if cands else set()
    pcount = Counter(c for a in params for d in range(len(g.shapes[a])) if (c := dc.of.get((a, d))) is not None)
    width = max(sorted(pcount), key=lambda c: pcount[c]) if pcount else None
    data_classes = {dc.of[(a, d)] for a in data for d in range(len(g.shapes[a])) if (a, d) in dc.of}
    model = {c for c in pcount if c != width and c not in batch and c not in data_classes}
    return Roles(stateful, params, data, batch, width, model)


def _first_data_guess(g: Graph) -> set[int]:
    """Without a training step: integer arguments and the first argument are data."""
    ints = {a for a in g.args if g.dtypes[a].startswith(("i", "ui"))}
    return ints or ({g.args[0]} if g.args else set())
