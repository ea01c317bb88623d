"""Op semantics for sharding: one factor rule per op, read from Shardy's registry.

A rule names the factors of every operand and result dimension, e.g. a matmul
    ([i, k], [k, j])->([i, j]) {i=8, j=16, k=32} reduction={k}
and a reshape merging two dims uses a compound factor:
    ([ij, k])->([i, j, k]) {i=4, j=2, k=16}
Kinds say what sharding a factor costs:
    reduction        sharded -> partial results, completed by a reduction collective
    need_replication must not be sharded (e.g. the sort dimension)
    permutation      must not be sharded here (slice/pad/reverse/window dims)
    blocked          propagation does not flow through it (sharding it is still legal)
Rules come from `sdy-populate-op-sharding-rules`; nullary ops (constant, iota, rng,
partition_id) get generated rules; region/data-flow ops are analysis/dataflow.py's.
Anything else is replicate-only, with one warning naming the op.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from .. import ir as I

# ops whose operands/results are tied through regions or calls, not by a factor rule
DATAFLOW_OPS = frozenset({
    "stablehlo.while", "stablehlo.case", "stablehlo.if", "func.call", "func.return",
    "stablehlo.return", "stablehlo.optimization_barrier", "sdy.sharding_constraint",
    "sdy.return", "func.func",
})
# ops with no operands whose results we may shard freely on every dimension
NULLARY_OPS = frozenset({"stablehlo.constant", "stablehlo.iota", "stablehlo.rng_bit_generator",
                         "stablehlo.partition_id", "stablehlo.replica_id", "stablehlo.rng"})

_TOKEN = re.compile(r"[a-z](?:_\d+)?")


@dataclass(frozen=True)
class OpRule:
    operands: tuple[tuple[tuple[int, ...], ...], ...]   # tensor -> dim -> factors (major->minor)
    results: tuple[tuple[tuple[int, ...], ...], ...]
    sizes: tuple[int, ...]                              # factor -> size
    names: tuple[str, ...]                              # factor -> printed name
    reduction: frozenset[int] = frozenset()
    need_replication: frozenset[int] = frozenset()
    permutation: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()
    custom: bool = False

    @property
    def num_factors(self) -> int:
        return len(self.sizes)

    def shardable(self, f: int) -> bool:
        return f not in self.need_replication and f not in self.permutation

    def result_factors(self) -> set[int]:
        return {f for t in self.results for d in t for f in d}

    def to_text(self) -> str:
        def tensor(t):
            return "[" + ", ".join("".join(self.names[f] for f in d) for d in t) + "]"
        s = "(" + ", ".join(tensor(t) for t in self.operands) + ")->("
        s += ", ".join(tensor(t) for t in self.results) + ")"
        if self.sizes:
            s += " {" + ", ".join(f"{n}={z}" for n, z in zip(self.names, self.sizes)) + "}"
        for kind in ("reduction", "need_replication", "permutation", "blocked"):
            fs = getattr(self, kind)
            if fs:
                key = "blocked_propagation" if kind == "blocked" else kind
                s += f" {key}={{" + ", ".join(self.names[f] for f in sorted(fs)) + "}"
        if self.custom:
            s += " custom"
        return s


def parse_rule(text: str) -> OpRule:
    """Parse Shardy's printed rule (with or without the #sdy.op_sharding_rule<...> wrapper)."""
    t = text.strip()
    if t.startswith("#sdy.op_sharding_rule<"):
        t = t[len("#sdy.op_sharding_rule<"):-1]
    m = re.match(r"\((?P<ops>.*?)\)->\((?P<res>.*?)\)(?P<rest>.*)$", t, re.S)
    if not m:
        raise ValueError(f"cannot read sharding rule '{text}'")
    sizes: dict[str, int] = {}
    rest = m["rest"]
    sm = re.search(r"\{([^}]*)\}", rest)
    order: list[str] = []
    if sm and "=" in sm.group(1) and not re.match(r"\s*\w+\s*=\s*\{", rest):
        for item in sm.group(1).split(","):
            if item.strip():
                n, z = item.split("=")
                sizes[n.strip()] = int(z)
                order.append(n.strip())
    index = {n: i for i, n in enumerate(order)}

    def tensors(s: str):
        out = []
        for tm in re.finditer(r"\[([^\]]*)\]", s):
            dims = []
            for d in tm.group(1).split(","):
                d = d.strip()
                if d:
                    dims.append(tuple(index[x] for x in _TOKEN.findall(d)))
            out.append(tuple(dims))
        return tuple(out)

    def kind(key: str) -> frozenset[int]:
        km = re.search(key + r"=\{([^}]*)\}", rest)
        if not km:
            return frozenset()
        return frozenset(index[x.strip()] for x in km.group(1).split(",") if x.strip())

    return OpRule(tensors(m["ops"]), tensors(m["res"]), tuple(sizes[n] for n in order), tuple(order),
                  kind("reduction"), kind("need_replication"), kind("permutation"),
                  kind("blocked_propagation"), bool(re.search(r"\bcustom\b", rest)))


def factor_name(i: int) -> str:
    """The i-th generated factor's name: i, j, k, ... then z_1, z_2, ..."""
    return chr(ord("i") + i) if i < 18 else f"z_{i - 17}"


def generated_rule(result_shapes: list[list[int]]) -> OpRule:
    """Rule for a nullary op: every result dimension its own factor."""
    res, sizes = [], []
    for shape in result_shapes:
        dims = []
        for d in shape:
            dims.append((len(sizes),))
            sizes.append(d)
        res.append(tuple(dims))
    return OpRule((), tuple(res), tuple(sizes), tuple(factor_name(i) for i in range(len(sizes))))


def identity_rule(rank: int) -> OpRule:
    """Rule of a value-preserving op of one operand (a sharding constraint, a carried value):
    dimension d of the operand is dimension d of the result."""
    dims = tuple((i,) for i in range(rank))
    return OpRule((dims,), (dims,), tuple(0 for _ in range(rank)), tuple(factor_name(i) for i in range(rank)))


def populate(module) -> None:
    """Attach Shardy's `sdy.sharding_rule` to every op that has one (in place)."""
    I.run_pipeline(module, "builtin.module(func.func(sdy-populate-op-sharding-rules))", "rhino-rules")


def strip(root) -> None:
    """Remove the `sdy.sharding_rule` attributes `populate` attached (XLA rejects them).
    One walk in C++ calling back per op: 40% less than a Python recursion over regions."""
    def visit(op):
        attrs = op.attributes
        if "sdy.sharding_rule" in attrs:
            del attrs["sdy.sharding_rule"]
        return I.ir.WalkResult.ADVANCE
    getattr(root, "operation", root).walk(visit, I.ir.WalkOrder.PRE_ORDER)


_warned: set[str] = set()
_cache: dict[str, OpRule] = {}
# rule attribute -> OpRule, for the attributes of one context (MLIR uniques attributes, so
# the key is a pointer: printing it costs half of rule_of). The keys keep their context
# alive, so a hit is never a freed context's attribute; another context's empties it.
_by_attr: dict = {}
_by_attr_ctx: list = [None]


def rule_text(op) -> str:
    """The printed rule attribute of `op` ('' when it has none)."""
    return str(op.attributes["sdy.sharding_rule"]) if "sdy.sharding_rule" in op.attributes else ""


def rule_of(op) -> OpRule | None:
    """The op's rule, or None for data-flow ops and replicate-only ops (warned once).

    Call `populate(module)` first; nullary ops get a generated rule."""
    name = op.name
    if name in DATAFLOW_OPS:
        return None
    try:
        attr = op.attributes["sdy.sharding_rule"]
    except KeyError:
        attr = None
    if attr is not None:
        r = _by_attr.get(attr)
        if r is None:
            if attr.context is not _by_attr_ctx[0]:
                _by_attr.clear()
                _by_attr_ctx[0] = attr.context
            text = str(attr)
            r = _cache.get(text)
            if r is None:
                r = _cache[text] = parse_rule(text)
            _by_attr[attr] = r
        return r
    if name in NULLARY_OPS or len(op.operands) == 0:
        return generated_rule([I.shape_of(r.type) if I.is_tensor(r.type) else [] for r in op.results])
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"rhino: no sharding rule for '{name}'; it runs replicated", stacklevel=2)
    return None
