"""Gather and scatter: the operand dimensions they address through run-time indices.

Op semantics the factor rules leave implicit. A dimension that each index addresses
one element of (gather's collapsed_slice_dims, scatter's inserted_window_dims, listed
in the index map) may stay sharded: a device shifts the index component by its shard's
start, so every index lands in its own shard or outside it. The partitioner never lets
an index leave the local operand (partition/spmd/indices.py): backends disagree on
out-of-bounds indices (IREE 3.13 reads and writes past the buffer where XLA clamps a
gather and skips a scatter update), so a gather reads a clamped row and masks it to 0
(the shards are summed: the rule's reduction factor, combiner add), and a scatter
update from outside the shard is redirected to a harmless place.
This is Megatron's vocabulary-parallel embedding, for any gather/scatter of this form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ir as I

_ATTRS = {"stablehlo.gather": ("dimension_numbers", "start_index_map", "collapsed_slice_dims", 1,
                                 "operand_batching_dims"),
          "stablehlo.scatter": ("scatter_dimension_numbers", "scatter_dims_to_operand_dims",
                                "inserted_window_dims", None, "input_batching_dims")}


@dataclass(frozen=True)
class Indexing:
    gather: bool
    indices: int                  # operand number of the index tensor
    vector_dim: int               # its index_vector_dim (== rank: one implicit component)
    addressed: tuple[int, ...]    # operand dims, in index-vector order
    shardable: tuple[int, ...]    # addressed dims taken one element at a time
    offset_dims: tuple[int, ...]  # gather: result dims that come from the operand slice
    update_window_dims: tuple[int, ...] = ()   # scatter: update dims inside the window
    whole: tuple[int, ...] = ()   # operand dims of window size 1 (collapsed/inserted, batching)


def _ints(text: str, key: str) -> tuple[int, ...]:
    m = re.search(key + r"\s*=\s*\[([^\]]*)\]", text)
    return tuple(int(x) for x in m.group(1).split(",") if x.strip()) if m else ()


def indexing(op) -> Indexing | None:
    spec = _ATTRS.get(op.name)
    if spec is None or len(op.results) != 1:
        return None
    attr, index_map, whole, indices, batching = spec
    text = str(op.attributes[attr])
    vm = re.search(r"index_vector_dim\s*=\s*(\d+)", text)
    addressed = _ints(text, index_map)
    one = set(_ints(text, whole))
    return Indexing(op.name.endswith("gather"), indices if indices is not None else 1,
                    int(vm.group(1)) if vm else 0, addressed,
                    tuple(d for d in addressed if d in one), _ints(text, "offset_dims"),
                    _ints(text, "update_window_dims"), tuple(sorted(one | set(_ints(text, batching)))))


def window_sizes(op, ix: Indexing, global_operand, local_operand, local_updates=None) -> list[int]:
    """Local window size of every operand dimension: how far past an index the op reads
    (gather's slice_sizes; a whole-dimension slice of a sharded dimension is the local
    size) or writes (the scatter update's window dimensions)."""
    if ix.gather:
        sizes = list(I.ir.DenseI64ArrayAttr(op.attributes["slice_sizes"]))
        return [l if s == g else s for s, g, l in zip(sizes, global_operand, local_operand)]
    out, it = [], iter(ix.update_window_dims)
    for d in range(len(local_operand)):
        out.append(1 if d in ix.whole else local_updates[next(it)])
    return out


def shardable_factors(op, rule) -> set[int]:
    """Factors of operand 0 that may stay sharded (see the module docstring)."""
    ix = indexing(op)
    if ix is None:
        return set()
    out = set()
    for d in ix.shardable:
        fs = rule.operands[0][d]
        if len(fs) == 1:
            out.add(fs[0])
    return out
