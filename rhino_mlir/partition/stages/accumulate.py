"""Gradient accumulation inside one program: @main's micro ops in a loop over K micro-batches.

The kinds come from partition/stages/microbatch.py (the same analysis rhino-pipeline-split
uses): `micro` ops run in the body of one `stablehlo.while` with their batch dims divided by K,
values reduced over the batch (`acc`: gradient sums, the loss sum, a max) are combined into loop
carries that start at the combiner's identity, and `post` ops (loss normalisation, optimizer)
run once after the loop. `const` ops are computed once before the loop and carried in unchanged,
or cloned into the body at the micro-batch shape a micro op needs (a broadcast of a bias to
(B/K, D)); operand-less ops (constants, iota) are simply cloned where they are used.

Micro-batch k holds the batch rows {k, K + k, 2K + k, ...}: a batch argument x (B, D) is
reshaped once to (B/K, K, D) and the body takes x[:, k, :] with a dynamic_slice. Strided rather
than contiguous, so that a batch dim sharded over devices keeps its sharding on the major part
(B/K) and every device slices its own rows: data parallelism and accumulation compose without
any collective in the loop. Which rows form a micro-batch does not change a sum over the batch.
Per-example results (an inference output) are written back into a (B/K, K, ...) buffer.

Sums of bf16/f16 values accumulate in f32 (converted back after the loop), so K partial sums
round no worse than the one-pass reduction they replace.
"""
from __future__ import annotations

from ... import ir as I
from ...analysis.local_rules import identity, local_attrs
from ...errors import RhinoError
from ...ir import ir
from .microbatch import MicroInfo, const_operand_views

_DROP = ("sdy.sharding_rule", "rhino.stage")
_WIDEN = {"bf16", "f16"}
_COMBINE = {"add": "stablehlo.add", "mul": "stablehlo.multiply",
            "max": "stablehlo.maximum", "min": "stablehlo.minimum"}


def _op(name: str, operands, result_types, attrs: dict | None = None, ip=None):
    return ir.Operation.create(name, results=list(result_types), operands=list(operands),
                               attributes=attrs or {}, ip=ip)


def _splat(t, value, ip):
    elem = I.elem_of(t)
    if str(elem).startswith(("f", "bf")):
        a = ir.FloatAttr.get(elem, float(value))
    else:
        a = ir.IntegerAttr.get(elem, int(value))
    return _op("stablehlo.constant", [], [t], {"value": ir.DenseElementsAttr.get_splat(t, a)}, ip).result


class _Scope:
    """Where values get built: the outer block of @main or the loop body (a temporary block
    whose arguments grow as the body needs carried values)."""

    def __init__(self, block, ip):
        self.block, self.ip = block, ip
        self.map: dict = {}            # (original value, view) -> value here


class LoopBuilder:
    def __init__(self, f, info: MicroInfo, who: str):
        self.f, self.info, self.who = f, info, who
        self.k = info.microbatches
        block = f.regions[0].blocks[0]
        self.args = list(block.arguments)
        self.arg_index = {a: i for i, a in enumerate(self.args)}
        self.producer = {v: op for op in info.ops for v in op.results}
        self.ret = I.block_ops(block)[-1]
        self.outer = _Scope(block, ir.InsertionPoint(info.ops[0] if info.ops else self.ret))
        self.i32 = ir.IntegerType.get_signless(32)
        self.scalar = I.make_tensor([], self.i32)
        self.stats = {"cloned": 0, "accumulators": [], "sliced_args": []}

    # ------------------------------------------------------------------ body block
    def _open_body(self):
        """A temporary function holding the body while it is built; arguments: carries."""
        mod_block = self.f.operation.parent.regions[0].blocks[0]
        with ir.InsertionPoint(mod_block):
            tmp = I.func.FuncOp("rhino_accumulate_body", ir.FunctionType.get([], []))
        tmp.add_entry_block()
        self.tmp = tmp
        body = tmp.regions[0].blocks[0]
        self.body = _Scope(body, ir.InsertionPoint(body))
        self.carries: list[dict] = []      # per body argument: role, init (outer value), yield
        self.counter = self._carry("counter", _splat(self.scalar, 0, self.outer.ip))

    def _carry(self, role: str, init, typ=None):
        a = self.body.block.add_argument(typ or init.type, ir.Location.unknown())
        self.carries.append({"role": role, "init": init, "arg": a, "yield": a})
        return a

    # ------------------------------------------------------------------ cloning
    def clone(self, op, scope: _Scope, operand_views, result_views):
        operands = [self.lookup(v, d, scope) for v, d in zip(op.operands, operand_views)]
        captured = self._captures(op, scope)
        new = op.clone(ip=scope.ip)
        for key in _DROP:
            if key in new.attributes:
                del new.attributes[key]
        for i, v in enumerate(operands):
            new.operands[i] = v
        for o in (I.walk_ops(new) if captured else ()):
            for i, x in enumerate(list(o.operands)):
                if x in captured:
                    o.operands[i] = captured[x]
        for r, d in zip(new.results, result_views):
            if d is not None and I.is_tensor(r.type):
                r.set_type(I.make_tensor(self.info.shrunk(I.shape_of(r.type), d), I.elem_of(r.type)))
        shapes = lambda vs: [I.shape_of(x.type) if I.is_tensor(x.type) else [] for x in vs]  # noqa: E731
        local_attrs(new, shapes(op.operands), shapes(new.operands), shapes(op.results), shapes(new.results))
        self.stats["cloned"] += 1
        for r, nr, d in zip(op.results, new.results, result_views):
            scope.map[(r, d)] = nr
        return new

    def _captures(self, op, scope) -> dict:
        """Values defined above `op` that its regions read (a const while loop, a case)."""
        return {x: self.lookup(x, None, scope) for x in I.captured_values(op)}

    # ------------------------------------------------------------------ values
    def lookup(self, v, view, scope: _Scope):
        if (v, view) in scope.map:
            return scope.map[(v, view)]
        out = self._outer(v, view) if scope is self.outer else self._inner(v, view)
        scope.map[(v, view)] = out
        return out

    def _outer(self, v, view):
        if v in self.arg_index:
            return v
        kind = self.info.vkind.get(v, "const")
        if kind == "const":
            return self._materialize(v, None, self.outer)
        raise RhinoError(f"{self.who}: internal error: {I.value_name(v)} ({kind}) used before its loop")

    def _inner(self, v, view):
        info = self.info
        if v in self.arg_index:
            if view is None:
                return self._carry("invariant", v)
            return self._slice(v, view)
        kind = info.vkind.get(v, "const")
        if kind == "micro":
            raise RhinoError(f"{self.who}: internal error: {I.value_name(v)} read before it is computed")
        if kind != "const":
            raise RhinoError(f"{self.who}: internal error: {I.value_name(v)} ({kind}) read in the loop")
        op = self.producer[v]
        if view is not None or not len(op.operands):
            return self._materialize(v, view, self.body)
        return self._carry("invariant", self.lookup(v, None, self.outer))

    def _materialize(self, v, view, scope):
        op = self.producer[v]
        k = list(op.results).index(v)
        views = const_operand_views(op, k, view)
        rviews = [view if i == k else None for i in range(len(op.results))]
        new = self.clone(op, scope, views, rviews)
        return new.results[k]

    def _split(self, shape, d) -> list[int]:
        """(.., B, ..) -> (.., B/K, K, ..): micro-batch k is index k of dim d + 1."""
        return list(shape[:d]) + [shape[d] // self.k, self.k] + list(shape[d + 1:])

    def _slice(self, v, d):
        shape, elem = I.shape_of(v.type), I.elem_of(v.type)
        whole = _op("stablehlo.reshape", [v], [I.make_tensor(self._split(shape, d), elem)],
                    ip=self.outer.ip).result
        self.stats["sliced_args"].append([self.arg_index[v], d])
        carried = self._carry("invariant", whole)
        zero = _splat(self.scalar, 0, self.body.ip)
        starts = [self.counter if i == d + 1 else zero for i in range(len(shape) + 1)]
        sizes = self._split(shape, d)
        sizes[d + 1] = 1
        part = _op("stablehlo.dynamic_slice", [carried] + starts, [I.make_tensor(sizes, elem)],
                   {"slice_sizes": I.i64_array(sizes)}, self.body.ip).result
        return _op("stablehlo.reshape", [part], [I.make_tensor(self.info.shrunk(shape, d), elem)],
                   ip=self.body.ip).result

    # ------------------------------------------------------------------ carries out
    def accumulate(self, v, kind: str, partial) -> None:
        elem = I.elem_of(v.type)
        wide = str(elem) in _WIDEN and kind in ("add", "mul")
        t = I.make_tensor(I.shape_of(v.type), ir.F32Type.get()) if wide else v.type
        init = _splat(t, identity(kind, I.elem_of(t)), self.outer.ip)
        a = self._carry("acc", init)
        x = _op("stablehlo.convert", [partial], [t], ip=self.body.ip).result if wide else partial
        self.carries[-1]["yield"] = _op(_COMBINE[kind], [a, x], [t], ip=self.body.ip).result
        self.carries[-1]["value"] = v
        self.stats["accumulators"].append({"combiner": kind, "type": str(t)})

    def collect(self, v) -> None:
        """A per-example value returned by @main: written into a (.., B/K, K, ..) buffer."""
        d = self.info.view.get(v)
        if d is None:
            raise RhinoError(f"{self.who}: @main returns {I.value_name(v)}, a per-micro-batch value "
                             f"without a batch dimension; it cannot be assembled from micro-batches")
        shape, elem = I.shape_of(v.type), I.elem_of(v.type)
        buf = self._carry("out", _splat(I.make_tensor(self._split(shape, d), elem), 0, self.outer.ip))
        part = self.lookup(v, d, self.body)
        sizes = self._split(shape, d)
        sizes[d + 1] = 1
        upd = _op("stablehlo.reshape", [part], [I.make_tensor(sizes, elem)], ip=self.body.ip).result
        zero = _splat(self.scalar, 0, self.body.ip)
        starts = [self.counter if i == d + 1 else zero for i in range(len(shape) + 1)]
        self.carries[-1]["yield"] = _op("stablehlo.dynamic_update_slice", [buf, upd] + starts,
                                        [buf.type], ip=self.body.ip).result
        self.carries[-1]["value"] = v

    # ------------------------------------------------------------------ the loop
    def build(self) -> dict:
        info = self.info
        self._open_body()
        returned_micro = [v for v in dict.fromkeys(self.ret.operands) if info.vkind.get(v) == "micro"]
        for idx, (op, kind) in enumerate(zip(info.ops, info.kind)):
            if kind != "micro":
                continue
            views = info.operand_views.get(idx) or [None] * len(op.operands)
            new = self.clone(op, self.body, views, [info.view.get(r) for r in op.results])
            for r, nr in zip(op.results, new.results):
                if info.vkind.get(r) == "acc":
                    self.accumulate(r, info.acc[r], nr)
        for v in returned_micro:
            self.collect(v)
        results = self._loop()
        for c, r in zip(self.carries, results):
            v = c.get("value")
            if v is None:
                continue
            if c["role"] == "acc":
                out = r if r.type == v.type else _op("stablehlo.convert", [r], [v.type], ip=self.outer.ip).result
            else:
                out = _op("stablehlo.reshape", [r], [v.type], ip=self.outer.ip).result
            self.outer.map[(v, None)] = out
        for op, kind in zip(info.ops, info.kind):
            if kind == "post":
                self.clone(op, self.outer, [None] * len(op.operands), [None] * len(op.results))
        outs = [self.lookup(v, None, self.outer) for v in self.ret.operands]
        I.func.ReturnOp(outs, ip=self.outer.ip)
        for op in reversed(info.ops + [self.ret]):
            op.erase()
        return {"microbatches": self.k, "batch": info.batch, "cloned_ops": self.stats["cloned"],
                "accumulators": self.stats["accumulators"], "sliced_args": self.stats["sliced_args"],
                "carries": len(self.carries)}

    def _loop(self) -> list:
        """The while op over the carries of the temporary body; returns its results."""
        types = [c["arg"].type for c in self.carries]
        one = _splat(self.scalar, 1, self.body.ip)
        self.carries[0]["yield"] = _op("stablehlo.add", [self.counter, one], [self.scalar], ip=self.body.ip).result
        w = I.stablehlo.WhileOp(types, [c["init"] for c in self.carries], ip=self.outer.ip)
        cond = w.regions[0].blocks.append(*types)
        with ir.InsertionPoint(cond):
            n = _splat(self.scalar, self.k, None)
            lt = _op("stablehlo.compare", [cond.arguments[0], n], [I.make_tensor([], ir.IntegerType.get_signless(1))],
                     {"comparison_direction": I.attr("#stablehlo<comparison_direction LT>")})
            I.stablehlo.ReturnOp([lt.result])
        body = w.regions[1].blocks.append(*types)
        with ir.InsertionPoint(body):
            ret = I.stablehlo.ReturnOp([c["yield"] for c in self.carries])
        for op in I.block_ops(self.body.block):
            op.move_before(ret)
        for c, a in zip(self.carries, body.arguments):
            c["arg"].replace_all_uses_with(a)
        self.tmp.operation.erase()
        return list(w.results)


def build_loop(f, info: MicroInfo, who: str) -> dict:
    """Rewrite @main `f` (analysed by microbatch.analyze) into the accumulation loop."""
    return LoopBuilder(f, info, who).build()
