"""Roles of @main's arguments and dimension classes, read off the program itself.

- stateful arguments: an output of the same type is an element-wise update of them
  (parameters and optimizer state of a training step: p - lr*g, b*m + (1-b)*g);
- parameters: stateful arguments that reach a contraction, convolution or gather
  (the rest of the stateful ones are optimizer state);
- data arguments: the others (batch inputs);
- the batch class: among the dimension classes holding dim 0 of a data argument (and
  no other dim of any argument), the one covering the most activation bytes
  (`batch_args` overrides: their dim 0);
- the model width class: the class the first contraction with a parameter sums over
  (x @ w1: the input width; d_model in a transformer);
- tensor-parallel classes: classes holding a parameter dim that are neither the batch
  nor the width class nor a dim of a data argument (hidden, heads, vocab, ...).
On a folded graph (analysis/fold.py) an argument stands for every copy's (`Graph.mult`),
and the role lists hold each folded argument once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ...analysis.graph import Graph
from ...errors import RhinoError
from ...analysis.local_rules import WEIGHT_CONSUMERS
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


def _updated_from(g: Graph, v: int, depth: int = 4) -> set[int]:
    """Arguments that reach output v within `depth` element-wise ops (p - lr*g, b*m + ...)."""
    found, frontier = set(), [v]
    for _ in range(depth):
        nxt = []
        for x in frontier:
            p = g.producer[x]
            if p < 0:
                found.add(x)
                continue
            n = g.nodes[p]
            if n.kind == "rule" and not n.rule.reduction and all(len(g.shapes[u]) in (0, len(g.shapes[x]))
                                                                  for u in n.operands):
                nxt += [u for ops in _operand_lists(n) for u in ops if g.shapes[u]]
        frontier = nxt
    return found | {x for x in frontier if g.producer[x] < 0}


def _operand_lists(n) -> list[list[int]]:
    return [n.operands] if not n.alt else [o for o, _ in n.bindings()]


def roles(g: Graph, dc: DimClasses, batch_args: list[int] | None = None) -> Roles:
    # stateful: an output of the same type is an element-wise update of the argument
    updated = set()
    for v in dict.fromkeys(g.outputs):
        updated |= {a for a in _updated_from(g, v) if (g.shapes[a], g.dtypes[a]) == (g.shapes[v], g.dtypes[v])}
    args = list(dict.fromkeys(g.args))               # a folded graph's arguments repeat
    stateful = [a for a in args if g.shapes[a] and a in updated]
    params = [a for a in stateful if _reaches_heavy(g, a)]
    if not params:                                    # inference: weights are what feeds contractions
        params = [a for a in args if len(g.shapes[a]) >= 1 and _reaches_heavy(g, a)
                  and a not in _first_data_guess(g)]
    data = [a for a in args if g.shapes[a] and a not in stateful and a not in params]
    if batch_args is not None:
        bad = [i for i in batch_args if not 0 <= i < len(g.args)]
        if bad:
            raise RhinoError(f"--batch-args {bad[0]} is not an argument of @main (it has "
                             f"{len(g.args)}: 0..{len(g.args) - 1})")
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
    mult = g.mult or [1] * len(g.values)
    pcount = Counter()
    for a in params:
        for d in range(len(g.shapes[a])):
            if (c := dc.of.get((a, d))) is not None:
                pcount[c] += mult[a]
    data_classes = {dc.of[(a, d)] for a in data for d in range(len(g.shapes[a])) if (a, d) in dc.of}
    width = _first_contracted(g, dc, set(params))
    if width is None and pcount:
        width = max(sorted(pcount), key=lambda c: pcount[c])
    model = {c for c in pcount if c != width and c not in batch and c not in data_classes}
    return Roles(stateful, params, data, batch, width, model)


def _first_contracted(g: Graph, dc: DimClasses, params: set[int]) -> int | None:
    """The class a parameter is first contracted over (x @ w1: the input width, d_model)."""
    for n in g.nodes:
        if n.kind != "rule" or n.name not in WEIGHT_CONSUMERS or not n.rule.reduction:
            continue
        for ops in _operand_lists(n):
            for v, dims in zip(ops, n.rule.operands):
                if v in params:
                    for d, fs in enumerate(dims):
                        if len(fs) == 1 and fs[0] in n.rule.reduction and (v, d) in dc.of:
                            return dc.of[(v, d)]
    return None


def _first_data_guess(g: Graph) -> set[int]:
    """Without a training step: integer arguments and the first argument are data."""
    ints = {a for a in g.args if g.dtypes[a].startswith(("i", "ui"))}
    return ints or ({g.args[0]} if g.args else set())
