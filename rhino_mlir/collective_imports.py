"""Names of the `rhino` VM module's imported functions: one grammar, two users.

`rhino-lower-collectives{mode=import}` declares one private function per distinct
collective (kind, static parameters, tensor types) and the per-rank runtime exports a
Python implementation for each. IREE binds imports by name only, and a .vmfb keeps no
function attributes, so the static parameters travel *in the name*; the runtime decodes
them here and never needs anything but the name. Pure Python: rank processes import it.

    rhino.partition_id
    rhino.all_reduce.sum.g0_1.g2_3.t0        groups [[0,1],[2,3]]
    rhino.all_gather.d1.g0_1_2_3.t2          gather along dim 1
    rhino.reduce_scatter.max.d0.g0_1.t0      reduce, scatter dim 0
    rhino.all_to_all.s1.c0.g0_1.t3           split dim 1, concat dim 0
    rhino.collective_permute.p0_1.p1_0.t0    pairs (source, target)

`t<k>` only tells apart declarations that differ in tensor type (an MLIR symbol has one
signature); it carries no meaning. Every export has IREE calling convention "0r_r"
(one buffer view in, one out) except partition_id ("0v_r").
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import RhinoError

MODULE = "rhino"
REDUCE_KINDS = ("sum", "prod", "min", "max")
KINDS = ("partition_id", "all_reduce", "all_gather", "reduce_scatter", "all_to_all",
         "collective_permute")


@dataclass(frozen=True)
class Collective:
    kind: str
    reduce: str = ""                               # sum|prod|min|max (reductions)
    groups: tuple[tuple[int, ...], ...] = ()       # replica groups of device indices
    dim: int = -1                                  # gather / scatter dim
    split_dim: int = -1                            # all_to_all
    concat_dim: int = -1                           # all_to_all
    pairs: tuple[tuple[int, int], ...] = ()        # collective_permute (source, target)

    def signature(self) -> str:
        return "0v_r" if self.kind == "partition_id" else "0r_r"

    def encode(self, tag: int = 0) -> str:
        """Function name inside the `rhino` module (without the 'rhino.' prefix)."""
        if self.kind == "partition_id":
            return "partition_id"
        parts = [self.kind]
        if self.reduce:
            parts.append(self.reduce)
        if self.kind in ("all_gather", "reduce_scatter"):
            parts.append(f"d{self.dim}")
        if self.kind == "all_to_all":
            parts += [f"s{self.split_dim}", f"c{self.concat_dim}"]
        parts += ["g" + "_".join(map(str, g)) for g in self.groups]
        parts += [f"p{s}_{t}" for s, t in self.pairs]
        parts.append(f"t{tag}")
        return ".".join(parts)

    def symbol(self, tag: int = 0) -> str:
        """MLIR symbol of the declaration: module name + '.' + function name."""
        return f"{MODULE}.{self.encode(tag)}"

    def group_of(self, device: int) -> tuple[int, ...]:
        """The replica group holding `device` (empty groups = all devices, caller's job)."""
        for g in self.groups:
            if device in g:
                return g
        raise RhinoError(f"rhino.{self.kind}: device {device} is in no replica group "
                         f"{[list(g) for g in self.groups]}")


def decode(name: str) -> Collective:
    """Inverse of Collective.encode; accepts names with or without the 'rhino.' prefix."""
    if name.startswith(MODULE + "."):
        name = name[len(MODULE) + 1:]
    parts = name.split(".")
    kind = parts[0]
    if kind not in KINDS:
        raise RhinoError(f"unknown rhino import '{name}' (kinds: {', '.join(KINDS)})")
    if kind == "partition_id":
        return Collective(kind)
    fields: dict = {"kind": kind}
    groups, pairs = [], []
    try:
        for p in parts[1:]:
            if p in REDUCE_KINDS:
                fields["reduce"] = p
            elif p[0] == "d":
                fields["dim"] = int(p[1:])
            elif p[0] == "s":
                fields["split_dim"] = int(p[1:])
            elif p[0] == "c":
                fields["concat_dim"] = int(p[1:])
            elif p[0] == "g":
                groups.append(tuple(int(x) for x in p[1:].split("_")))
            elif p[0] == "p":
                s, t = p[1:].split("_")
                pairs.append((int(s), int(t)))
            elif p[0] == "t":
                int(p[1:])
            else:
                raise ValueError(p)
    except (ValueError, IndexError):
        raise RhinoError(f"malformed rhino import name '{name}'") from None
    return Collective(groups=tuple(groups), pairs=tuple(pairs), **fields)
