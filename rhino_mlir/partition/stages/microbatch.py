"""Micro-batching: which values are per micro-batch, which accumulate, which run once.

Micro-batching is the batch factor sharded over a sequential axis of size M (DESIGN.md,
"Pipelined program"). Starting from the batch dimension of the data arguments
(partition/search/roles.py, or `batch_args`: their dim 0), the batch factor is followed through
the factor rules of analysis/rules.py, never through shapes, so a weight whose leading
size equals the batch is not split. Every top-level op of @main gets a kind:

    micro   depends on a per-micro-batch value: runs once per micro-batch; a result
            dimension whose major factor is the batch factor is its *view* (size / M)
    post    depends only on accumulated values (and constants): runs once per step
    const   depends on no data at all: cloned into every function that uses it, at
            the view that use needs (a broadcast of 0.0 to (B, D) next to an activation)

A micro op whose batch factor is a reduction factor (sum of squares over the batch,
x^T dy for a weight gradient) yields an *accumulated* value: its per-micro-batch partial
results combine across micro-batches with the op's combiner (analysis/local_rules.py);
whatever consumes it (loss normalisation, the optimizer) is `post`. Anything else that
mixes micro-batches (a sort, slice or gather along the batch, a batch-norm statistic fed
back into the activations, random numbers drawn per batch row) cannot be micro-batched
and is an error naming the op; with M = 1 there is nothing to split, and such programs
pipeline without accumulation (`strict` off: every data-dependent op is micro).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import ir as I
from ...analysis import cost, dataflow, graph, rules
from ...analysis.local_rules import accumulator, iota_dimension, restrict
from ...errors import RhinoError
from ..search.coarsen import dim_classes
from ..search.roles import roles


class MicroBatchError(RhinoError):
    """A program that cannot be split into micro-batches as asked."""


@dataclass
class MicroInfo:
    ops: list                                   # top-level ops of @main, terminator excluded
    kind: list[str]                             # per op: micro | post | const
    view: dict = field(default_factory=dict)    # micro value -> batch dim (None: whole)
    acc: dict = field(default_factory=dict)     # accumulated value -> combiner (add, max, ...)
    vkind: dict = field(default_factory=dict)   # value -> micro | acc | post | const
    arg_views: dict = field(default_factory=dict)  # arg index -> batch dim (data args)
    demand: dict = field(default_factory=dict)  # const value -> set of views its users need
    operand_views: dict = field(default_factory=dict)  # micro op index -> view per operand
    batch: int = 0                              # size of the batch factor
    microbatches: int = 1
    strict: bool = True

    def shrunk(self, shape, dim) -> list[int]:
        """Per-micro-batch shape of a value of global `shape` viewed at `dim`."""
        s = list(shape)
        if dim is not None:
            s[dim] //= self.microbatches
        return s


def _rule(op, operands=None, raw=None):
    r = rules.rule_of(op) if raw is None else raw
    if r is None:
        return None
    vals = (list(op.operands) if operands is None else operands) + list(op.results)
    if len(vals) != len(r.operands) + len(r.results) or not all(I.is_tensor(v.type) for v in vals):
        return None
    return restrict(op, r)


def _where(op) -> str:
    v = op.results[0] if len(op.results) else None
    return f"{I.value_name(v) if v is not None else '%?'} ({op.name})"


def batch_candidates(module, batch_args: list[int] | None) -> list[dict[int, int]]:
    """Seed sets (arg index -> batch dim) to try, most likely first.

    `batch_args`: their dim 0. Else (1) the batch class of roles.py (data arguments of a
    training step); (2) for inference, the classes that run from an argument to an output
    and whose rows never meet (no attention over them, no reduction), most bytes first."""
    if batch_args is not None:
        return [{i: 0 for i in batch_args}]
    g = graph.build(module)
    dc = dim_classes(g)
    ro = roles(g, dc, None)

    def seeds(data, batch) -> dict[int, int]:
        out = {}
        for i, a in enumerate(g.args):
            if a in data:
                d = next((d for d in range(len(g.shapes[a])) if dc.of.get((a, d)) in batch), None)
                if d is not None:
                    out[i] = d
        return out
    found = [seeds(set(ro.data), ro.batch_classes)]
    arg_cls = {dc.of[(a, d)] for a in g.args for d in range(len(g.shapes[a])) if (a, d) in dc.of}
    out_cls = {dc.of[(v, d)] for v in g.outputs for d in range(len(g.shapes[v])) if (v, d) in dc.of}
    for c in sorted(arg_cls & out_cls, key=lambda c: -dc.nbytes[c]):
        if _independent(g, dc, c):
            found.append(seeds(set(g.args), {c}))
    uniq = []
    for x in found:
        if x and x not in uniq:
            uniq.append(x)
    return uniq


def _independent(g, dc, c: int) -> bool:
    """Whether rows along class `c` never meet: no value holds two of its dims (attention
    over the sequence) and no op reduces over it (a contraction, a sum)."""
    for v in range(len(g.values)):
        if sum(1 for d in range(len(g.shapes[v])) if dc.of.get((v, d)) == c) > 1:
            return False
    for n in g.nodes:
        if n.kind != "rule" or not n.rule.reduction:
            continue
        for v, dims in zip(n.operands, n.rule.operands):
            for d, fs in enumerate(dims):
                if any(f in n.rule.reduction for f in fs) and dc.of.get((v, d)) == c:
                    return False
    return True


class _Analysis:
    def __init__(self, f, seeds: dict[int, int], m: int, strict: bool):
        self.f, self.m, self.strict = f, m, strict
        block = f.regions[0].blocks[0]
        self.ops = [op for op in I.block_ops(block) if op.name not in dataflow.TERMINATORS]
        self.info = MicroInfo(self.ops, [], microbatches=m, strict=strict)
        self.args = list(block.arguments)
        sizes = set()
        for i, d in seeds.items():
            a = self.args[i]
            self.info.view[a] = d
            self.info.vkind[a] = "micro"
            self.info.arg_views[i] = d
            sizes.add(I.shape_of(a.type)[d])
        for a in self.args:
            self.info.vkind.setdefault(a, "const")
        if len(sizes) > 1:
            raise MicroBatchError(f"batch arguments disagree on the batch size ({sorted(sizes)}); "
                                  f"name them with --batch-args")
        self.info.batch = sizes.pop() if sizes else 0

    def fail(self, op, why: str):
        raise MicroBatchError(f"{_where(op)} {why}; it cannot run per micro-batch "
                              f"(use --microbatches 1)")

    def run(self) -> MicroInfo:
        info = self.info
        vkind = info.vkind
        for op in self.ops:
            operands = list(op.operands)        # each access makes new objects: list them once
            kinds = {vkind.get(v, "const") for v in operands}
            if "micro" in kinds:
                if self.strict and ("acc" in kinds or "post" in kinds):
                    self.fail(op, "mixes a value reduced over the whole batch (e.g. a batch-norm "
                              "statistic) back into per-micro-batch values")
                self.micro(op, len(info.kind), operands)
                info.kind.append("micro")
            elif "acc" in kinds or "post" in kinds:
                info.kind.append("post")
                for v in op.results:
                    info.vkind[v] = "post"
            else:
                info.kind.append("const")
                for v in op.results:
                    info.vkind[v] = "const"
        return info

    # ------------------------------------------------------------------ micro ops
    def micro(self, op, index: int, operands: list) -> None:
        info = self.info
        info.operand_views[index] = [info.view.get(v) for v in operands]
        for v in op.results:
            info.vkind[v] = "micro"
        if not self.strict:
            for v in op.results:
                info.view[v] = None
            return
        if op.name in dataflow.IDENTITY_OPS:
            for a, r in zip(operands, op.results):
                info.view[r] = info.view.get(a) if info.vkind.get(a) == "micro" else None
            return
        raw = rules.rule_of(op)
        r = _rule(op, operands, raw)
        if r is None:
            self.fail(op, "has no factor rule (or holds regions) and reads a per-micro-batch value")
        vals = operands
        dims_of = list(r.operands)
        factors = set()
        for v, dims in zip(vals, dims_of):
            if info.view.get(v) is not None:
                factors.add(dims[info.view[v]][0])
        if not factors:                 # per micro-batch, but no batch dimension left
            for v in op.results:
                info.view[v] = None
            return
        if len(factors) != 1:
            self.fail(op, "combines two different batch dimensions (an interaction across batch rows)")
        f = factors.pop()
        comb = accumulator(op) if f in raw.reduction else None
        if not r.shardable(f) and comb is None:
            self.fail(op, f"must not split factor {r.names[f]} (the batch): it needs the whole batch")
        for oi, (v, dims) in enumerate(zip(vals, dims_of)):
            where = [d for d, fs in enumerate(dims) if f in fs]
            if not where:
                continue
            d = where[0]
            if dims[d][0] != f or len(where) > 1:
                self.fail(op, f"holds the batch factor {r.names[f]} inside a merged dimension of "
                          f"{I.value_name(v)} where it is not the major part")
            info.operand_views[index][oi] = d
            if info.view.get(v) is not None:
                if info.view[v] != d:
                    self.fail(op, f"reads the batch of {I.value_name(v)} on dim {d}, not on its batch dim")
            elif info.vkind.get(v) == "micro":
                self.fail(op, f"needs {I.value_name(v)} split along the batch, but it is whole")
            else:
                self.want(v, d, op)
        res_dims = [next((d for d, fs in enumerate(dims) if f in fs), None) for dims in r.results]
        if all(d is None for d in res_dims):
            if f in raw.reduction:
                if comb is None:
                    self.fail(op, "reduces over the batch with a combiner that is not add/mul/min/max")
                for v in op.results:
                    info.vkind[v] = "acc"
                    info.acc[v] = comb
                return
            self.fail(op, f"drops the batch factor {r.names[f]} without reducing it")
        for v, d, dims in zip(op.results, res_dims, r.results):
            if d is None or dims[d][0] != f:
                self.fail(op, f"result {I.value_name(v)} keeps the batch only partly")
            info.view[v] = d
        idim = iota_dimension(op)
        if idim is not None and idim in res_dims:
            self.fail(op, "counts along the batch dimension (iota)")

    def want(self, v, d: int, user) -> None:
        """A const value (or argument) is needed at view `d` by a micro op: check its producer."""
        info = self.info
        seen = info.demand.setdefault(v, set())
        if d in seen:
            return
        seen.add(d)
        if I.shape_of(v.type)[d] % self.m:
            self.fail(user, f"needs {I.value_name(v)} split along dim {d} of size "
                      f"{I.shape_of(v.type)[d]}, which does not divide into {self.m} micro-batches")
        owner = v.owner
        if not isinstance(owner, I.ir.Operation) and hasattr(owner, "operation"):
            owner = owner.operation
        if not isinstance(owner, I.ir.Operation) or owner.name == "func.func":
            return                                         # an argument: the runtime slices it
        r = _rule(owner)
        if r is None:
            self.fail(owner, "has no factor rule but its result is needed per micro-batch")
        k = list(owner.results).index(v)
        fs = r.results[k][d]
        f = fs[0]
        if not r.shardable(f) or f in r.reduction:
            self.fail(owner, f"cannot produce its result {I.value_name(v)} split along dim {d} "
                      f"(random numbers, a non-splat constant, or a slice over the batch)")
        if iota_dimension(owner) == d:
            self.fail(owner, "counts along the batch dimension (iota)")
        for ov, dims in zip(owner.operands, r.operands):
            where = [e for e, g in enumerate(dims) if f in g]
            if where:
                if dims[where[0]][0] != f:
                    self.fail(owner, "holds the batch inside a merged dimension where it is not major")
                self.want(ov, where[0], owner)


def analyze(module, microbatches: int, batch_args: list[int] | None = None) -> MicroInfo:
    """Kinds, views and accumulations of @main's ops for `microbatches` micro-batches.

    Call rules.populate(module) first. With one micro-batch an unsplittable program
    still pipelines (everything data-dependent runs per micro-batch, nothing accumulates).
    """
    if microbatches < 1:
        raise MicroBatchError(f"micro-batch count must be at least 1, got {microbatches}")
    f = I.main_func(module)
    cands = batch_candidates(module, batch_args)
    if microbatches > 1 and not cands:
        raise MicroBatchError("found no batch argument to split into micro-batches; "
                              "name it with --batch-args")
    best, first_error = None, None
    for seeds in cands or [{}]:
        try:
            info = _Analysis(f, seeds, 1, True).run()
        except MicroBatchError as e:
            first_error = first_error or e
            continue
        if len(cands) <= 1:                  # nothing to choose between: no scoring walk
            best = (seeds, None, info)
            break
        # the batch is what carries the work: most FLOPs in ops that keep it (a class that
        # a contraction reduces early, like a hidden dim, loses), then all per-micro-batch FLOPs
        kept = sum(cost.op_flops(op) for op, k in zip(info.ops, info.kind)
                   if k == "micro" and any(info.view.get(r) is not None for r in op.results))
        score = (kept, sum(cost.op_flops(op) for op, k in zip(info.ops, info.kind) if k == "micro"),
                 info.kind.count("micro"))
        if best is None or score > best[1]:
            best = (seeds, score, info)
    if best is None:
        if microbatches > 1:
            raise first_error
        return _Analysis(f, cands[0] if cands else {}, 1, False).run()
    seeds = best[0]
    args = f.regions[0].blocks[0].arguments
    for i, d in seeds.items():
        b = I.shape_of(args[i].type)[d]
        if b % microbatches:
            divs = [k for k in range(1, b + 1) if b % k == 0]
            raise MicroBatchError(f"batch size {b} does not divide into {microbatches} micro-batches; "
                                  f"choose one of {', '.join(map(str, divs))} (rhino does not pad "
                                  f"batches)")
    if microbatches == 1:                    # the winning walk already was this one
        return best[2]
    return _Analysis(f, seeds, microbatches, True).run()


def const_operand_views(op, k: int, d: int | None) -> list:
    """Views of a const op's operands that produce its result `k` at view `d`."""
    if d is None:
        return [None] * len(op.operands)
    r = _rule(op)
    f = r.results[k][d][0]
    return [next((e for e, g in enumerate(dims) if f in g), None) for dims in r.operands]
