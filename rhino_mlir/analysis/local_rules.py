"""What a factor rule does not say: combiners, identities and size-bearing attributes.

The second half of op semantics (the first is rules.py), as tables keyed by op name:
  - how partial results over a sharded reduction factor combine (`combiner`);
  - which rule factors we refuse to shard (`restrict`): reductions whose combiner is
    not a single add/mul/min/max (argmax-style reduces, and/or, gather/scatter masks),
    random-number generators (a local generator would draw different numbers), grouped
    convolutions, non-splat constants;
  - which attributes carry global sizes of passed-through dimensions (`local_attrs`).
The partitioner reads these tables and never names an op itself.
"""
from __future__ import annotations

import math
from dataclasses import replace

from .. import ir as I
from .rules import OpRule

_LINEAR = {"stablehlo.dot_general": "add", "stablehlo.convolution": "add"}
_BODY_COMBINERS = {"stablehlo.add": "add", "stablehlo.multiply": "mul",
                   "stablehlo.minimum": "min", "stablehlo.maximum": "max"}
_RANDOM = frozenset({"stablehlo.rng_bit_generator", "stablehlo.rng"})
_IDENTITY = {"add": 0, "mul": 1}


def identity(kind: str, elem) -> float | int:
    """The value that does not change a `kind` reduction, for element type `elem`."""
    if kind in _IDENTITY:
        return _IDENTITY[kind]
    s = str(elem)
    if s.startswith(("f", "bf")):
        return -math.inf if kind == "max" else math.inf
    bits = int(s.lstrip("uisgn") or 32)
    unsigned = s.startswith("ui")
    lo, hi = (0, 2 ** bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return lo if kind == "max" else hi


def _reduce_body_kind(op) -> str | None:
    body = I.block_ops(op.regions[0].blocks[0])
    if len(body) != 2 or body[0].name not in _BODY_COMBINERS:
        return None
    return _BODY_COMBINERS[body[0].name]


def combiner(op) -> str | None:
    """How partial results of `op` over a sharded reduction factor combine, if they can."""
    if op.name in _LINEAR:
        return _LINEAR[op.name]
    if op.name == "stablehlo.reduce" and len(op.results) == 1:
        kind = _reduce_body_kind(op)
        if kind is None or str(I.elem_of(op.results[0].type)) == "i1":
            return None
        init = I.splat_value(op.operands[1])
        return kind if init is not None and init == identity(kind, I.elem_of(op.results[0].type)) else None
    return None


def restrict(op, rule: OpRule) -> OpRule:
    """The rule with the factors we must not shard marked need_replication."""
    extra: set[int] = set()
    if rule.reduction and combiner(op) is None:
        extra |= rule.reduction
    if op.name in _RANDOM or (op.name == "stablehlo.constant" and I.splat_value(op.results[0]) is None):
        extra |= set(range(rule.num_factors))
    if op.name == "stablehlo.convolution":
        groups = [op.attributes[k].value for k in ("feature_group_count", "batch_group_count")
                  if k in op.attributes]
        if any(g > 1 for g in groups):
            extra |= set(range(rule.num_factors)) - rule.result_factors() | {
                f for t in rule.results for d in t for f in d}
    if not extra:
        return rule
    return replace(rule, need_replication=rule.need_replication | frozenset(extra))


def _set_sizes(op, key: str, local_shape) -> None:
    old = list(I.ir.DenseI64ArrayAttr(op.attributes[key]))
    op.attributes[key] = I.i64_array([min(o, l) for o, l in zip(old, local_shape)])


def local_attrs(op, local_operand_shapes, local_result_shapes) -> None:
    """Rewrite attributes that hold global sizes of (passed-through) sharded dimensions."""
    name = op.name
    if name == "stablehlo.slice":
        _set_sizes(op, "limit_indices", local_result_shapes[0])
    elif name == "stablehlo.dynamic_slice":
        _set_sizes(op, "slice_sizes", local_result_shapes[0])
    elif name == "stablehlo.gather":
        _set_sizes(op, "slice_sizes", local_operand_shapes[0])
    elif name == "stablehlo.constant":
        op.attributes["value"] = I.splat_attr(op.attributes["value"], op.results[0].type)


def iota_dimension(op) -> int | None:
    """The dimension whose local values need a shard offset (iota counts along it)."""
    if op.name == "stablehlo.iota":
        return op.attributes["iota_dimension"].value
    return None
