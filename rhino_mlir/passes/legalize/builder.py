"""IR builder for the IREE legalizations: the partitioner's Emitter plus the few ops it lacks.

Everything is created generically (`Operation.create`, textual StableHLO attribute
spelling) before an anchor op, as in partition/spmd/emit.py. `apply_region` evaluates a
scalar reducer/selector region (`^bb0(%a: tensor<f32>, %b: tensor<f32>)`) elementwise on
whole tensors, by re-creating its ops with shaped result types.
"""
from __future__ import annotations

from typing import Sequence

from ... import ir as I
from ...ir import ir
from ...partition.spmd.emit import Emitter

I1 = "i1"

# ops whose every result element depends only on the same element of each operand:
# re-created with shaped types they compute the region on whole tensors
ELEMENTWISE = frozenset("stablehlo." + n for n in (
    "add", "subtract", "multiply", "divide", "remainder", "maximum", "minimum", "power", "atan2",
    "and", "or", "xor", "not", "negate", "abs", "sign", "compare", "select", "convert", "clamp",
    "exponential", "exponential_minus_one", "log", "log_plus_one", "sqrt", "rsqrt", "cbrt",
    "floor", "ceil", "round_nearest_even", "round_nearest_afz", "is_finite", "tanh", "logistic",
    "sine", "cosine", "tan", "shift_left", "shift_right_logical", "shift_right_arithmetic",
    "popcnt", "count_leading_zeros", "real", "imag", "complex", "bitcast_convert"))


def i1() -> ir.Type:
    return ir.IntegerType.get_signless(1)


class Builder(Emitter):
    """Emitter with transpose, general pad, iota, compare, logic and region evaluation."""

    def at(self, anchor) -> "Builder":
        return Builder(anchor, self.counter)

    def create(self, name, results, operands, attrs=None, regions=0):
        """A generic op (with `regions` empty regions for the caller to fill)."""
        return self._create(name, results, operands, attrs, regions)

    def like(self, x, shape=None, elem=None) -> ir.RankedTensorType:
        t = ir.RankedTensorType(x.type)
        return I.make_tensor(t.shape if shape is None else list(shape),
                             t.element_type if elem is None else elem)

    def transpose(self, x, perm: Sequence[int]) -> ir.Value:
        perm = list(perm)
        if perm == list(range(len(perm))):
            return x
        shape = I.shape_of(x.type)
        return self.op("stablehlo.transpose", self.like(x, [shape[p] for p in perm]), [x],
                       {"permutation": I.i64_array(perm)})

    def broadcast_dims(self, x, t: ir.Type, dims) -> ir.Value:
        same = str(x.type) == str(t) and list(dims) == list(range(len(I.shape_of(t))))
        return x if same else super().broadcast_dims(x, t, dims)

    def reshape(self, x, shape) -> ir.Value:
        return x if I.shape_of(x.type) == list(shape) else super().reshape(x, shape)

    def pad(self, x, value, lo: Sequence[int], hi: Sequence[int], interior: Sequence[int] | None = None):
        """stablehlo.pad with a scalar (rank-0) padding value."""
        interior = list(interior or [0] * len(lo))
        if not any(lo) and not any(hi) and not any(interior):
            return x
        shape = [l + n + (n - 1) * i + h if n else l + h
                 for n, l, h, i in zip(I.shape_of(x.type), lo, hi, interior)]
        return self.op("stablehlo.pad", self.like(x, shape), [x, value],
                       {"edge_padding_low": I.i64_array(lo), "edge_padding_high": I.i64_array(hi),
                        "interior_padding": I.i64_array(interior)})

    def scalar(self, value, elem: ir.Type) -> ir.Value:
        return self.splat(value, I.make_tensor([], elem))

    def iota(self, shape, dim: int, elem: ir.Type) -> ir.Value:
        return self.op("stablehlo.iota", I.make_tensor(list(shape), elem), [],
                       {"iota_dimension": I.attr(f"{dim} : i64")})

    def compare(self, a, b, direction: str) -> ir.Value:
        return self.op("stablehlo.compare", self.like(a, elem=i1()), [a, b],
                       {"comparison_direction": I.attr(f"#stablehlo<comparison_direction {direction}>")})

    def both(self, a, b):
        """Logical and of two i1 tensors, either of which may be None (= all true)."""
        if a is None or b is None:
            return b if a is None else a
        return self.op("stablehlo.and", a.type, [a, b])

    def either(self, a, b) -> ir.Value:
        return self.op("stablehlo.or", a.type, [a, b])

    def negation(self, a) -> ir.Value:
        return self.op("stablehlo.not", a.type, [a])

    def convert(self, x, elem: ir.Type) -> ir.Value:
        if str(I.elem_of(x.type)) == str(elem):
            return x
        return self.op("stablehlo.convert", self.like(x, elem=elem), [x])

    def concat(self, xs: Sequence, dim: int) -> ir.Value:
        if len(xs) == 1:
            return xs[0]
        shape = I.shape_of(xs[0].type)
        shape[dim] = sum(I.shape_of(x.type)[dim] for x in xs)
        return self.op("stablehlo.concatenate", self.like(xs[0], shape), list(xs),
                       {"dimension": I.attr(f"{dim} : i64")})

    def apply_region(self, region, args: Sequence, shape: Sequence[int]) -> list | None:
        """The values a scalar region returns, computed elementwise on `args` (all of
        `shape`); None if the region holds anything but elementwise ops and splat constants."""
        block = region.blocks[0]
        env = {block.arguments[i]: a for i, a in enumerate(args)}
        for op in I.block_ops(block):
            if op.name == "stablehlo.return":
                return [self._operand(v, env, shape) for v in op.operands]
            if op.name == "stablehlo.constant":
                value = op.attributes["value"]
                if not ir.DenseElementsAttr(value).is_splat:
                    return None
                t = I.make_tensor(shape, I.elem_of(op.results[0].type))
                env[op.results[0]] = self.op("stablehlo.constant", t, [], {"value": I.splat_attr(value, t)})
                continue
            if op.name not in ELEMENTWISE or len(op.regions):
                return None
            if any(I.shape_of(r.type) for r in op.results):
                return None
            operands = [self._operand(v, env, shape) for v in op.operands]
            attrs = {k: op.attributes[k] for k in op.attributes}
            new = self._create(op.name, [I.make_tensor(shape, I.elem_of(r.type)) for r in op.results],
                               operands, attrs)
            for r, n in zip(op.results, new.results):
                env[r] = n
        return None

    def _operand(self, v, env, shape):
        if v in env:
            return env[v]
        # a rank-0 value from outside the region: the same for every element
        return self.broadcast(v, I.make_tensor(shape, I.elem_of(v.type)))


def elementwise(region) -> bool:
    """Whether Builder.apply_region can evaluate `region` on whole tensors."""
    for op in I.block_ops(region.blocks[0]):
        if op.name == "stablehlo.constant":
            if not ir.DenseElementsAttr(op.attributes["value"]).is_splat:
                return False
        elif op.name != "stablehlo.return" and (op.name not in ELEMENTWISE or len(op.regions)
                                                 or any(I.shape_of(r.type) for r in op.results)):
            return False
    return len(region.blocks) == 1


def move_region(src, dst) -> None:
    """Move the single block of region `src` into the empty region `dst`."""
    old = src.blocks[0]
    new = dst.blocks.append(*[a.type for a in old.arguments])
    for a, b in zip(old.arguments, new.arguments):
        a.replace_all_uses_with(b)
    for op in I.block_ops(old):
        op.detach_from_parent()
        ir.InsertionPoint(new).insert(op)


def static(*values) -> bool:
    return all(isinstance(v.type, ir.RankedTensorType) and I.is_static(v.type) for v in values)
