"""What recomputation may clone, and what selective recomputation keeps (op semantics, as tables).

Activation recomputation (partition/remat/) clones forward ops into the backward. Two facts
about ops decide what it may do, and they live here with the other op tables:

  never cloned   ops whose second run would not give the first run's values or would act
                 twice: random numbers (`rng`; `rng_bit_generator` would repeat its numbers
                 only if its state were recomputed too, so it is kept whole), collectives,
                 host transfers, custom calls (unknown effects), and ops with program
                 regions (a loop is kept, not re-run)
  kept by        contractions with a weight operand (a value computed without the batch):
  `selective`    the linear layers' outputs cost 2·m·n·k FLOPs to redo, while the element-wise
                 work, layer norms, softmax and the attention scores (a contraction of two
                 activations, whose output grows with seq²) are cheap per byte to recompute
                 (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
                 Transformer Models", selective recomputation)
"""
from __future__ import annotations

from typing import Callable

_S = "stablehlo."
NEVER_CLONED = frozenset(_S + n for n in """
    rng rng_bit_generator custom_call all_reduce all_gather all_to_all reduce_scatter
    collective_permute collective_broadcast send recv infeed outfeed after_all
    while case if partition_id replica_id optimization_barrier""".split())
CONTRACTIONS = frozenset({_S + "dot_general", _S + "dot", _S + "convolution"})


def clonable(op) -> bool:
    """Whether running a copy of `op` gives the same values with no other effect."""
    return op.name.startswith(_S) and op.name not in NEVER_CLONED


def kept_by_selective(op, per_example: Callable[[object], bool]) -> bool:
    """Whether selective recomputation keeps `op`'s results: a contraction that reads a
    weight (an operand that `per_example` says is not computed from the batch)."""
    return op.name in CONTRACTIONS and not all(per_example(v) for v in op.operands)
