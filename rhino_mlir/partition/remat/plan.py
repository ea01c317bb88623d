"""Forward, backward, layers and residuals of a training step: what recomputation can drop.

A training step (forward + backward + update in one @main) is read as:
    loss      the non-carried scalar float result with the fewest ancestors (a gradient
              norm or a metric computed from gradients has more)
    forward   the ancestors of the loss (top-level ops of @main), plus the ops placed before
              the loss that read forward values but do not feed it (the masks and other
              residual work that reverse-mode differentiation emits with the forward pass)
    backward  every op after the loss in program order (the gradients and the update)
    residual  a per-example forward value (partition/stages/microbatch.py's `micro`) that a
              backward op reads: it stays live from the forward into the backward
Layers: the forward's per-example ops are cut at *cut values* (a value produced at a point
where no earlier per-example value is read any more: the residual stream between
transformer blocks, the activation between MLP layers); the pieces between cuts get a
signature (their op names), and a run of repeating signatures (a period found from the start
of the run) makes one layer per repetition; pieces that do not repeat form one layer per run.
Layers with the same ops and result types form a group, which the planner gives one policy:
    none       every residual is kept
    selective  the layer's input and its weight contractions' outputs are kept; the rest
               (element-wise work, norms, softmax, attention scores) is recomputed from them
    full       only the layer's input is kept; everything else is recomputed from it
Cut values that start a layer are always kept, so each layer recomputes from its own input.
The layer holding the loss is never recomputed (its backward starts right after it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import ir as I
from ...analysis import cost, dataflow, rules
from ...analysis.fusion import FUSIBLE_PRODUCERS
from ...analysis.recompute import clonable, kept_by_selective
from ...errors import RhinoError
from ..stages.microbatch import analyze as microbatch_analyze

POLICIES = ("none", "selective", "full")


class RematError(RhinoError):
    """A program recomputation cannot work on."""


@dataclass
class Layer:
    index: int
    ops: list[int]                       # top-level op indices, program order (forward ops)
    inputs: list                         # the cut value it starts from ([] for the first)
    residuals: list                      # values it produces that the backward reads
    key: int = 0                         # op names and result types
    group: int = -1                      # -1: not recomputable (holds the loss)


@dataclass
class RematGroup:
    group: int
    layers: list[int]                    # layer indices
    bytes: dict[str, int]                # policy -> activation bytes kept across fwd->bwd (all its layers)
    flops: dict[str, float]              # policy -> FLOPs recomputed (all its layers)


@dataclass
class Chain:
    """What one layer recomputes under a policy."""
    ops: list[int]                       # forward ops to clone, program order
    leaves: list                         # per-example values they start from (through the barrier)
    dropped: list                        # residuals no longer live across forward -> backward
    first_use: int = -1                  # backward op before which the clones go
    trigger: object = None               # backward value the barrier waits for


@dataclass
class Analysis:
    func: object
    ops: list
    producer: dict                       # value -> op index (top-level results)
    users: dict                          # value -> sorted op indices reading it (nested uses too)
    per_example: set
    loss: object
    fwd_end: int                         # index of the last op of the loss
    forward: set[int]
    layers: list[Layer] = field(default_factory=list)
    groups: list[RematGroup] = field(default_factory=list)
    ids: dict = field(default_factory=dict)      # value -> "op:result" (walk order, as in plan.json)
    batch_dim: dict = field(default_factory=dict)  # per-example value -> its batch dim (if found)
    const_dim: dict = field(default_factory=dict)  # constant needed per micro-batch -> that dim
    acc: dict = field(default_factory=dict)      # value reduced over the batch (a gradient) -> combiner
    batch: int = 0                               # size of the batch factor (0: not splittable)
    chains: dict = field(default_factory=dict)   # (layer, policy) -> Chain, computed once

    def nbytes(self, v) -> int:
        return I.nbytes(v.type) if I.is_tensor(v.type) else 0


def _carried(f) -> set[int]:
    if "arg_attrs" not in f.attributes:
        return set()
    arr = I.ir.ArrayAttr(f.attributes["arg_attrs"])
    out = set()
    for i in range(len(arr)):
        d = I.ir.DictAttr(arr[i])
        if "tf.aliasing_output" in d:
            out.add(I.ir.IntegerAttr(d["tf.aliasing_output"]).value)
    return out


def _nested(op) -> list:
    """`op` and the ops in its regions (no generator for the common op without regions)."""
    return [op, *I.walk_ops(op)] if len(op.regions) else [op]


def _ancestors(ops, producer, roots) -> set[int]:
    seen: set[int] = set()
    todo = [producer[v] for v in roots if v in producer]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for o in _nested(ops[i]):
            todo.extend(producer[v] for v in o.operands if v in producer)
    return seen


def analyze(module, who: str = "rhino-remat", batch_args: list[int] | None = None,
            rules_ready: bool = False) -> Analysis:
    """Forward/backward split, layers, residuals and groups of @main (a training step).
    `batch_args`: arguments whose dim 0 is the batch (the planner knows them; without them
    microbatch.analyze searches for the batch itself, which costs seconds on big programs).
    `rules_ready`: the caller populated the rules and keeps them (the planner reads them
    afterwards): no populate/strip pair here (a pass over the module each, linear in depth)."""
    f = I.main_func(module)
    walked = list(I.walk_ops(f))             # every op, walk order (the plan's value names)
    for op in walked:
        if op.name in dataflow.CALL_OPS:
            raise RematError(f"{who}: @main calls a function; run rhino-inline first")
    if rules_ready:
        info = microbatch_analyze(module, 1, batch_args)
    else:
        rules.populate(module)
        try:
            info = microbatch_analyze(module, 1, batch_args)
        finally:
            rules.strip(module.operation)
    block = f.regions[0].blocks[0]
    ops = info.ops                           # the block's ops less its terminator (a walk of the block saved)
    producer = {v: i for i, op in enumerate(ops) for v in op.results}
    users: dict = {}
    for i, op in enumerate(ops):
        for o in _nested(op) if len(op.regions) else (op,):
            for v in o.operands:
                lst = users.get(v)
                if lst is None:
                    users[v] = [i]
                elif lst[-1] != i:
                    lst.append(i)
    per_example = {v for v, k in info.vkind.items() if k == "micro"}
    ret = block.operations[len(block.operations) - 1]
    carried = _carried(f)
    cands = []
    for j, v in enumerate(ret.operands):
        t = v.type
        if j in carried or v not in producer or not I.is_tensor(t) or I.shape_of(t) \
                or not str(I.elem_of(t)).startswith(("f", "bf")) or info.vkind.get(v) == "const":
            continue
        cands.append((len(_ancestors(ops, producer, [v])), j, v))
    if not cands:
        raise RematError(f"{who}: @main has no backward pass: it returns no scalar loss computed "
                         f"from the batch; recomputation needs a training step")
    loss = min(cands, key=lambda c: (c[0], c[1]))[2]
    forward = _ancestors(ops, producer, [loss])
    fwd_end = max(forward)
    an = Analysis(f, ops, producer, users, per_example, loss, fwd_end, forward)
    an.batch_dim = {v: d for v, d in info.view.items() if d is not None} if info.strict else {}
    an.acc, an.batch = dict(info.acc), info.batch if info.strict else 0   # 0: cannot be split
    an.const_dim = {v: next(iter(ds)) for v, ds in info.demand.items()   # constants built at the
                    if len(ds) == 1 and v not in an.batch_dim and info.strict}  # batch's shape (a mask)
    an.ids = {r: f"{k}:{j}" for k, op in enumerate(walked) for j, r in enumerate(op.results)}
    _layers(an)
    if not any(L.residuals for L in an.layers):
        raise RematError(f"{who}: @main has no backward pass: no forward value of the loss "
                         f"({I.value_name(loss)}) is read after it; nothing to recompute")
    _groups(an)
    return an


# ----------------------------------------------------------------------------- layers

def cut_pieces(an: Analysis) -> list[list[int]]:
    """Per-example forward ops, cut after every op whose result is a cut value."""
    fwd = [i for i in sorted(an.forward) if any(r in an.per_example for r in an.ops[i].results)]
    fset = set(fwd)
    pieces, cur, reach = [], [], -1          # reach: last forward read of anything made so far
    for i in fwd:
        res = [r for r in an.ops[i].results if r in an.per_example]
        cut = reach <= i and len(res) == 1
        cur.append(i)
        for r in res:
            reach = max(reach, max((u for u in an.users.get(r, []) if u in fset), default=i))
        if cut:
            pieces.append(cur)
            cur = []
    if cur:
        pieces.append(cur)
    return pieces


def _runs(sigs: list) -> list[list[int]]:
    """Piece indices grouped into layers: each repetition of a period is a layer, and a run
    of pieces that repeat nothing is one layer."""
    out, misc, i, n = [], [], 0, len(sigs)
    while i < n:
        p = next((p for p in range(1, (n - i) // 2 + 1) if sigs[i:i + p] == sigs[i + p:i + 2 * p]), 0)
        if not p:
            misc.append(i)
            i += 1
            continue
        if misc:
            out.append(misc)
            misc = []
        pattern = sigs[i:i + p]
        while i + p <= n and sigs[i:i + p] == pattern:
            out.append(list(range(i, i + p)))
            i += p
    if misc:
        out.append(misc)
    return out


def _layers(an: Analysis) -> None:
    pieces = cut_pieces(an)
    sigs = [tuple(an.ops[i].name for i in piece) for piece in pieces]
    for run in _runs(sigs):
        ops = [i for p in run for i in pieces[p]]
        prev = an.layers[-1] if an.layers else None
        inputs = [next(r for r in an.ops[prev.ops[-1]].results if r in an.per_example)] if prev else []
        an.layers.append(Layer(len(an.layers), ops, inputs, []))
    # residual work emitted with the forward (a relu mask): the layer of its latest operand
    value_layer = {r: L.index for L in an.layers for i in L.ops for r in an.ops[i].results}
    for i in range(an.fwd_end):
        op = an.ops[i]
        if i in an.forward or not any(r in an.per_example for r in op.results):
            continue
        ls = [value_layer[v] for o in _nested(op) for v in o.operands if v in value_layer]
        if ls:
            an.layers[max(ls)].ops.append(i)
            value_layer.update((r, max(ls)) for r in op.results)
    for L in an.layers:
        L.ops.sort()
        L.residuals = [r for i in L.ops for r in an.ops[i].results
                       if r in an.per_example and any(u > an.fwd_end for u in an.users.get(r, []))]
        L.key = hash(tuple((an.ops[i].name, tuple(str(r.type) for r in an.ops[i].results)) for i in L.ops))


def chain(an: Analysis, L: Layer, policy: str) -> Chain:
    """The ops layer L recomputes under `policy`, where they go and what they start from."""
    if policy not in POLICIES:
        raise RematError(f"unknown recomputation policy '{policy}'; use one of {', '.join(POLICIES)}")
    if policy == "none" or L.group < 0:
        return Chain([], [], [])
    hit = an.chains.get((L.index, policy))
    if hit is None:
        hit = an.chains[(L.index, policy)] = _chain(an, L, policy)
    return hit


def _chain(an: Analysis, L: Layer, policy: str) -> Chain:
    in_layer = set(L.ops)
    keep = {v for M in an.layers for v in M.inputs}
    for i in L.ops:
        op = an.ops[i]
        if not clonable(op) or (policy == "selective" and kept_by_selective(op, an.per_example.__contains__)):
            keep.update(op.results)
    dropped = [r for r in L.residuals if r not in keep]
    ops, leaves, seen, todo = set(), {}, set(), list(dropped)
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        p = an.producer.get(v)
        if v in keep or p is None or (p not in in_layer and v in an.per_example):
            if v in an.per_example:
                leaves[v] = p if p is not None else -1
            continue
        op = an.ops[p]
        if p not in in_layer and not (op.name in FUSIBLE_PRODUCERS and clonable(op)):
            continue                    # computed from weights once, read as it is
        ops.add(p)
        todo.extend(op.operands)
    out = Chain(sorted(ops), sorted(leaves, key=lambda v: leaves[v]), dropped)
    if dropped:
        out.first_use = min(u for r in dropped for u in an.users[r] if u > an.fwd_end)
        use = an.ops[out.first_use]
        out.trigger = next((v for v in use.operands if an.producer.get(v, -1) > an.fwd_end
                            and v in an.per_example), None)
        for j in range(out.first_use - 1, an.fwd_end, -1):
            if out.trigger is not None:
                break
            out.trigger = next((r for r in an.ops[j].results if r in an.per_example), None)
    return out


def kept_values(an: Analysis, L: Layer, c: Chain, residuals: set) -> list:
    """The values layer L keeps across forward -> backward under chain `c`: its residuals not
    dropped and the leaves its recomputation starts from (its own, or its input)."""
    live = (set(L.residuals) - set(c.dropped)) | set(c.leaves)
    mine = set(L.ops)
    return [v for v in live
            if (v in an.producer and an.producer[v] in mine) or (v in L.inputs and v not in residuals)]


def _cost(an: Analysis, L: Layer, policy: str, residuals: set) -> tuple[int, float]:
    """(activation bytes kept across forward -> backward, FLOPs recomputed) of one layer."""
    c = chain(an, L, policy)
    kept = sum(an.nbytes(v) for v in kept_values(an, L, c, residuals))
    return kept, float(sum(cost.op_flops(an.ops[i]) for i in c.ops))


def _groups(an: Analysis) -> None:
    by_key: dict[int, list[int]] = {}
    for L in an.layers[:-1]:                   # the last holds the loss
        by_key.setdefault(L.key, []).append(L.index)
    residuals = {r for L in an.layers for r in L.residuals}
    for g, idxs in enumerate(by_key.values()):
        for li in idxs:
            an.layers[li].group = g
        costs = {p: [_cost(an, an.layers[li], p, residuals) for li in idxs] for p in POLICIES}
        an.groups.append(RematGroup(g, idxs, {p: sum(c[0] for c in cs) for p, cs in costs.items()},
                                    {p: sum(c[1] for c in cs) for p, cs in costs.items()}))


def plan_remat(module, batch_args: list[int] | None = None) -> list[RematGroup]:
    """Groups of identical layers of @main (a training step), with the bytes each policy keeps
    across forward -> backward and the FLOPs it recomputes; apply_remat takes {group: policy}."""
    with module.context:
        return analyze(module, batch_args=batch_args).groups
