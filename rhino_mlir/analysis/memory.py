"""Liveness-based peak memory per device of a sharded program, without partitioning it.

The global program is walked once into a `Liveness`: every tensor value with its
global shape, element size and live interval [start, end] in "points" (one point per
op of @main in order, plus the entry). Any sharding then prices it in numpy:
    local bytes(v) = prod(ceil(global dim / shards)) * elem bytes
    live(t)        = sum of local bytes of the values with start <= t <= end
so the planner can evaluate many candidate shardings on one walk (`Liveness.peak`).

Intervals (DESIGN.md "memory.py"):
  arguments      live from the entry to the end (the caller owns their buffers)
  results        from their definition to the end
  other values   from their definition to their last use (an op's operands and
                 results are live together at its point: ops run out of place)
  while          point s uses the operands; the carry (body block arguments, one
                 buffer per carried value) is live from s+1 through the body; values
                 from outside used in the loop live to its end (every iteration reads
                 them); results are defined at the exit point. case/if branches are
                 walked one after another. Bodies of reduce/sort/scatter (scalar
                 combiners) are not program code and are skipped.
  donation       an argument with `tf.aliasing_output = i` (or `jax.buffer_donor`,
                 matched to the first free result of the same type) shares its buffer
                 with that result: the result costs nothing more.
Breakdown in the terms of XLA's `memory_analysis()`: arguments, outputs, aliased,
temporaries (the peak of live values that are neither arguments, results nor
constants), constants apart. `xla_comparable` = arguments + outputs - aliased +
temporaries, the figure checked against XLA in benchmarks/bench_memory.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import ir as I
from ..errors import RhinoError
from ..sharding import Mesh, TensorSharding
from . import dataflow
from .cost import ELEMENTWISE

# value kinds
TEMP, ARG, OUT, CONST = 0, 1, 2, 3
_CONST_OPS = frozenset({"stablehlo.constant"})

# Fusion (XLA's loop/input fusion, IREE's dispatch regions): a value made by a cheap
# per-element op whose every user can absorb it is recomputed inside those users and
# never written to memory; its users read its inputs instead.
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


@dataclass
class Liveness:
    """Live intervals of every tensor value of @main (see the module docstring)."""
    keys: list[tuple] = field(default_factory=list)   # ("arg", i) | ("op", walk index, result) | ("carry", walk index, i)
    names: list[str] = field(default_factory=list)    # "%arg0", "%12", ... for reports
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    values: list = field(default_factory=list)        # ir.Value per entry (None when built by hand)
    elem_bytes: np.ndarray = None                     # (n,) int64
    start: np.ndarray = None                          # (n,) int64, first live point
    end: np.ndarray = None                            # (n,) int64, last live point (inclusive)
    kind: np.ndarray = None                           # (n,) int8: TEMP/ARG/OUT/CONST
    points: list[str] = field(default_factory=list)   # op name at each point
    results: list[int] = field(default_factory=list)  # value index of each @main result
    aliases: dict[int, int] = field(default_factory=dict)   # result number -> donated arg index
    num_args: int = 0

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def global_bytes(self) -> np.ndarray:
        return np.array([prod(s) for s in self.shapes], dtype=np.int64) * self.elem_bytes

    # ------------------------------------------------------------------ pricing
    def local_bytes(self, shardings: Mapping | Callable | None, mesh: Mesh | None) -> np.ndarray:
        """Per-value local bytes under `shardings`: a dict keyed by ir.Value or by
        `keys` entry, or a callable(index) -> TensorSharding | None (None = replicated)."""
        if shardings is None or mesh is None:
            return self.global_bytes
        get = shardings if callable(shardings) else _lookup(self, shardings)
        cache: dict = {}                       # (shape, dims) -> bytes: layers repeat
        out = np.empty(len(self), dtype=np.int64)
        for i, shape in enumerate(self.shapes):
            sh = get(i)
            if sh is None or not sh.dims:
                out[i] = prod(shape) * self.elem_bytes[i]
                continue
            k = (shape, sh.dims, int(self.elem_bytes[i]))
            b = cache.get(k)
            if b is None:
                b = cache[k] = prod(sh.local_shape(shape, mesh)) * k[2]
            out[i] = b
        return out

    def profile(self, nbytes: np.ndarray, kinds: Sequence[int] | None = None) -> np.ndarray:
        """Live bytes at every point (only values of `kinds` when given)."""
        w = np.asarray(nbytes, dtype=np.int64)
        if kinds is not None:
            w = np.where(np.isin(self.kind, kinds), w, 0)
        if self.aliases:                       # a donated buffer is counted once, as the argument
            w = w.copy()
            w[[self.results[r] for r in self.aliases]] = 0
        n = len(self.points)
        delta = np.bincount(self.start, w, minlength=n + 1) - np.bincount(self.end + 1, w, minlength=n + 1)
        return np.cumsum(delta[:n]).astype(np.int64)

    def live_at(self, t: int, nbytes: np.ndarray, top: int = 10) -> list[tuple[str, int]]:
        """The `top` largest (name, bytes) live at point t: what makes up a peak."""
        idx = np.nonzero((self.start <= t) & (self.end >= t))[0]
        idx = idx[np.argsort(-np.asarray(nbytes)[idx], kind="stable")][:top]
        return [(self.names[i], int(nbytes[i])) for i in idx]

    def peak(self, local_bytes) -> tuple[int, int]:
        """(peak live bytes, point where it is first reached) for per-value bytes given as an
        array or as a callable(index) -> bytes. Pure numpy: for the planner's inner loop."""
        w = local_bytes if isinstance(local_bytes, np.ndarray) else \
            np.fromiter((local_bytes(i) for i in range(len(self))), dtype=np.int64, count=len(self))
        prof = self.profile(w)
        t = int(np.argmax(prof))
        return int(prof[t]), t

    def peaks(self, local_bytes: np.ndarray) -> np.ndarray:
        """Peaks of k candidate shardings at once: local_bytes is (k, n) -> (k,)."""
        w = np.asarray(local_bytes, dtype=np.int64)
        if self.aliases:
            w = w.copy()
            w[:, [self.results[r] for r in self.aliases]] = 0
        n = len(self.points)
        delta = np.zeros((w.shape[0], n + 1), dtype=np.int64)
        np.add.at(delta.T, self.start, w.T)
        np.add.at(delta.T, self.end + 1, -w.T)
        return np.cumsum(delta[:, :n], axis=1).max(axis=1)

    def report(self, shardings=None, mesh: Mesh | None = None,
               roles: Mapping[int, str] | Sequence[str] | None = None) -> "MemoryReport":
        """The full breakdown (see MemoryReport) for one sharding."""
        w = self.local_bytes(shardings, mesh)
        total = self.profile(w)
        t = int(np.argmax(total))
        temps = self.profile(w, [TEMP])
        args = {}
        role_of = (lambda i: roles[i] if i < len(roles) else "arguments") if isinstance(roles, Sequence) \
            else (lambda i: (roles or {}).get(i, "arguments"))
        for i in range(self.num_args):
            r = role_of(i) if roles is not None else "arguments"
            args[r] = args.get(r, 0) + int(w[i])
        return MemoryReport(
            arguments=int(w[:self.num_args].sum()), by_role=args,
            outputs=int(sum(w[v] for v in self.results)),
            aliased=int(sum(w[self.results[r]] for r in self.aliases)),
            temporaries=int(temps.max(initial=0)), temp_point=int(np.argmax(temps)) if len(temps) else 0,
            constants=int(w[self.kind == CONST].sum()),
            peak=int(total[t]), peak_point=t, peak_op=self.points[t] if self.points else "")


@dataclass(frozen=True)
class MemoryReport:
    """Bytes per device. `peak` is the liveness peak (arguments always live, results from
    their definition); `xla_comparable` sums the parts the way XLA's buffer assignment
    reports them (every result its own buffer for the whole run)."""
    arguments: int
    by_role: dict                 # role -> bytes ("parameters", "optimizer_state", "batch", ...)
    outputs: int
    aliased: int
    temporaries: int
    temp_point: int
    constants: int
    peak: int
    peak_point: int
    peak_op: str

    @property
    def xla_comparable(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.temporaries

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["xla_comparable"] = self.xla_comparable
        return d


def _lookup(lv: Liveness, shardings: Mapping) -> Callable:
    by_key = any(isinstance(k, tuple) for k in shardings)
    if by_key:
        return lambda i: shardings.get(lv.keys[i])
    return lambda i: shardings.get(lv.values[i]) if lv.values[i] is not None else None


def peak_bytes(values: Liveness, local_bytes_fn: Callable[[int], int] | np.ndarray) -> int:
    """Peak live bytes of a walked program for per-value local bytes (callable or array)."""
    return values.peak(local_bytes_fn)[0]


# ----------------------------------------------------------------------------- the walk

class _Walk:
    def __init__(self):
        self.lv = Liveness()
        self.index: dict = {}                  # ir.Value -> value index
        self.depth: list[int] = []             # loop nesting depth where each value is defined
        self.start: list[int] = []
        self.end: list[int] = []
        self.kind: list[int] = []
        self.ebytes: list[int] = []
        self.loops: list[list[int]] = []       # stack: values to extend to each open loop's end
        self.walk_index: dict = {}             # ir.Operation -> pre-order index (plan.json naming)
        self.fusible: set = set()              # values never materialized (fused or unused)
        self.reads: dict = {}                  # such a value -> the value indices it reads

    @property
    def point(self) -> int:
        return len(self.lv.points)

    def new_point(self, name: str) -> int:
        self.lv.points.append(name)
        return self.point - 1

    def define(self, v, key, at: int, kind: int = TEMP) -> None:
        if not I.is_tensor(v.type) or v in self.fusible:
            return
        lv = self.lv
        self.index[v] = len(lv.keys)
        lv.keys.append(key)
        lv.names.append(I.value_name(v))
        lv.shapes.append(tuple(I.shape_of(v.type)))
        lv.values.append(v)
        self.ebytes.append(I.elem_bytes(I.elem_of(v.type)))
        self.depth.append(len(self.loops))
        self.start.append(at)
        self.end.append(at)
        self.kind.append(kind)

    def use(self, v, at: int) -> None:
        if v in self.reads:                    # fused into this user: it reads the inputs
            for i in self.reads[v]:
                self._use(i, at)
            return
        i = self.index.get(v)
        if i is not None:
            self._use(i, at)

    def _use(self, i: int, at: int) -> None:
        self.end[i] = max(self.end[i], at)
        if self.depth[i] < len(self.loops):    # defined outside an open loop: live to its end
            self.loops[self.depth[i]].append(i)

    def block(self, block) -> None:
        for op in I.block_ops(block):
            self.op(op)

    def op(self, op) -> None:
        name = op.name
        if name in dataflow.LOOP_OPS:
            return self.loop(op)
        if op.results and all(v in self.fusible for v in op.results):
            reads = set()
            for v in op.operands:
                reads.update(self.reads.get(v, ()) or ([self.index[v]] if v in self.index else []))
            for v in op.results:
                self.reads[v] = reads
            return
        at = self.new_point(name)
        for v in op.operands:
            self.use(v, at)
        if name in dataflow.BRANCH_OPS:
            for region in op.regions:
                self.block(region.blocks[0])
            at = self.new_point(name + ".exit")
        kind = CONST if name in _CONST_OPS else TEMP
        w = self.walk_index.get(op)
        for r, v in enumerate(op.results):
            self.define(v, ("op", w, r), at, kind)

    def loop(self, op) -> None:
        s = self.new_point(op.name)
        for v in op.operands:
            self.use(v, s)
        body, cond = op.regions[1].blocks[0], op.regions[0].blocks[0]
        self.loops.append([])
        begin = self.new_point(op.name + ".carry")
        w = self.walk_index.get(op)
        for i, a in enumerate(body.arguments):   # one buffer per carried value
            self.define(a, ("carry", w, i), begin)
        for a, b in zip(cond.arguments, body.arguments):
            if b in self.index:
                self.index[a] = self.index[b]   # cond reads the same carry buffers
        carries = [self.index[a] for a in body.arguments if a in self.index]
        self.block(cond)
        self.block(body)
        last = self.point - 1
        for i in self.loops.pop() + carries:
            self.end[i] = max(self.end[i], last)
            if self.depth[i] < len(self.loops):  # still outside an enclosing loop
                self.loops[self.depth[i]].append(i)
        e = self.new_point(op.name + ".exit")
        for r, v in enumerate(op.results):
            self.define(v, ("op", w, r), e)


def _fusible(ops) -> set:
    """Values whose producer and every user fuse (see FUSIBLE_PRODUCERS)."""
    users: dict = {}
    for op in ops:
        for v in op.operands:
            users.setdefault(v, []).append(op.name)
    # a value nobody reads gets no buffer either: the compiler deletes its op
    return {v for op in ops for v in op.results if not users.get(v) or (
        op.name in FUSIBLE_PRODUCERS and all(u in FUSING_CONSUMERS for u in users[v])
        and (len(users[v]) == 1 or op.name not in EXPENSIVE))}


def liveness(module, fusion: bool = True) -> Liveness:
    """Walk @main of a (global, inlined) module once into a Liveness. With `fusion`,
    values that a fusing compiler keeps in registers get no buffer (FUSIBLE_PRODUCERS)."""
    with module.context:
        f = I.main_func(module)
        wk = _Walk()
        ops = list(I.walk_ops(f))
        wk.walk_index = {op: k for k, op in enumerate(ops)}
        if fusion:
            wk.fusible = _fusible(ops)
        block = f.regions[0].blocks[0]
        entry = wk.new_point("entry")
        for i, a in enumerate(block.arguments):
            wk.define(a, ("arg", i), entry, ARG)
        wk.lv.num_args = len(wk.lv.keys)
        if wk.lv.num_args != len(block.arguments):
            raise RhinoError("memory: @main has a non-tensor argument; lower without tokens")
        for op in I.block_ops(block)[:-1]:
            wk.op(op)
        ret = I.block_ops(block)[-1]
        last = wk.new_point(ret.name)
        lv = wk.lv
        for v in ret.operands:
            i = wk.index[v]
            lv.results.append(i)
            if wk.kind[i] == TEMP or wk.kind[i] == CONST:
                wk.kind[i] = OUT
        for i in range(lv.num_args):
            wk.end[i] = last
        for i in lv.results:
            wk.end[i] = last
        lv.aliases = _donations(f, lv)
        lv.elem_bytes = np.array(wk.ebytes, dtype=np.int64)
        lv.start = np.array(wk.start, dtype=np.int64)
        lv.end = np.array(wk.end, dtype=np.int64)
        lv.kind = np.array(wk.kind, dtype=np.int8)
    return lv


def _donations(f, lv: Liveness) -> dict[int, int]:
    """result number -> argument index, from tf.aliasing_output / jax.buffer_donor."""
    if "arg_attrs" not in f.attributes:
        return {}
    out: dict[int, int] = {}
    donors = []
    arr = I.ir.ArrayAttr(f.attributes["arg_attrs"])
    for i in range(len(arr)):
        d = I.ir.DictAttr(arr[i])
        if "tf.aliasing_output" in d:
            out[I.ir.IntegerAttr(d["tf.aliasing_output"]).value] = i
        elif "jax.buffer_donor" in d:
            donors.append(i)
    for i in donors:                   # XLA pairs a donor with a result of the same type
        for r, v in enumerate(lv.results):
            if r not in out and lv.shapes[v] == lv.shapes[i] and \
                    str(lv.values[v].type) == str(lv.values[i].type):
                out[r] = i
                break
    return out


# ----------------------------------------------------------------------------- from the IR

def shardings_from_ir(module, lv: Liveness) -> tuple[dict, Mesh | None]:
    """{key: TensorSharding} from the annotations rhino-propagate writes, and the mesh."""
    from ..partition import annotations as A
    with module.context:
        mesh = A.module_mesh(module, "memory")
        f = I.main_func(module)
        out: dict = {}
        ops = list(I.walk_ops(f))
        for i in range(lv.num_args):
            s = A.arg_sharding(f, i)
            if s is not None:
                out[("arg", i)] = s
        for k, op in enumerate(ops):
            shs = A.op_shardings(op)
            if shs is None:
                continue
            for r, s in enumerate(shs):
                out[("op", k, r)] = s
                if op.name in dataflow.LOOP_OPS:   # the carry has the loop result's sharding
                    out[("carry", k, r)] = s
    return out, mesh


def memory_report(module, shardings: Mapping | None = None, mesh: Mesh | None = None,
                  roles: Mapping[int, str] | Sequence[str] | None = None,
                  fusion: bool = True) -> MemoryReport:
    """Breakdown per device of `module` (global program). Without `shardings`, the sdy
    annotations in the IR are used (run rhino-propagate first so every op has one)."""
    lv = liveness(module, fusion)
    if shardings is None:
        shardings, ir_mesh = shardings_from_ir(module, lv)
        mesh = mesh or ir_mesh
    return lv.report(shardings, mesh, roles)


def roles_from_paths(arg_paths: Sequence[str], signature: Sequence[str]) -> list[str]:
    """Role of each @main argument from its `rhino.arg_path` ("[1]['m']...") and the zoo
    signature ("params", "opt_state", "batch"): the leading index picks the entry."""
    names = {"params": "parameters", "opt_state": "optimizer_state", "batch": "batch",
             "inputs": "batch"}
    out = []
    for p in arg_paths:
        k = int(p[1:p.index("]")]) if p.startswith("[") else -1
        out.append(names.get(signature[k], signature[k]) if 0 <= k < len(signature) else "arguments")
    return out


__all__ = ["Liveness", "MemoryReport", "liveness", "memory_report", "peak_bytes",
           "shardings_from_ir", "roles_from_paths", "TEMP", "ARG", "OUT", "CONST"]
