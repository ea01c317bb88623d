"""Which values a fusing compiler never stores, and which of their producers it copies.

analysis/liveness.py asks this module, once per program, which values get no buffer:
fusing compilers (XLA loop/input fusion, IREE dispatch regions) recompute a cheap
per-element op inside the users that can absorb it, which then read its inputs. The
rules follow XLA's instruction fusion, measured against its buffer assignment
(tests/analysis/test_memory.py): a value read by one absorbing user is fused; one read by
several is fused only when all absorb it and it is cheap and effectively unary; a stored
value that is cheap and effectively unary is still copied into a user that absorbs it and
reads it through an `optimization_barrier` (removed by XLA before fusion; rhino-remat's
anchor), which then reads its inputs.
"""
from __future__ import annotations

from .. import ir as I
from . import dataflow
from .cost import ELEMENTWISE

_S = "stablehlo."
FUSIBLE_PRODUCERS = ELEMENTWISE | frozenset(_S + n for n in """
    broadcast_in_dim convert reshape transpose iota constant slice concatenate pad reverse
    dynamic_slice""".split())
FUSING_CONSUMERS = FUSIBLE_PRODUCERS - {_S + "constant", _S + "iota"} | {_S + "reduce"}
# ...but a costly one read by several users is computed once and stored, not recomputed
# in each (XLA's "expensive" elementwise ops: transcendentals and divisions)
EXPENSIVE = frozenset(_S + n for n in """
    atan2 cbrt cosine divide exponential exponential_minus_one log log_plus_one logistic
    power remainder rsqrt sine sqrt tan tanh""".split())
# ops whose results are their operands' buffers (XLA passes a barrier through, no copy)
PASS_THROUGH = frozenset({_S + "optimization_barrier"})


def fuses(op) -> bool:
    """Whether `op` absorbs its fusible operands. A reduce does only over the minor-most
    dimension (XLA CPU keeps reductions over major dims vectorized, unfused)."""
    if op.name != _S + "reduce":
        return op.name in FUSING_CONSUMERS
    rank = len(I.shape_of(op.operands[0].type))
    return rank - 1 in I.ir.DenseI64ArrayAttr(op.attributes["dimensions"])


def fusible(ops, fusion: bool) -> set:
    """Values that get no buffer: unread, or (with `fusion`) fused into all their users. A
    barrier is no user: its users read the value (XLA removes barriers before fusing)."""
    users: dict = {}
    src: dict = {}                             # a barrier's result -> the value it passes on
    for op in ops:
        if op.name in PASS_THROUGH:
            src.update((r, src.get(x, x)) for x, r in zip(op.operands, op.results))
            continue
        absorbs = fusion and fuses(op)
        for v in {src.get(x, x) for x in op.operands}:   # reading a value twice is one user
            users.setdefault(v, []).append(absorbs)
    return {v for op in ops if op.name not in dataflow.LOOP_OPS for v in op.results
            if not (u := users.get(src.get(v, v)))
            or (op.name in FUSIBLE_PRODUCERS and all(u) and (len(u) == 1 or _duplicable(op)))}


def copyable(op) -> bool:
    """Whether XLA copies `op` into a user that absorbs it even while other users read its
    buffer: a cheap, effectively unary producer (broadcast operands do not count, as in
    XLA's rule: relu(z + b) is copied, z + y is not). The copy reads the op's inputs."""
    return op.name in FUSIBLE_PRODUCERS and op.name not in (_S + "constant", _S + "iota") \
        and _duplicable(op, broadcasts=False)


def _duplicable(op, broadcasts: bool = True) -> bool:
    """Whether fusing `op` into several users is worth recomputing it in each: not when it
    is expensive, nor when it reads more than one full-rank tensor (each copy would read
    them all again; XLA's "effectively at most unary" rule). Fused into all its users, a
    broadcast operand counts (measured: XLA keeps such a value stored); for `copyable`
    (`broadcasts=False`) it does not."""
    if op.name in EXPENSIVE:
        return False
    rank = sum(1 for d in I.shape_of(op.results[0].type) if d > 1)
    return sum(1 for v in op.operands
               if I.is_tensor(v.type) and (broadcasts or not _broadcast_like(v))
               and sum(1 for d in I.shape_of(v.type) if d > 1) >= rank) <= 1


def _broadcast_like(v) -> bool:
    owner = v.owner if isinstance(v.owner, I.ir.Operation) else getattr(v.owner, "operation", None)
    name = getattr(owner, "name", "")
    return name in (_S + "broadcast_in_dim", _S + "iota") or \
        (name == _S + "constant" and all(d == 1 for d in I.shape_of(v.type)))
