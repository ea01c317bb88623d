"""What a factor rule does not say: combiners, identities and size-bearing attributes.

The second half of op semantics (the first is rules.py), as tables keyed by op name:
  - how partial results over a sharded reduction factor combine (`combiner`);
  - which rule factors we refuse to shard (`restrict`): reductions whose combiner is
    not a single add/mul/min/max (argmax-style reduces, and/or, gather/scatter masks),
    random-number generators (a local generator would draw different numbers), grouped
    convolutions, window dimensions that do not run exactly on local shards
    (windows.py), non-splat constants, pad dimensions that move elements (even when
    the size stays), reshape factors on one side only;
  - which attributes carry global sizes of passed-through dimensions (`local_attrs`).
The partitioner reads these tables and never names an op itself.
"""
from __future__ import annotations

import math
from dataclasses import replace

from .. import ir as I
from . import windows
from .indexing import indexing, shardable_factors
from .rules import OpRule

_LINEAR = {"stablehlo.dot_general": "add", "stablehlo.convolution": "add"}
# ops that consume weights: what makes a stateful argument a parameter (partition/search/roles.py)
WEIGHT_CONSUMERS = frozenset(_LINEAR) | {"stablehlo.gather"}
_BODY_COMBINERS = {"stablehlo.add": "add", "stablehlo.multiply": "mul",
                   "stablehlo.minimum": "min", "stablehlo.maximum": "max"}
# on i1 (the only type the partitioner reduces with them) or = max and and = min
_I1_BODY_COMBINERS = {"stablehlo.or": "max", "stablehlo.and": "min"}
_RANDOM = frozenset({"stablehlo.rng_bit_generator", "stablehlo.rng"})
# ops that write updates into an operand at run-time indices: operand dims the update
# does not span are indexed (a local write would need shifted, masked indices)
_UPDATES = {"stablehlo.scatter": lambda op: len(op.results), "stablehlo.dynamic_update_slice": lambda op: 1}
_IDENTITY = {"add": 0, "mul": 1}
_WINDOWED = frozenset({"stablehlo.reduce_window", "stablehlo.select_and_scatter"})
# ops whose local form must keep the operand's element count: a factor on one side only
# (Shardy's rule for [2,7] -> [7,2] shares none) has no local counterpart to shard
_SAME_ELEMENTS = frozenset({"stablehlo.reshape"})


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


def collective_kind(op) -> str | None:
    """add|mul|min|max of a collective's single-op reduction body (all_reduce,
    reduce_scatter; i1 or/and as max/min), None for any other body."""
    body = I.block_ops(op.regions[0].blocks[0])
    if len(body) != 2:
        return None
    if body[0].name in _I1_BODY_COMBINERS:           # bitwise on wider integers: no such reduce
        i1 = str(I.elem_of(op.results[0].type)) == "i1"
        return _I1_BODY_COMBINERS[body[0].name] if i1 else None
    return _BODY_COMBINERS.get(body[0].name)


def combiner(op) -> str | None:
    """How partial results of `op` over a sharded reduction factor combine, if they can."""
    if op.name in _LINEAR:
        return _LINEAR[op.name]
    ix = indexing(op)
    if ix is not None and ix.gather and str(I.elem_of(op.results[0].type)) != "i1":
        return "add"                                   # masked shard lookups summed
    if op.name == "stablehlo.reduce" and len(op.results) == 1:
        kind = _reduce_body_kind(op)
        if kind is None or str(I.elem_of(op.results[0].type)) == "i1":
            return None
        init = I.splat_value(op.operands[1])
        return kind if init is not None and init == identity(kind, I.elem_of(op.results[0].type)) else None
    return _scatter_partial(op)


# combiners a scatter may leave partial over its update batch factors: only add, whose
# identity 0 is also an in-bounds index, what padding of uneven shards writes into the
# indices (spmd_partition `mask`)
_PARTIAL_SCATTER = frozenset({"add"})


def _scatter_partial(op) -> str | None:
    """add for a scatter-add (the gradient of an embedding lookup). Sharding its update
    batch factors (Shardy's reduction factors of a scatter) over axes P, device p scatters
    its own updates into its copy of the operand: operand + sum of its updates, so the
    results summed over P are the global result when one device per group of P holds the
    operand and the others the identity (`counted_once`; nothing to do for a splat 0)."""
    kind = update_combiner(op)
    return kind if kind in _PARTIAL_SCATTER else None


def counted_once(op) -> list[int]:
    """Operands of `op` that its partial results (over a sharded reduction factor) each
    include whole: one device per group must hold them, the others the identity. A scatter's
    operand, unless it already is the identity (a splat constant or its broadcast)."""
    kind = _scatter_partial(op)
    if kind is None or _splat_operand(op.operands[0]) == identity(kind, I.elem_of(op.results[0].type)):
        return []
    return [0]


def _splat_operand(v):
    """The scalar `v` is a splat of: a splat constant or a broadcast_in_dim of one, or a
    while body's argument that the body yields unchanged from such an init (a zero table
    hoisted out of a micro-batch loop: seen through, no per-trip select)."""
    base = v.owner
    base = base.operation if hasattr(base, "operation") else base
    if isinstance(base, I.ir.Block):
        loop = base.owner
        loop = loop.operation if hasattr(loop, "operation") else loop
        if loop is None or loop.name != "stablehlo.while" or base != loop.regions[1].blocks[0]:
            return None
        i = v.arg_number
        if I.block_ops(base)[-1].operands[i] != v:
            return None
        return _splat_operand(loop.operands[i])
    if getattr(base, "name", "") == "stablehlo.broadcast_in_dim":
        return I.splat_value(base.operands[0])
    return I.splat_value(v)


def accumulator(op) -> str | None:
    """How an op's results combine when its reduction-factor inputs are split into parts
    that each run the whole op (micro-batches, partition/stages/microbatch.py): the `combiner`,
    or for a scatter whose body is add/mul/min/max into a splat of that identity (the
    gradient of an embedding lookup), that kind: every part starts from the identity."""
    if op.name != "stablehlo.scatter" or len(op.results) != 1:
        return combiner(op)
    kind = _reduce_body_kind(op)
    if kind is None or str(I.elem_of(op.results[0].type)) == "i1":
        return None
    init = _splat_operand(op.operands[0])
    return kind if init is not None and init == identity(kind, I.elem_of(op.results[0].type)) else None


def update_combiner(op) -> str | None:
    """add|mul|min|max when a scatter's body combines old and new values that way (so an
    update equal to `identity` leaves the operand unchanged); None for an overwrite or
    any other body."""
    if op.name != "stablehlo.scatter" or len(op.results) != 1 \
            or str(I.elem_of(op.results[0].type)) == "i1":
        return None
    body = I.block_ops(op.regions[0].blocks[0])
    args = list(op.regions[0].blocks[0].arguments)
    if len(body) != 2 or body[0].name not in _BODY_COMBINERS or list(body[0].operands) not in (args, args[::-1]):
        return None
    return _BODY_COMBINERS[body[0].name]


def restrict(op, rule: OpRule, shape=None) -> OpRule:
    """The rule with the factors we must not shard marked need_replication; `shape(v)`
    gives a value's global shape (default: its type, right on a global program)."""
    shape = shape or (lambda v: I.shape_of(v.type))
    extra: set[int] = set()
    freed: set[int] = set()
    if rule.reduction and combiner(op) is None:
        extra |= rule.reduction
    elif rule.reduction and op.name == "stablehlo.gather":  # only one-element lookups
        extra |= rule.reduction - shardable_factors(op, rule)
    if op.name in _RANDOM or (op.name == "stablehlo.constant" and I.splat_value(op.results[0]) is None):
        extra |= set(range(rule.num_factors))
    if op.name in _UPDATES:
        n = _UPDATES[op.name](op)
        first = 1 if op.name == "stablehlo.dynamic_update_slice" else len(rule.operands) - n
        updated = {f for t in rule.operands[first:first + n] for d in t for f in d}
        extra |= {f for t in rule.operands[:n] for d in t for f in d} - updated - shardable_factors(op, rule)
    if op.name == "stablehlo.convolution":
        groups = [op.attributes[k].value for k in ("feature_group_count", "batch_group_count")
                  if k in op.attributes]
        if any(g > 1 for g in groups):
            extra |= set(range(rule.num_factors))
        refused, freed = windows.conv_refused(op, rule, shape)
        extra |= refused
    if op.name in _WINDOWED:
        extra |= windows.reduce_window_refused(op, rule, shape)
    if op.name in _SAME_ELEMENTS:
        sides = [{f for t in ts for d in t for f in d} for ts in (rule.operands, rule.results)]
        extra |= sides[0] ^ sides[1]
    moved = _padded_factors(op, rule, shape) - rule.permutation
    if not extra and not freed and not moved:
        return rule
    return replace(rule, need_replication=rule.need_replication | frozenset(extra),
                   permutation=(rule.permutation | moved) - frozenset(freed))


def _padded_factors(op, rule: OpRule, shape) -> set[int]:
    """Factors of pad dims that move elements. Shardy marks a pad dim as a permutation
    only when its size changes, but low -1 / high 1 keeps f32[6] at 6 while shifting
    every element across shard boundaries: a local pad would be wrong."""
    if op.name != "stablehlo.pad":
        return set()
    arr = lambda k: list(I.ir.DenseI64ArrayAttr(op.attributes[k]))  # noqa: E731
    sizes = shape(op.operands[0])
    moved = [lo != 0 or hi != 0 or (it != 0 and n > 1)
             for lo, hi, it, n in zip(arr("edge_padding_low"), arr("edge_padding_high"),
                                      arr("interior_padding"), sizes)]
    return {f for d, m in enumerate(moved) if m for f in rule.operands[0][d]}


def _shrink(op, key: str, global_shape, local_shape, starts=None, strides=None) -> None:
    """Sharded dims pass through whole: their size entry becomes the local size."""
    vals = list(I.ir.DenseI64ArrayAttr(op.attributes[key]))
    for d, (g, l) in enumerate(zip(global_shape, local_shape)):
        if g != l:
            vals[d] = (starts[d] if starts else 0) + l * (strides[d] if strides else 1)
    op.attributes[key] = I.i64_array(vals)


def local_attrs(op, global_operands, local_operands, global_results, local_results) -> None:
    """Rewrite attributes that hold global sizes of (passed-through) sharded dimensions."""
    name = op.name
    if name == "stablehlo.slice":
        arr = lambda k: list(I.ir.DenseI64ArrayAttr(op.attributes[k]))  # noqa: E731
        _shrink(op, "limit_indices", global_results[0], local_results[0], arr("start_indices"), arr("strides"))
    elif name == "stablehlo.dynamic_slice":
        _shrink(op, "slice_sizes", global_results[0], local_results[0])
    elif name == "stablehlo.gather":      # only whole-dimension slices pass a sharding through
        sizes = list(I.ir.DenseI64ArrayAttr(op.attributes["slice_sizes"]))
        keep = [l if s == g else g for s, g, l in zip(sizes, global_operands[0], local_operands[0])]
        _shrink(op, "slice_sizes", global_operands[0], keep)
    elif name == "stablehlo.constant" and global_results[0] != local_results[0]:
        op.attributes["value"] = I.splat_attr(op.attributes["value"], op.results[0].type)


def iota_dimension(op) -> int | None:
    """The dimension whose local values need a shard offset (iota counts along it)."""
    if op.name == "stablehlo.iota":
        return op.attributes["iota_dimension"].value
    return None


def elementwise_combiner(op) -> str | None:
    """add|mul|min|max when `op` is that binary element-wise op on non-i1 tensors (what a
    loop carry that accumulates with it combines by, partition/spmd/carry.py)."""
    if op.name not in _BODY_COMBINERS or len(op.operands) != 2 or len(op.results) != 1 \
            or not I.is_tensor(op.results[0].type) or str(I.elem_of(op.results[0].type)) == "i1":
        return None
    return _BODY_COMBINERS[op.name]


def passes_partial(op) -> bool:
    """Whether `op` may run on each device's partial value of its operand, the results then
    combined: f(a (+) b) = f(a) (+) f(b). True for a widening float convert (bf16 -> f32; equal
    up to the narrow type's rounding, which the sum in the wider type no longer pays)."""
    if op.name != "stablehlo.convert" or not I.is_tensor(op.results[0].type):
        return False
    a, b = str(I.elem_of(op.operands[0].type)), str(I.elem_of(op.results[0].type))
    return a in _FLOAT_BITS and b in _FLOAT_BITS and _FLOAT_BITS[b] >= _FLOAT_BITS[a]


_FLOAT_BITS = {"bf16": 16, "f16": 16, "f32": 32, "f64": 64}
