"""Live intervals of the buffers of a global program: the sharding-independent half of
the memory model (analysis/memory.py prices them for a sharding).

One walk of @main gives every tensor value its global shape, element size and live
interval [start, end] in "points" (the entry, then one point per op that writes a
buffer, in program order):
  arguments      live from the entry to the end (the caller owns their buffers)
  results        from their definition to the end
  other values   from their definition to their last use (an op's operands and
                 results are live together at its point: ops run out of place)
  while          point s uses the operands; the carry (body block arguments, one
                 buffer per carried value) is live from s+1 through the body; values
                 from outside used in the loop live to its end (every iteration reads
                 them); results are defined at the exit point. A value the body passes
                 through unchanged (rhino-accumulate's weights) is read in place: its
                 carry and result are the operand's buffer (XLA adds no copy for it). case/if branches are
                 walked one after another. Bodies of reduce/sort/scatter (scalar
                 combiners) are not program code and are skipped.
  fusion         a value made by a cheap per-element op whose every user can absorb
                 it gets no buffer: fusing compilers (XLA loop/input fusion, IREE
                 dispatch regions) recompute it inside the users, which read its inputs
                 instead. A value nobody reads gets no buffer either.
  barrier        `optimization_barrier` results are their operands' buffers (XLA passes
                 them through; its CPU pipeline removes barriers before fusion): no
                 copies. So a fusing user behind a barrier (rhino-remat's anchor
                 `leaf + -0.0`) gets a copy of the leaf's producer when that is cheap and
                 effectively unary (analysis/fusion.py `copyable`; `copies` lists what
                 such a copy reads) and reads the producer's inputs: relu(z + b) keeps z
                 alive up to the recomputation, besides the leaf's own buffer.
  in place       a dynamic_update_slice or scatter whose updated operand (a temporary or
                 loop carry) has no later use writes into its buffer, as XLA and IREE do:
                 the operand's interval ends just before the update, where the result's
                 begins (a scan's stacked carry is counted once, not twice).
  donation       an argument with `tf.aliasing_output = i` (or `jax.buffer_donor`,
                 paired with the first free result of the same type) shares its buffer
                 with that result.
Every op that reads tensors is also kept as a `Site` so that the reshards a sharding
implies (operands gathered or moved, partial results) can be priced at its point.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ir as I
from ..errors import RhinoError
from . import dataflow
from .donation import donations
from .fusion import PASS_THROUGH, copyable, fusible, fuses as _fuses

TEMP, ARG, OUT, CONST = 0, 1, 2, 3              # value kinds

_S = "stablehlo."


@dataclass
class Ref:
    """A tensor an op reads or writes: how to look up its sharding, and its size."""
    key: tuple                 # ("arg", i) | ("op", walk index, result) | ("carry", walk index, i)
    value: object              # ir.Value
    shape: tuple[int, ...]
    ebytes: int


@dataclass
class Site:
    """An op at a point, with the tensors it reads and writes (for reshard pricing)."""
    point: int
    op: object                 # ir.Operation
    operands: list[Ref]
    results: list[Ref]


@dataclass
class Liveness:
    """Live intervals of every buffer of @main (see the module docstring)."""
    keys: list[tuple] = field(default_factory=list)
    names: list[str] = field(default_factory=list)    # "%arg0", "%12", ... for reports
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    values: list = field(default_factory=list)        # ir.Value per entry (None when built by hand)
    elem_bytes: np.ndarray = None                     # (n,) int64
    start: np.ndarray = None                          # (n,) first live point
    end: np.ndarray = None                            # (n,) last live point (inclusive)
    kind: np.ndarray = None                           # (n,) TEMP/ARG/OUT/CONST
    points: list[str] = field(default_factory=list)   # op name at each point
    point_ops: list = field(default_factory=list)     # walk index of that op (None: entry)
    results: list[int] = field(default_factory=list)  # value index of each @main result
    aliases: dict[int, int] = field(default_factory=dict)   # result number -> donated argument
    num_args: int = 0
    sites: list[Site] = field(default_factory=list)
    copies: dict = field(default_factory=dict)   # buffer -> buffers a fused copy of its producer reads

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_intervals(cls, shapes, elem_bytes, start, end, kinds=None, num_points=None) -> "Liveness":
        """A Liveness built by hand (a planner's own graph): buffers in definition order."""
        n = len(shapes)
        kind = np.asarray(kinds if kinds is not None else [TEMP] * n, dtype=np.int8)
        end = np.asarray(end, dtype=np.int64)
        return cls(keys=[("buf", i) for i in range(n)], names=[f"%{i}" for i in range(n)],
                   shapes=[tuple(s) for s in shapes], values=[None] * n,
                   elem_bytes=np.asarray(elem_bytes, dtype=np.int64),
                   start=np.asarray(start, dtype=np.int64), end=end, kind=kind,
                   points=[""] * (num_points or int(end.max(initial=0)) + 1),
                   point_ops=[None] * (num_points or int(end.max(initial=0)) + 1),
                   results=[i for i in range(n) if kind[i] == OUT], num_args=int((kind == ARG).sum()))

    @property
    def global_bytes(self) -> np.ndarray:
        return np.array([int(np.prod(s)) for s in self.shapes], dtype=np.int64) * self.elem_bytes

    def _weights(self, nbytes, kinds=None) -> np.ndarray:
        w = np.asarray(nbytes, dtype=np.int64)
        if kinds is not None:
            w = np.where(np.isin(self.kind, kinds), w, 0)
        if self.aliases:                # a donated buffer is counted once, as the argument
            w = w.copy()
            w[..., [self.results[r] for r in self.aliases]] = 0
        return w

    def profile(self, nbytes, kinds=None, extra=None) -> np.ndarray:
        """Live bytes at every point: values (only those of `kinds` when given) plus
        `extra` = (starts, ends, bytes) arrays of transient buffers (reshards)."""
        w = self._weights(nbytes, kinds)
        n = len(self.points)
        starts, ends = self.start, self.end
        if extra is not None and len(extra[0]):
            starts = np.concatenate([starts, extra[0]])
            ends = np.concatenate([ends, extra[1]])
            w = np.concatenate([w, np.asarray(extra[2], dtype=np.int64)])
        delta = np.bincount(starts, w, minlength=n + 1) - np.bincount(ends + 1, w, minlength=n + 1)
        return np.cumsum(delta[:n]).astype(np.int64)

    def peak(self, local_bytes, extra=None) -> tuple[int, int]:
        """(peak live bytes, first point where it is reached) for per-value bytes given as
        an array or a callable(index) -> bytes. Pure numpy: the planner's inner loop."""
        w = local_bytes if isinstance(local_bytes, np.ndarray) else \
            np.fromiter((local_bytes(i) for i in range(len(self))), dtype=np.int64, count=len(self))
        prof = self.profile(w, extra=extra)
        t = int(np.argmax(prof))
        return int(prof[t]), t

    def peaks(self, local_bytes) -> np.ndarray:
        """Peaks of k candidate shardings at once: (k, n) bytes -> (k,)."""
        w = self._weights(local_bytes)
        n = len(self.points)
        delta = np.zeros((n + 1, w.shape[0]), dtype=np.int64)
        np.add.at(delta, self.start, w.T)
        np.add.at(delta, self.end + 1, -w.T)
        return np.cumsum(delta[:n], axis=0).max(axis=0)

    def live_at(self, t: int, nbytes, top: int = 10) -> list[tuple[str, int]]:
        """The `top` largest (name, bytes) live at point t: what makes up a peak."""
        idx = np.nonzero((self.start <= t) & (self.end >= t))[0]
        idx = idx[np.argsort(-np.asarray(nbytes)[idx], kind="stable")][:top]
        return [(self.names[i], int(nbytes[i])) for i in idx]


# ----------------------------------------------------------------------------- the walk

class _Walk:
    def __init__(self, f, ops: list, fusion: bool):
        self.lv = Liveness()
        self.asm = I.ir.AsmState(f)            # names in one pass (get_name() alone re-prints)
        self.index: dict = {}                  # ir.Value -> value index
        self.depth: list[int] = []             # loop nesting depth where each value is defined
        self.start: list[int] = []
        self.end: list[int] = []
        self.used: list[int] = []              # last point that reads each buffer itself
        self.updates: list[tuple] = []         # (operand buffer, point, loop depth): in place?
        self.kind: list[int] = []
        self.ebytes: list[int] = []
        self.loops: list[list[int]] = []       # stack: values to extend to each open loop's end
        self.walk_index = {op: k for k, op in enumerate(ops)}   # plan.json names values by it
        self.fusion = fusion
        self.fusible = fusible(ops, fusion)    # values never materialized
        self.dup_reads: dict = {}              # a barrier's result -> what a copy of its producer reads
        self.reads: dict = {}                  # such a value -> the value indices it reads
        self.refs: dict = {}                   # ir.Value -> Ref (every tensor, fused or not)
        self.types: dict = {}                  # ir.Type -> (shape, element bytes) | None: a few
        #                                        dozen types for 10^5 values (MLIR uniques them)

    @property
    def point(self) -> int:
        return len(self.lv.points)

    def new_point(self, name: str, op=None, w=False) -> int:
        """A point for `op` (walk index `w` when the caller has it)."""
        self.lv.points.append(name)
        self.lv.point_ops.append(self.walk_index.get(op) if w is False else w)
        return self.point - 1

    def ref(self, v, key) -> Ref | None:
        t = v.type
        got = self.types.get(t, False)
        if got is False:
            got = self.types[t] = (tuple(I.shape_of(t)), I.elem_bytes(I.elem_of(t))) \
                if I.is_tensor(t) else None
        if got is None:
            return None
        r = self.refs[v] = Ref(key, v, *got)
        return r

    def define(self, v, key, at: int, kind: int = TEMP) -> None:
        r = self.ref(v, key)
        if r is None or v in self.fusible:
            return
        lv = self.lv
        self.index[v] = len(lv.keys)
        lv.keys.append(key)
        lv.names.append(v.get_name(self.asm))
        lv.shapes.append(r.shape)
        lv.values.append(v)
        self.ebytes.append(r.ebytes)
        self.depth.append(len(self.loops))
        self.start.append(at)
        self.end.append(at)
        self.used.append(at)
        self.kind.append(kind)

    def use(self, v, at: int, fuses: bool = False) -> None:
        got = self.reads.get(v)
        if got is not None:                    # fused into this user: it reads the inputs
            for i in got:
                self._use(i, at)
        elif fuses and (got := self.dup_reads.get(v)) is not None:   # a copy of its producer
            for i in got:                                              # runs in this user
                self._use(i, at)
        elif (i := self.index.get(v)) is not None:
            self._use(i, at)

    def _inputs(self, op, operands=None) -> set:
        """Buffers a fused copy of `op` reads (through values fused or duplicated into it)."""
        out = set()
        for v in op.operands if operands is None else operands:
            got = self.reads.get(v) or self.dup_reads.get(v)
            out.update(got if got is not None else [self.index[v]] if v in self.index else [])
        return out

    def _use(self, i: int, at: int) -> None:
        self.end[i] = max(self.end[i], at)
        self.used[i] = max(self.used[i], at)
        if self.depth[i] < len(self.loops):    # defined outside an open loop: live to its end
            self.loops[self.depth[i]].append(i)

    def site(self, op, at: int, operands=None, results=None) -> None:
        refs = self.refs
        ops = [r for v in (op.operands if operands is None else operands) if (r := refs.get(v))]
        if ops:
            res = [r for v in (op.results if results is None else results) if (r := refs.get(v))]
            self.lv.sites.append(Site(at, op, ops, res))

    def block(self, block) -> None:
        for op in I.block_ops(block):
            self.op(op)

    def op(self, op) -> None:
        name, w = op.name, self.walk_index.get(op)
        if name in dataflow.LOOP_OPS:
            return self.loop(op, w)
        operands, results = list(op.operands), list(op.results)   # each access makes new objects
        if results and all(v in self.fusible for v in results):
            reads = self._inputs(op, operands)
            for r, v in enumerate(results):
                self.reads[v] = reads
                self.ref(v, ("op", w, r))
            self.site(op, self.point, operands, results)   # priced at the op that absorbs it
            return
        if name in PASS_THROUGH:               # results are the operands' buffers
            for r, (x, v) in enumerate(zip(operands, results)):
                self.ref(v, ("op", w, r))
                if x in self.reads:
                    self.reads[v] = self.reads[x]
                elif x in self.index:
                    self.index[v] = self.index[x]
                got = self.dup_reads.get(x) or self.lv.copies.get(self.index.get(x))
                if got is not None:            # a fusing user behind it copies x's producer
                    self.dup_reads[v] = got
            return
        at = self.new_point(name, op, w)
        fuses = self.fusion and _fuses(op)
        for v in operands:
            self.use(v, at, fuses)
        if name in dataflow.BRANCH_OPS:
            for region in op.regions:
                self.block(region.blocks[0])
            at = self.new_point(name + ".exit", op, w)
        for r, v in enumerate(results):
            self.define(v, ("op", w, r), at, CONST if name == _S + "constant" else TEMP)
            x = _updated(op, r)
            if x is not None and x in self.index and v in self.index:
                self.updates.append((self.index[x], at, len(self.loops)))
            if v in self.index and copyable(op):   # the copy takes in copyable producers too
                ins = set()
                for i in self._inputs(op, operands):
                    ins.update(self.lv.copies.get(i, (i,)))
                self.lv.copies[self.index[v]] = tuple(sorted(ins))
        self.site(op, at, operands, results)

    def in_place(self) -> None:
        """Updates last to read their operand's buffer write into it: it ends a point early
        (a value from outside the update's loop is read by every iteration: not dead)."""
        for i, at, depth in self.updates:
            if self.kind[i] == TEMP and self.used[i] == at and self.depth[i] == depth:
                self.end[i] = at - 1

    def loop(self, op, w) -> None:
        s = self.new_point(op.name, op)
        for v in op.operands:
            self.use(v, s)
        body, cond = op.regions[1].blocks[0], op.regions[0].blocks[0]
        self.loops.append([])
        begin = self.new_point(op.name + ".carry", op)
        yields = list(I.block_ops(body)[-1].operands)
        same = {}                                # carried unchanged: read in place, no copy
        for i, a in enumerate(body.arguments):   # one buffer per carried value
            x = op.operands[i]
            if yields[i] == a and x in self.index and x not in self.reads:
                same[i] = self.index[x]
                self.index[a] = same[i]
                self.ref(a, ("carry", w, i))
                self._use(same[i], begin)
            else:
                self.define(a, ("carry", w, i), begin)
        for a, b in zip(cond.arguments, body.arguments):
            if b in self.index:
                self.index[a] = self.index[b]   # cond reads the same carry buffers
                self.refs[a] = self.refs[b]
        carries = [self.index[a] for a in body.arguments if a in self.index]
        self.block(cond)
        self.block(body)
        last = self.point - 1
        for i in self.loops.pop() + carries:
            self.end[i] = max(self.end[i], last)
            if self.depth[i] < len(self.loops):  # still outside an enclosing loop
                self.loops[self.depth[i]].append(i)
        e = self.new_point(op.name + ".exit", op)
        for r, v in enumerate(op.results):
            if r in same:                        # the operand's buffer, unchanged
                self.index[v] = same[r]
                self.ref(v, ("op", w, r))
                self._use(same[r], e)
            else:
                self.define(v, ("op", w, r), e)


def liveness(module, fusion: bool = True) -> Liveness:
    """Walk @main of a (global, inlined) module once. `fusion=False` gives every value
    its own buffer (an upper bound; what an unfused interpreter would hold)."""
    with module.context:
        f = I.main_func(module)
        wk = _Walk(f, list(I.walk_ops(f)), fusion)
        block = f.regions[0].blocks[0]
        entry = wk.new_point("entry")
        for i, a in enumerate(block.arguments):
            if not I.is_tensor(a.type):
                raise RhinoError(f"memory: @main argument %arg{i} is not a tensor ({a.type}); "
                                 f"lower without tokens")
            wk.define(a, ("arg", i), entry, ARG)
        lv = wk.lv
        lv.num_args = len(block.arguments)
        for op in I.block_ops(block)[:-1]:
            wk.op(op)
        ret = I.block_ops(block)[-1]
        last = wk.new_point(ret.name, ret)
        for r, v in enumerate(ret.operands):
            if v not in wk.index:
                raise RhinoError(f"memory: @main result {r} is not a tensor ({v.type})")
            i = wk.index[v]
            lv.results.append(i)
            if wk.kind[i] in (TEMP, CONST):
                wk.kind[i] = OUT
        for i in list(range(lv.num_args)) + lv.results:
            wk.end[i] = last
        wk.in_place()
        lv.aliases = donations(f, lv.results, lv.values)
        lv.elem_bytes = np.array(wk.ebytes, dtype=np.int64)
        lv.start = np.array(wk.start, dtype=np.int64)
        lv.end = np.array(wk.end, dtype=np.int64)
        lv.kind = np.array(wk.kind, dtype=np.int8)
    return lv


def _updated(op, r: int):
    """The operand whose buffer result r of an in-place update op may reuse, else None."""
    if op.name == _S + "dynamic_update_slice":
        return op.operands[0]
    if op.name == _S + "scatter":          # inputs..., indices, updates...: result r <- input r
        return op.operands[r] if r < len(op.results) else None
    return None
