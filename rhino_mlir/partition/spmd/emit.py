"""IR builders for what the partitioner inserts: collectives, shard-indexed slices, masks.

All ops are created generically (`Operation.create`) so the attribute spelling is the
textual StableHLO one; the caller owns the insertion point.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ... import ir as I
from ...ir import ir
from ...sharding import AxisRef, Mesh
from ...sharding.device_index import index_table

COMBINERS = {"add": "stablehlo.add", "mul": "stablehlo.multiply",
             "min": "stablehlo.minimum", "max": "stablehlo.maximum"}


@dataclass
class Emitter:
    """Creates ops before `anchor` (an op) or at the end of `block` before its terminator."""
    anchor: object
    counter: list = field(default_factory=lambda: [0])   # shared channel-id counter

    def at(self, anchor) -> "Emitter":
        return Emitter(anchor, self.counter)

    def _create(self, name, results, operands, attrs=None, regions=0):
        with ir.InsertionPoint(self.anchor), self.anchor.location:
            return ir.Operation.create(name, results=results, operands=list(operands),
                                       attributes=attrs or {}, regions=regions)

    def op(self, name, result_type, operands, attrs=None) -> ir.Value:
        return self._create(name, [result_type], operands, attrs).result

    # ---------------------------------------------------------------- scalars & constants
    def constant(self, text: str) -> ir.Value:
        a = I.attr(text)
        return self.op("stablehlo.constant", a.type, [], {"value": a})

    def splat(self, value, t: ir.Type) -> ir.Value:
        rt = ir.RankedTensorType(t)
        return self.constant(f"dense<{_lit(value, rt.element_type)}> : {rt}")

    def shard_index(self, mesh: Mesh, axes: Sequence[AxisRef]) -> ir.Value:
        """tensor<i32>: this device's shard index over `axes` (a table indexed by partition_id)."""
        table = index_table(mesh, axes)
        i32 = ir.IntegerType.get_signless(32)
        scalar = I.make_tensor([], i32)
        if len(set(table)) == 1:
            return self.splat(table[0], scalar)
        pid = self.op("stablehlo.partition_id", I.make_tensor([], ir.IntegerType.get_unsigned(32)), [])
        pid = self.op("stablehlo.convert", scalar, [pid])
        tab = self.constant(f"dense<[{', '.join(map(str, table))}]> : tensor<{len(table)}xi32>")
        one = I.make_tensor([1], i32)
        v = self.op("stablehlo.dynamic_slice", one, [tab, pid], {"slice_sizes": I.i64_array([1])})
        return self.op("stablehlo.reshape", scalar, [v])

    def mul_i32(self, v: ir.Value, k: int) -> ir.Value:
        if k == 1:
            return v
        return self.op("stablehlo.multiply", v.type, [v, self.splat(k, v.type)])

    # ---------------------------------------------------------------- data movement
    def slice(self, x, starts, limits, strides=None) -> ir.Value:
        t = ir.RankedTensorType(x.type)
        strides = strides or [1] * t.rank
        shape = [-(-(l - s) // st) for s, l, st in zip(starts, limits, strides)]
        return self.op("stablehlo.slice", I.make_tensor(shape, t.element_type), [x],
                       {"start_indices": I.i64_array(starts), "limit_indices": I.i64_array(limits),
                        "strides": I.i64_array(strides)})

    def crop(self, x, dim: int, size: int) -> ir.Value:
        shape = I.shape_of(x.type)
        if shape[dim] == size:
            return x
        lim = list(shape)
        lim[dim] = size
        return self.slice(x, [0] * len(shape), lim)

    def pad_to(self, x, dim: int, size: int) -> ir.Value:
        t = ir.RankedTensorType(x.type)
        shape = list(t.shape)
        if shape[dim] == size:
            return x
        hi = [0] * t.rank
        hi[dim] = size - shape[dim]
        shape[dim] = size
        zero = self.splat(0, I.make_tensor([], t.element_type))
        return self.op("stablehlo.pad", I.make_tensor(shape, t.element_type), [x, zero],
                       {"edge_padding_low": I.i64_array([0] * t.rank), "edge_padding_high": I.i64_array(hi),
                        "interior_padding": I.i64_array([0] * t.rank)})

    def dynamic_slice_dim(self, x, dim: int, start: ir.Value, size: int) -> ir.Value:
        t = ir.RankedTensorType(x.type)
        zero = self.splat(0, start.type)
        starts = [start if d == dim else zero for d in range(t.rank)]
        sizes = list(t.shape)
        sizes[dim] = size
        return self.op("stablehlo.dynamic_slice", I.make_tensor(sizes, t.element_type), [x, *starts],
                       {"slice_sizes": I.i64_array(sizes)})

    # ---------------------------------------------------------------- collectives
    def _channel(self) -> ir.Attribute:
        self.counter[0] += 1
        return I.attr(f"#stablehlo.channel_handle<handle = {self.counter[0]}, type = 1>")

    @staticmethod
    def _groups(groups: Sequence[Sequence[int]]) -> ir.Attribute:
        rows = ", ".join("[" + ", ".join(map(str, g)) + "]" for g in groups)
        return I.attr(f"dense<[{rows}]> : tensor<{len(groups)}x{len(groups[0])}xi64>")

    def _reducer(self, op, elem: ir.Type, kind: str) -> None:
        st = I.make_tensor([], elem)
        block = op.regions[0].blocks.append(st, st)
        with ir.InsertionPoint(block), self.anchor.location:
            s = ir.Operation.create(COMBINERS[kind], results=[st], operands=[block.arguments[0], block.arguments[1]])
            ir.Operation.create("stablehlo.return", operands=[s.result])

    def all_reduce(self, x, groups, kind: str) -> ir.Value:
        op = self._create("stablehlo.all_reduce", [x.type], [x],
                          {"replica_groups": self._groups(groups), "channel_handle": self._channel(),
                           "use_global_device_ids": ir.UnitAttr.get()}, regions=1)
        self._reducer(op, I.elem_of(x.type), kind)
        return op.result

    def reduce_scatter(self, x, dim: int, groups, kind: str) -> ir.Value:
        t = ir.RankedTensorType(x.type)
        shape = list(t.shape)
        shape[dim] //= len(groups[0])
        op = self._create("stablehlo.reduce_scatter", [I.make_tensor(shape, t.element_type)], [x],
                          {"scatter_dimension": I.attr(f"{dim} : i64"), "replica_groups": self._groups(groups),
                           "channel_handle": self._channel(), "use_global_device_ids": ir.UnitAttr.get()},
                          regions=1)
        self._reducer(op, t.element_type, kind)
        return op.result

    def _widen(self, x):
        """i1 travels as i8: IREE's collectives do not move i1 tensors."""
        if str(I.elem_of(x.type)) != "i1":
            return x, None
        return self.op("stablehlo.convert", I.make_tensor(I.shape_of(x.type), ir.IntegerType.get_signless(8)),
                       [x]), x.type

    def _narrow(self, y, old):
        if old is None:
            return y
        return self.op("stablehlo.convert", I.make_tensor(I.shape_of(y.type), I.elem_of(old)), [y])

    def all_gather(self, x, dim: int, groups) -> ir.Value:
        x, old = self._widen(x)
        return self._narrow(self._all_gather(x, dim, groups), old)

    def _all_gather(self, x, dim: int, groups) -> ir.Value:
        t = ir.RankedTensorType(x.type)
        shape = list(t.shape)
        shape[dim] *= len(groups[0])
        return self.op("stablehlo.all_gather", I.make_tensor(shape, t.element_type), [x],
                       {"all_gather_dim": I.attr(f"{dim} : i64"), "replica_groups": self._groups(groups),
                        "channel_handle": self._channel(), "use_global_device_ids": ir.UnitAttr.get()})

    def all_to_all(self, x, split_dim: int, concat_dim: int, groups) -> ir.Value:
        x, old = self._widen(x)
        return self._narrow(self._all_to_all(x, split_dim, concat_dim, groups), old)

    def _all_to_all(self, x, split_dim: int, concat_dim: int, groups) -> ir.Value:
        t = ir.RankedTensorType(x.type)
        n = len(groups[0])
        shape = list(t.shape)
        shape[split_dim] //= n
        shape[concat_dim] *= n
        return self.op("stablehlo.all_to_all", I.make_tensor(shape, t.element_type), [x],
                       {"split_dimension": I.attr(f"{split_dim} : i64"),
                        "concat_dimension": I.attr(f"{concat_dim} : i64"),
                        "split_count": I.attr(f"{n} : i64"), "replica_groups": self._groups(groups),
                        "channel_handle": self._channel()})

    def collective_permute(self, x, pairs: Sequence[tuple[int, int]]) -> ir.Value:
        rows = ", ".join(f"[{a}, {b}]" for a, b in pairs)
        return self.op("stablehlo.collective_permute", x.type, [x],
                       {"source_target_pairs": I.attr(f"dense<[{rows}]> : tensor<{len(pairs)}x2xi64>"),
                        "channel_handle": self._channel()})

    # ---------------------------------------------------------------- masking
    def valid_mask(self, shape: Sequence[int], dim: int, start: ir.Value, limit: int) -> ir.Value:
        """i1 tensor: global index along `dim` (local iota + start) < limit."""
        i32 = ir.IntegerType.get_signless(32)
        it = I.make_tensor(shape, i32)
        iota = self.op("stablehlo.iota", it, [], {"iota_dimension": I.attr(f"{dim} : i64")})
        off = self.op("stablehlo.broadcast_in_dim", it, [start], {"broadcast_dimensions": I.i64_array([])})
        idx = self.op("stablehlo.add", it, [iota, off])
        lim = self.splat(limit, it)
        return self.op("stablehlo.compare", I.make_tensor(shape, ir.IntegerType.get_signless(1)), [idx, lim],
                       {"comparison_direction": I.attr("#stablehlo<comparison_direction LT>")})

    def select(self, mask, a, b) -> ir.Value:
        return self.op("stablehlo.select", a.type, [mask, a, b])

    def reshape(self, x, shape) -> ir.Value:
        return self.op("stablehlo.reshape", I.make_tensor(list(shape), I.elem_of(x.type)), [x])

    def broadcast_dims(self, x, t: ir.Type, dims) -> ir.Value:
        """Broadcast x into type t, x's dims landing on `dims` of the result."""
        return self.op("stablehlo.broadcast_in_dim", t, [x], {"broadcast_dimensions": I.i64_array(list(dims))})

    def broadcast(self, scalar, t: ir.Type) -> ir.Value:
        return self.op("stablehlo.broadcast_in_dim", t, [scalar], {"broadcast_dimensions": I.i64_array([])})


_INF_BITS = {"f16": (0x7C00, 0xFC00), "bf16": (0x7F80, 0xFF80), "f32": (0x7F800000, 0xFF800000),
             "f64": (0x7FF0000000000000, 0xFFF0000000000000)}


def _lit(value, elem: ir.Type) -> str:
    """Textual literal of `value` as element type `elem` (infinities as hex bit patterns)."""
    s = str(elem)
    if s == "i1":
        return "true" if value else "false"
    if s.startswith(("f", "bf")):
        v = float(value)
        if v in (float("inf"), float("-inf")):
            pos, neg = _INF_BITS[s]
            return hex(pos if v > 0 else neg)
        return repr(v)
    return str(int(value))
