"""How one op runs on a mesh: its factor sharding and the reshards that implies.

Shared by rhino-spmd-partition (which emits what this decides) and the planner (which
prices it), so a plan's predicted traffic is the emitted program's traffic.

Given the shardings its results should have and the layouts its operands have, an op
takes each result factor's axes from the result targets and each reduction factor's
axes from the operands. When both want one axis, the cheaper order wins: results
first (operands are resharded) or reductions first (a partial result, completed later,
e.g. by reduce_scatter); ties go to results first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ...analysis.rules import OpRule
from ...sharding import AxisRef, Mesh, TensorSharding, axes_size
from ...sharding.factors import dedupe, legalize, project, tensor_sharding
from .reshard import Step, plan, total_bytes


@dataclass(frozen=True)
class Layout:
    """What a device holds of a value: its sharding, plus axes it is still partial over."""
    sharding: TensorSharding
    partial: tuple[AxisRef, ...] = ()
    combiner: str = "add"


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    ebytes: int


def choose(r: OpRule, comb: str | None, targets: Sequence[TensorSharding], layouts: Sequence[Layout],
           operands: Sequence[Tensor], results: Sequence[Tensor], mesh: Mesh) -> list:
    """Axes per factor of rule `r` (see the module docstring)."""
    fsh: list = [()] * r.num_factors
    for dims, t in zip(r.results, targets):
        proj, _ = project(dims, r.sizes, t, mesh)
        for f, axes in proj.items():
            fsh[f] = fsh[f] or axes
    red = sorted(r.reduction) if comb is not None else []
    for f in red:
        best = ()
        for dims, lay in zip(r.operands, layouts):
            ax = project(dims, r.sizes, lay.sharding, mesh)[0].get(f, ())
            if axes_size(ax, mesh) > axes_size(best, mesh):
                best = ax
        fsh[f] = best
    fsh = [a if r.shardable(f) else () for f, a in enumerate(fsh)]
    res = sorted(r.result_factors())
    rest = sorted(set(range(r.num_factors)) - set(res) - set(red))
    tensors = list(r.operands) + list(r.results)
    options = [legalize(tensors, r.sizes, dedupe(fsh, res + red + rest, mesh), mesh)]
    if any(fsh[f] for f in red):
        options.append(legalize(tensors, r.sizes, dedupe(fsh, red + res + rest, mesh), mesh))
    if len(options) == 1 or options[0] == options[1]:
        return options[0]
    return min(options, key=lambda o: total_bytes(
        [s for ss in steps(r, comb, o, targets, layouts, operands, results, mesh) for s in ss]))


def partial_axes(r: OpRule, fsh) -> tuple[AxisRef, ...]:
    return tuple(a for f in sorted(r.reduction) if fsh[f] for a in fsh[f])


def steps(r: OpRule, comb: str | None, fsh, targets, layouts, operands, results,
          mesh: Mesh) -> list[list[Step]]:
    """Reshard steps: one list per operand (to what the op needs), then per result
    (from what the op produces, partial included, to its target)."""
    out = []
    for dims, lay, t in zip(r.operands, layouts, operands):
        need = tensor_sharding(mesh.name, dims, fsh, mesh)
        out.append(plan(lay.sharding, need, t.shape, mesh, t.ebytes, lay.partial, lay.combiner))
    partial = partial_axes(r, fsh)
    for dims, tgt, t in zip(r.results, targets, results):
        have = tensor_sharding(mesh.name, dims, fsh, mesh)
        out.append(plan(have, tgt, t.shape, mesh, t.ebytes, partial, comb or "add"))
    return out


def parallelism(fsh, mesh: Mesh) -> int:
    """Devices sharing the op's work: the product of the distinct axes its factors use."""
    used = {a for axes in fsh for a in axes}
    return axes_size(sorted(used), mesh)
