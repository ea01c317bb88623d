"""Activation recomputation: clone a layer's forward work into the backward, behind a barrier.

For every layer whose group's policy drops residuals (plan.py's `chain`), right before the
first backward op that reads one of them:

    %b:N = stablehlo.optimization_barrier %g, %in...   # %g: a backward value computed just
                                                       #   before (the incoming gradient)
    %r' = <clones of the layer's forward ops, reading %b#1.. instead of %in...>

and the backward reads %r' instead of the residual %r. The barrier makes the clones wait for
%g, so no scheduler hoists them into the forward (where they would be live as long as the
residual was), and their operands differ from the originals', so no CSE (XLA's, IREE's)
merges them back. Only per-example values go through the barrier: weights and constants
are read directly, and weight-only work (a broadcast of a bias, a transpose) is cloned
only when it is a cheap per-element op a fusing compiler would recompute anyway. Forward ops
left without users (a relu mask computed with the forward) are erased.

The module gets `rhino.remat`, a JSON string: the policy per group, how many ops were
cloned, the values no longer live across forward -> backward (`dropped`: "op:result" in walk
order of the input @main, as plan.json names values, with their bytes) and the forward values
the recomputation reads that the backward did not read before (`read_by_recompute`: a
selective layer's matmul outputs; they now live across instead).
"""
from __future__ import annotations

import json

from ... import ir as I
from ...errors import RhinoError
from ...ir import ir
from ...analysis.recompute import clonable
from .plan import POLICIES, Analysis, RematError, analyze, chain

_DROP = ("sdy.sharding_rule",)


def _scalar(value, t, ip):
    return I.stablehlo.ConstantOp(ir.DenseElementsAttr.get_splat(t, ir.FloatAttr.get(I.elem_of(t), value)),
                                  ip=ip).result


def _minus_zero(trigger, bdim, ip):
    """-0.0 in f32 computed from `trigger` (-|t·0| where t is finite, else -0.0): a value no
    compiler can fold to a constant, while x + (-0.0) == x for every float x. One element per
    batch row (shape (B,), the rest of `trigger` sliced off) when its batch dim `bdim` is
    known, so the anchor stays per example (rhino-accumulate can still split it), else a scalar."""
    shape = I.shape_of(trigger.type)
    keep = [d for d in range(len(shape)) if d == bdim]
    sizes = [shape[d] if d in keep else 1 for d in range(len(shape))]
    elem = I.elem_of(trigger.type)
    t = I.stablehlo.SliceOp(trigger, [0] * len(shape), sizes, [1] * len(shape),
                            results=[I.make_tensor(sizes, elem)], ip=ip).result
    out = [shape[d] for d in keep]
    t = I.stablehlo.ReshapeOp(I.make_tensor(out, elem), t, ip=ip).result
    f32 = I.make_tensor(out, ir.F32Type.get())
    if str(elem) != "f32":
        t = I.stablehlo.ConvertOp(f32, t, ip=ip).result
    z = I.stablehlo.MulOp(t, _scalar(0.0, f32, ip), ip=ip).result
    z = I.stablehlo.NegOp(I.stablehlo.AbsOp(z, ip=ip).result, ip=ip).result
    finite = I.stablehlo.IsFiniteOp(t, ip=ip).result
    return I.stablehlo.SelectOp(finite, z, _scalar(-0.0, f32, ip), ip=ip).result


def _anchored(leaf, zero, bdim, ip):
    """leaf + (-0.0) read from the backward: XLA's CPU pipeline drops optimization barriers
    before it schedules, so only a data dependence keeps the clones after the trigger."""
    elem = I.elem_of(leaf.type)
    zshape = I.shape_of(zero.type)
    if not str(elem).startswith(("f", "bf")) or \
            (zshape and (bdim is None or I.shape_of(leaf.type)[bdim] != zshape[0])):
        return leaf
    z = zero if str(elem) == "f32" else I.stablehlo.ConvertOp(I.make_tensor(zshape, elem), zero, ip=ip).result
    z = I.stablehlo.BroadcastInDimOp(leaf.type, z, [bdim] if zshape else [], ip=ip).result
    return I.stablehlo.AddOp(leaf, z, ip=ip).result


def _clone_layer(an: Analysis, c, replace: dict) -> int:
    """Emit the barrier and the clones of one layer's chain; fills `replace` (residual -> clone)."""
    ip = ir.InsertionPoint(an.ops[c.first_use])
    ins = ([c.trigger] if c.trigger is not None else []) + list(c.leaves)
    bar = I.stablehlo.OptimizationBarrierOp(ins, results=[v.type for v in ins], ip=ip)
    m = {v: r for v, r in zip(ins, bar.results)}
    if c.trigger is not None:
        zero = _minus_zero(m.pop(c.trigger), an.batch_dim.get(c.trigger), ip)
        m = {v: _anchored(r, zero, an.batch_dim.get(v), ip) for v, r in m.items()}
    for i in c.ops:
        new = an.ops[i].clone(ip=ip)
        for key in _DROP:
            if key in new.attributes:
                del new.attributes[key]
        for k, x in enumerate(list(new.operands)):
            if x in m:
                new.operands[k] = m[x]
        m.update(zip(an.ops[i].results, new.results))
    for r in c.dropped:
        replace[r] = m[r]
    return len(c.ops)


def apply_remat(module, policies: dict[int, str], default: str = "none", who: str = "rhino-remat",
                layers: dict[int, str] | None = None) -> dict:
    """Recompute the layers of each group by its policy ({group: none|selective|full}, groups
    of plan_remat(module); groups not named get `default`). `layers` ({layer index: policy})
    overrides the group's policy for single layers (a pipeline stage's layers). Rewrites
    `module` in place and returns the report that is also written to the module's
    `rhino.remat` attribute."""
    layers = layers or {}
    for g, p in list(policies.items()) + [("*", default)] + [(f"layer {i}", p) for i, p in layers.items()]:
        if p not in POLICIES:
            raise RematError(f"{who}: unknown policy '{p}' for group {g}; use one of {', '.join(POLICIES)}")
    if all(p == "none" for p in list(policies.values()) + [default] + list(layers.values())):
        return {"groups": [], "cloned_ops": 0, "barriers": 0, "dropped": [], "dropped_bytes": 0,
                "read_by_recompute": [], "erased_ops": 0}
    with module.context, ir.Location.unknown():
        an = analyze(module, who)
        known = {grp.group for grp in an.groups}
        bad = sorted(set(policies) - known)
        if bad:
            raise RematError(f"{who}: no layer group {', '.join(map(str, bad))}; the program has "
                             f"group(s) {', '.join(map(str, sorted(known))) or 'none'}")
        replace: dict = {}
        report = {"groups": [{"group": grp.group, "layers": len(grp.layers),
                              "policy": policies.get(grp.group, default)} for grp in an.groups],
                  "cloned_ops": 0, "barriers": 0, "dropped": [], "read_by_recompute": []}
        residuals = {r for L in an.layers for r in L.residuals}
        touched = []
        for L in an.layers:
            c = chain(an, L, layers.get(L.index, policies.get(L.group, default))) if L.group >= 0 else None
            if c is None or not c.dropped:
                continue
            report["cloned_ops"] += _clone_layer(an, c, replace)
            report["barriers"] += 1
            report["dropped"] += [{"value": an.ids[r], "layer": L.index, "bytes": an.nbytes(r)} for r in c.dropped]
            report["read_by_recompute"] += [{"value": an.ids.get(v, "arg"), "layer": L.index, "bytes": an.nbytes(v)}
                                            for v in c.leaves if v not in residuals and v in an.producer]
            touched.append(L)
        for i in range(an.fwd_end + 1, len(an.ops)):      # the backward reads the clones
            for o in [an.ops[i]] + list(I.walk_ops(an.ops[i])):
                for k, x in enumerate(list(o.operands)):
                    if x in replace:
                        o.operands[k] = replace[x]
        erased = 0                      # forward work left without readers (a relu mask)
        for i in range(an.fwd_end, -1, -1):
            op = an.ops[i]
            if touched and i not in an.forward and clonable(op) and not len(op.regions) \
                    and all(not list(r.uses) for r in op.results):
                op.erase()
                erased += 1
        report["erased_ops"] = erased
        report["dropped_bytes"] = sum(d["bytes"] for d in report["dropped"])
        module.operation.attributes["rhino.remat"] = I.str_attr(json.dumps(report, sort_keys=True))
        err = I.verify_error(module)
        if err:
            raise RhinoError(f"{who}: internal error: the recomputed program does not verify: {err}")
    return report
