"""Dataflow graph of @main for the planner: compact, pure Python, built once.

Nodes are the ops of @main and of the program regions of while/case (scalar bodies of
reduce/sort/... belong to their op). Values are numbered; each node keeps its factor
rule (restricted by local_rules), FLOPs and bytes, and a trip count (ops inside a
counted loop run that many times). Identity ties of data-flow ops are nodes of kind
"tie". `labels` gives every value a structural hash (Weisfeiler-Lehman rounds over
op names, rules and shapes) so the values of identical layers share a label: the
planner solves one layer and reuses it.

A folded graph (analysis/fold.py) holds one copy of each repeated layer: its values
stand for `mult` values of the program, and its nodes for `mult` ops whose outside
operands may differ per copy (`alt`: the other operand lists, with their counts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import ir as I
from . import cost, dataflow, rules
from .local_rules import combiner, restrict


@dataclass
class Node:
    idx: int
    name: str
    kind: str                      # rule | tie | opaque
    operands: list[int]
    results: list[int]
    rule: rules.OpRule | None = None
    comb: str | None = None
    flops: float = 0.0
    bytes: float = 0.0
    trips: int = 1
    label: int = 0
    mult: int = 1                  # ops of the program this node stands for (folded graphs)
    alt: list | None = None        # [(operands, count)]: other copies' operands, if they differ

    def bindings(self) -> list[tuple[list[int], int]]:
        """(operands, count) for each distinct operand list among the copies it stands for."""
        if not self.alt:
            return [(self.operands, self.mult)]
        return [(self.operands, self.mult - sum(c for _, c in self.alt))] + self.alt


@dataclass
class Graph:
    values: list = field(default_factory=list)        # ir.Value per id
    shapes: list[list[int]] = field(default_factory=list)
    ebytes: list[int] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    args: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    producer: list[int] = field(default_factory=list)  # node idx, -1 for block arguments
    users: list[list[int]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    func: object = None                                # the @main func op
    mult: list[int] = field(default_factory=list)      # program values per value (folded graphs)
    fold: object = None                                # analysis/fold.Fold of a folded graph
    n_full_nodes: int = 0                              # nodes of the unfolded program

    def nbytes(self, v: int) -> int:
        n = self.ebytes[v]
        for d in self.shapes[v]:
            n *= d
        return n


def _h(*parts) -> int:
    """A structural hash; only compared within one run (never ordered, never stored)."""
    return hash(parts)


def _trip_count(op) -> int:
    """Trip count of a counted while loop (JAX fori/scan: iv < constant), else 1."""
    cond = I.block_ops(op.regions[0].blocks[0])
    for c in cond:
        if c.name == "stablehlo.compare" and len(c.operands) == 2:
            n = I.splat_value(c.operands[1])
            if isinstance(n, int) and n > 0:
                return n
    return 1


class _Builder:
    def __init__(self, memo: dict | None = None):
        self.memo = memo
        self.g = Graph()
        self.ids: dict = {}
        self.ebytes: dict[str, int] = {}

    def vid(self, v) -> int:
        i = self.ids.get(v)
        if i is None:
            i = self.ids[v] = len(self.g.values)
            self.g.values.append(v)
            t = v.type
            if I.is_tensor(t):
                rt = I.ir.RankedTensorType(t)
                es = str(rt.element_type)
                eb = self.ebytes.get(es)
                if eb is None:
                    eb = self.ebytes[es] = I.elem_bytes(rt.element_type)
                self.g.shapes.append(list(rt.shape))
                self.g.ebytes.append(eb)
                self.g.dtypes.append(es)
            else:
                self.g.shapes.append([])
                self.g.ebytes.append(0)
                self.g.dtypes.append(str(t))
            self.g.producer.append(-1)
            self.g.users.append([])
            self.g.mult.append(1)
        return i

    def add(self, node: Node) -> None:
        node.idx = len(self.g.nodes)
        self.g.nodes.append(node)
        for v in node.results:
            if self.g.producer[v] < 0:
                self.g.producer[v] = node.idx
        for v in node.operands:
            self.g.users[v].append(node.idx)

    def block(self, block, trips: int) -> None:
        for op in I.block_ops(block):
            self.op(op, trips)

    def op(self, op, trips: int) -> None:
        """The nodes of one op (and of the program regions of control ops)."""
        name = op.name
        if name in dataflow.TERMINATORS:
            return
        if name in dataflow.CONTROL_OPS or name in dataflow.IDENTITY_OPS:
            for t in dataflow.ties(op):
                self.add(Node(0, name, "tie", [self.vid(t.a)], [self.vid(t.b)], trips=trips,
                              label=_h(name)))
            if name in dataflow.CONTROL_OPS:
                inner = trips * (_trip_count(op) if name in dataflow.LOOP_OPS else 1)
                for region in op.regions:
                    self.block(region.blocks[0], inner)
            return
        info = self.memo.get(op) if self.memo is not None else None
        if info is None:                           # what the op alone decides (kept across builds)
            r = rules.rule_of(op)
            vals = list(op.operands) + list(op.results)
            ok = r is not None and len(vals) == len(r.operands) + len(r.results) \
                and all(I.is_tensor(v.type) for v in vals)
            if ok:
                rule = restrict(op, r)
                info = (True, rule, combiner(op), _h(name, rules.rule_text(op) or rule.to_text(),
                                                      rule.need_replication), float(cost.op_flops(op)))
            else:
                info = (False, None, None, _h(name, tuple(str(v.type) for v in vals)), float(cost.op_flops(op)))
            if self.memo is not None:
                self.memo[op] = info
        ok, rule, comb, label, flops = info
        node = Node(0, name, "rule" if ok else "opaque", [self.vid(v) for v in op.operands],
                    [self.vid(v) for v in op.results], rule=rule, comb=comb, flops=flops, trips=trips)
        node.bytes = float(sum(self.g.nbytes(v) for v in node.operands + node.results))  # = cost.op_bytes
        node.label = _h(label, flops, node.bytes)
        self.add(node)


def build(module, memo: dict | None = None) -> Graph:
    """The graph of @main; call rules.populate(module) first. `memo` keeps what each op
    contributes (rule, costs) for another build of the same module."""
    b = _Builder(memo)
    f = I.main_func(module)
    b.g.func = f
    block = f.regions[0].blocks[0]
    b.g.args = [b.vid(a) for a in block.arguments]
    b.block(block, 1)
    b.g.outputs = [b.vid(v) for v in I.block_ops(block)[-1].operands]
    b.g.labels = structural_labels(b.g)
    b.g.n_full_nodes = len(b.g.nodes)
    return b.g


class UnionFind:
    """Union-find over hashable items; the smallest item of a set is its root."""

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


def dim_ties(g: Graph, n: Node, operands: list[int]):
    """Pairs of (value, dim) that node `n` reading `operands` carries one factor through:
    every dim of a tie; for a rule, the dims holding one shardable factor (compound,
    need_replication and permutation factors, and unit dims, tie nothing)."""
    if n.kind == "tie":
        a, b = operands[0], n.results[0]
        for d in range(len(g.shapes[a])):
            yield (a, d), (b, d)
        return
    if n.kind != "rule":
        return
    r = n.rule
    seen: dict = {}
    for vals, dims_list in ((operands, r.operands), (n.results, r.results)):
        for v, dims in zip(vals, dims_list):
            for d, fs in enumerate(dims):
                if len(fs) != 1 or not r.shardable(fs[0]) or g.shapes[v][d] == 1:
                    continue
                f = fs[0]
                if f in seen:
                    yield seen[f], (v, d)
                else:
                    seen[f] = (v, d)


def _operand_index(n: Node, v: int) -> int:
    """Where `v` enters node `n` (in its own operands, else in another copy's)."""
    try:
        return n.operands.index(v)
    except ValueError:
        return next(ops.index(v) for ops, _ in n.alt or () if v in ops)


def structural_labels(g: Graph, rounds: int = 3) -> list[str]:
    """Weisfeiler-Lehman labels: equal for the values of structurally identical layers."""
    lab = [_h(g.dtypes[v], tuple(g.shapes[v])) for v in range(len(g.values))]
    for _ in range(rounds):
        new = []
        for v in range(len(g.values)):
            p = g.producer[v]
            up = (g.nodes[p].label, g.nodes[p].results.index(v), tuple(lab[u] for u in g.nodes[p].operands)) \
                if p >= 0 else ("arg",)
            down = tuple(sorted((g.nodes[n].label, _operand_index(g.nodes[n], v)) for n in g.users[v]))
            new.append(_h(lab[v], up, down))
        lab = new
    return lab
