"""The product corpus: many small StableHLO programs with random shardings, by seed.

    case(index, n, seed=0) -> Case          # reproducible from (seed, index, n)
    sweep(count, ranks=(2, 4), seed=0)      # count programs x rank counts

Program `index` is drawn by family FAMILY_ORDER[index % len] (so any run of
consecutive indices covers the families, the riskier ones two or three times) from rng (seed, index); its sharding
for n devices from rng (seed, index, n): a 1-D mesh ["x"=n] or, for 4 devices, often
["x"=2, "y"=2]; each mesh axis goes to a random dimension of each argument (or stays
unused), two axes may stack on one dimension, dimensions of any size (uneven, even
size 1) can be sharded; sometimes the first result gets a sharding too. Scalars stay
replicated. The annotated text is what a user hands to `rhino run`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rhino_mlir.frontend import annotate
from rhino_mlir.sharding import Mesh

from . import ops_compute, ops_control, ops_elementwise, ops_indexing, ops_shape  # noqa: F401
from .hlo import FAMILIES

# one slot per family, two or three for those with the most ways to go wrong when sharded
FAMILY_ORDER = ("unary", "binary", "broadcast_binary", "compare_select", "clamp", "convert",
                "bitcast_convert", "reshape", "transpose", "reverse", "slice", "pad",
                "concatenate", "iota", "dot_general", "convolution", "reduce",
                "reduce_window", "gather", "scatter", "dynamic_slice", "dynamic_update_slice",
                "sort", "while_cumsum", "while_iterate", "case", "softmax", "dense",
                "passthrough", "layout_chain", "select_and_scatter",
                "convolution", "scatter", "gather", "pad", "layout_chain", "reduce_window",
                "dot_general", "convolution", "scatter", "slice", "dynamic_update_slice")
assert set(FAMILY_ORDER) == set(FAMILIES), "every registered family has a slot"


@dataclass
class Case:
    index: int
    n: int                          # devices = ranks
    seed: int
    family: str
    notes: str                      # what the generator drew
    program: str                    # plain global program (no annotations)
    text: str                       # annotated global program
    inputs: list = field(repr=False, default_factory=list)
    mesh: Mesh | None = None
    arg_shardings: list = field(default_factory=list)      # PartitionSpec-like or None
    result_shardings: list | None = None

    @property
    def name(self) -> str:
        return case_name(self.index, self.n, self.seed)

    def sharding_line(self) -> str:
        fmt = lambda s: "rep" if s is None else "(" + ", ".join(  # noqa: E731
            "-" if d is None else d if isinstance(d, str) else "+".join(d) for d in s) + ")"
        axes = "x".join(str(k) for _, k in self.mesh.axes)
        out = f"mesh {axes}; args " + " ".join(fmt(s) for s in self.arg_shardings)
        if self.result_shardings:
            out += "; result0 " + fmt(self.result_shardings[0])
        return out


def case_name(index: int, n: int, seed: int = 0) -> str:
    """'019-scatter-n2' ('s1-095-pad-n2' for seed 1): known without drawing the case
    (test ids, repro directories)."""
    return (f"s{seed}-" if seed else "") + f"{index:03d}-{FAMILY_ORDER[index % len(FAMILY_ORDER)]}-n{n}"


def random_sharding(rng: np.random.Generator, shape, axes: list[str], p_axis: float = 0.8):
    """PartitionSpec-like tuple: each axis to a random dim (or unused); None if replicated."""
    if not shape:
        return None
    dims: list[list[str]] = [[] for _ in shape]
    for a in axes:
        if rng.random() < p_axis:
            dims[int(rng.integers(len(shape)))].append(a)
    if not any(dims):
        return None
    return tuple(None if not d else d[0] if len(d) == 1 else tuple(d) for d in dims)


def draw_mesh(rng: np.random.Generator, n: int) -> Mesh:
    if n == 4 and rng.random() < 0.5:
        return Mesh("mesh", (("x", 2), ("y", 2)))
    return Mesh("mesh", (("x", n),))


def case(index: int, n: int, seed: int = 0) -> Case:
    fam = FAMILY_ORDER[index % len(FAMILY_ORDER)]
    prog = FAMILIES[fam](np.random.default_rng([seed, index]))
    srng = np.random.default_rng([seed, index, n])
    mesh = draw_mesh(srng, n)
    axes = [a for a, _ in mesh.axes]
    args = [random_sharding(srng, a.shape, axes) if srng.random() < 0.85 else None
            for a in prog.args]
    ranked = [i for i, a in enumerate(prog.args) if a.shape]
    if ranked and all(args[i] is None for i in ranked):     # something must be sharded
        i = ranked[int(srng.integers(len(ranked)))]
        args[i] = random_sharding(srng, prog.args[i].shape, axes, p_axis=1.0)
    results = None
    if srng.random() < 0.15 and prog.results[0].shape:
        results = [random_sharding(srng, prog.results[0].shape, axes)] + [None] * (len(prog.results) - 1)
        if results[0] is None:
            results = None
    plain = prog.text()
    text = annotate(plain, mesh, args, results)
    return Case(index, n, seed, fam, prog.notes, plain, text, prog.inputs, mesh, args, results)


def sweep(count: int, ranks=(2, 4), seed: int = 0, start: int = 0) -> list[Case]:
    return [case(i, n, seed) for i in range(start, start + count) for n in ranks]
