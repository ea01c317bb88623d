"""A joint pipeline plan (joint.py) made concrete: the stage of every op, and what each stage recomputes.

joint.py splits the L repeated layers of a training step into stages by count
(`layers_per_stage`, e.g. [2, 2]); here those counts become `rhino.stage` on @main's
per-micro-batch ops, which rhino-pipeline-split reads. The layers are the forward layers of
partition/remat/plan.py (the analysis rhino-remat uses, so a recomputed layer and its stage
are the same op set): the repeated ones are the layers of its largest group, in program
order; for a GPT that is the L transformer blocks, and the embedding before them and the
head and loss after them are glue.
    forward ops   the stage of their layer; glue before the first repeated layer -> stage 0,
                  after the last -> the last stage; other per-micro-batch forward ops (the
                  loss reduction) the stage of the latest layer before them (a running max)
    backward ops  (after the loss in program order) the stage of the forward layer whose
                  values they read: a running minimum, in program order, of the largest
                  stage among the forward values each op reads (a layer's input counts as
                  that layer's; glue-before values, read by every layer, count for none)
Both are monotone in program order (forward non-decreasing, backward non-increasing), so no
op reads a value of a task that runs after it (partition/stages/tasks.py): a stage's forward
reads only earlier stages' forwards, a stage's backward only later stages' backwards and any
forward. Recomputation (`remat_layers`: each stage's policy on its repeated layers, applied
by partition/remat/apply.py before the stages are written) clones a layer's forward work into
the backward behind an optimization_barrier whose operands include the layer's input, so
the clones land in the stage of the layer they recompute. The optimizer (`post` ops) follows
its gradients by tasks.py's defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import ir as I
from ...analysis import rules
from ...errors import RhinoError


def layer_stages(layers_per_stage: list[int]) -> list[int]:
    """Stage of each repeated layer: [2, 1, 3] -> [0, 0, 1, 2, 2, 2]."""
    return [s for s, n in enumerate(layers_per_stage) for _ in range(int(n))]


def repeated_layers(an) -> list:
    """The layers of the largest layer group (ties: the earliest), program order."""
    if not an.groups:
        return []
    big = max(an.groups, key=lambda g: (len(g.layers), -g.group))
    return [an.layers[i] for i in sorted(big.layers)]


@dataclass
class LayerMap:
    """Which stage the values of each repeated layer belong to, taken before rhino-remat (which
    erases forward work in the layers it recomputes, so they no longer group with the others)."""
    stages: int
    own: dict                 # value made by a repeated layer's forward op -> that layer's stage
    reads: dict               # own, with each repeated layer's input -> the reading layer's stage
    layer_stage: dict         # layer index (partition/remat/plan.py) -> stage


def layer_map(an, layers_per_stage: list[int]) -> LayerMap:
    reps = repeated_layers(an)
    per_layer = layer_stages(layers_per_stage)
    if len(reps) != len(per_layer):
        raise RhinoError(f"the pipeline plan splits {len(per_layer)} layers but @main has {len(reps)} "
                         f"repeated layers; re-plan for this program")
    own = {r: per_layer[k] for k, L in enumerate(reps) for i in L.ops for r in an.ops[i].results}
    reads = dict(own)
    for k, L in enumerate(reps):             # a layer's input is that layer's
        for v in L.inputs:
            reads[v] = per_layer[k]
    return LayerMap(len(layers_per_stage), own, reads, {L.index: per_layer[k] for k, L in enumerate(reps)})


def stage_of_ops(an, micro: list[bool], lm: LayerMap) -> dict[int, int]:
    """op index (partition/remat/plan.py's `ops` of `an`) -> stage, for the ops marked in `micro`."""
    S = lm.stages
    fwd = range(an.fwd_end + 1)
    owner = [max((lm.own[r] for r in an.ops[i].results if r in lm.own), default=None) for i in fwd]
    placed = [i for i in fwd if owner[i] is not None]
    if not placed:
        raise RhinoError("the pipeline plan's layers are not in @main's forward; re-plan for this program")
    last = placed[-1]
    reads = dict(lm.reads)
    for i in range(last + 1, an.fwd_end + 1):    # glue after the layers (head, loss): last stage
        owner[i] = S - 1
        for r in an.ops[i].results:
            reads.setdefault(r, S - 1)
    out: dict[int, int] = {}
    cur = 0
    for i in fwd:
        if owner[i] is not None:
            cur = max(cur, owner[i])
        if micro[i]:
            out[i] = cur
    cur = S - 1
    for i in range(an.fwd_end + 1, len(an.ops)):
        seen = [reads[v] for o in [an.ops[i]] + list(I.walk_ops(an.ops[i])) for v in o.operands if v in reads]
        if seen:
            cur = min(cur, max(seen))
        if micro[i]:
            out[i] = cur
    return out


def has_stages(module) -> bool:
    """@main already carries `rhino.stage` (the user's split, which the op-level path keeps)."""
    from .tasks import STAGE_ATTR
    return any(STAGE_ATTR in op.attributes for op in I.walk_ops(I.main_func(module)))


def layers_of(module, batch_args: list[int] | None = None):
    """partition/remat/plan.py's Analysis of a training step (after rhino-inline)."""
    from ..remat.plan import analyze as remat_analyze
    with module.context, I.ir.Location.unknown():
        return remat_analyze(module, "rhino compile", batch_args)


def analyze(module, batch_args: list[int] | None = None):
    """(layers_of(module), micro flag per op of its `ops`)."""
    from .microbatch import analyze as micro_analyze
    an = layers_of(module, batch_args)
    with module.context, I.ir.Location.unknown():
        rules.populate(module)
        try:
            info = micro_analyze(module, 1, batch_args)
        finally:
            rules.strip(module.operation)
    return an, [k == "micro" for k in info.kind]


def write_stages(module, lm: LayerMap, batch_args: list[int] | None = None) -> dict[int, int]:
    """`rhino.stage` on @main's per-micro-batch ops (after rhino-remat, if it runs)."""
    from .pipeline import write_stage_attrs
    an, micro = analyze(module, batch_args)
    stage_of = stage_of_ops(an, micro, lm)
    write_stage_attrs(module, stage_of)
    return stage_of


def remat_layers(lm: LayerMap, policies: list[str]) -> tuple[dict, str]:
    """({layer index: policy} for apply_remat's `layers`, what is applied in words) from one
    policy per stage: the repeated layers of stage s get policies[s]."""
    out = {i: policies[s] for i, s in lm.layer_stage.items() if policies[s] != "none"}
    note = policies[0] if len(set(policies)) == 1 else "per stage " + "/".join(policies)
    return out, note
