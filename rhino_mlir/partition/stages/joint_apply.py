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


def stage_of_ops(an, micro: list[bool], layers_per_stage: list[int]) -> dict[int, int]:
    """op index (partition/remat/plan.py's `ops`) -> stage, for the ops marked in `micro`."""
    reps = repeated_layers(an)
    per_layer = layer_stages(layers_per_stage)
    S = len(layers_per_stage)
    if len(reps) != len(per_layer):
        raise RhinoError(f"the pipeline plan splits {len(per_layer)} layers but @main has {len(reps)} "
                         f"repeated layers; re-plan for this program")
    first = min(reps[0].ops)
    last = max(reps[-1].ops)
    owner: dict = {}                         # forward op index -> stage (None: glue before)
    for k, L in enumerate(reps):
        for i in L.ops:
            owner[i] = per_layer[k]
    for L in an.layers:
        if L in reps:
            continue
        for i in L.ops:
            owner[i] = None if i < first else S - 1 if i > last else owner.get(i)
    value_stage: dict = {}                   # forward value -> stage of the layer it belongs to
    for i, s in owner.items():
        if s is not None:
            for r in an.ops[i].results:
                value_stage[r] = s
    for k, L in enumerate(reps):             # a layer's input is that layer's
        for v in L.inputs:
            value_stage[v] = per_layer[k]
    out: dict[int, int] = {}
    cur = 0
    for i in range(an.fwd_end + 1):
        s = owner.get(i)
        if s is None and i > last:
            s = S - 1
        if s is not None:
            cur = max(cur, s)
        if micro[i]:
            out[i] = cur
    cur = S - 1
    for i in range(an.fwd_end + 1, len(an.ops)):
        reads = [value_stage[v] for o in [an.ops[i]] + list(I.walk_ops(an.ops[i]))
                 for v in o.operands if v in value_stage]
        if reads:
            cur = min(cur, max(reads))
        if micro[i]:
            out[i] = cur
    return out


def analyze(module, batch_args: list[int] | None = None):
    """(partition/remat/plan.py's Analysis, micro flag per op) of a training step after rhino-inline."""
    from ..remat.plan import analyze as remat_analyze
    from .microbatch import analyze as micro_analyze
    with module.context, I.ir.Location.unknown():
        an = remat_analyze(module, "rhino compile", batch_args)
        rules.populate(module)
        try:
            info = micro_analyze(module, 1, batch_args)
        finally:
            rules.strip(module.operation)
    return an, [k == "micro" for k in info.kind]


def write_stages(module, layers_per_stage: list[int], batch_args: list[int] | None = None) -> dict[int, int]:
    """`rhino.stage` on @main's per-micro-batch ops from a joint plan's layers per stage."""
    from .pipeline import write_stage_attrs
    an, micro = analyze(module, batch_args)
    stage_of = stage_of_ops(an, micro, layers_per_stage)
    write_stage_attrs(module, stage_of)
    return stage_of


def remat_layers(module, policies: list[str], layers_per_stage: list[int],
                 batch_args: list[int] | None = None) -> tuple[dict, str]:
    """({layer index: policy} for apply_remat's `layers`, what is applied in words) from one
    policy per stage: the repeated layers of stage s get policies[s]."""
    from ..remat.plan import analyze as remat_analyze
    if all(p == "none" for p in policies):
        return {}, "none"
    with module.context, I.ir.Location.unknown():
        an = remat_analyze(module, "rhino compile", batch_args)
    reps = repeated_layers(an)
    per_layer = layer_stages(layers_per_stage)
    if len(reps) != len(per_layer):
        raise RhinoError(f"the pipeline plan splits {len(per_layer)} layers but @main has {len(reps)} "
                         f"repeated layers; re-plan for this program")
    out = {L.index: policies[s] for L, s in zip(reps, per_layer) if policies[s] != "none" and L.group >= 0}
    note = policies[0] if len(set(policies)) == 1 else "per stage " + "/".join(policies)
    return out, note
