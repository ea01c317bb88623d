"""partition/spmd/emit.py: the ops the partitioner inserts verify, carry the local-program
contract's attributes (DESIGN.md), and compute what they should when run as 4 XLA replicas."""
import numpy as np
import pytest

from harness import xla_oracle
from rhino_mlir import ir as I
from rhino_mlir.partition.spmd.emit import Emitter
from rhino_mlir.sharding import AxisRef, Mesh
from rhino_mlir.sharding.device_index import replica_groups

M = Mesh("mesh", (("x", 2), ("y", 2)))                 # device p = 2 * x + y
X, Y = AxisRef("x"), AxisRef("y")
SRC = """func.func @main(%a: tensor<4x6xf32>, %b: tensor<4x6xi1>) -> tensor<4x6xf32> {
  return %a : tensor<4x6xf32>
}"""


class Prog:
    """@main(a: 4x6xf32, b: 4x6xi1) with an emitter before its return."""

    def __init__(self):
        self.ctx = I.new_context()
        self.mod = I.parse_module(SRC, self.ctx)
        self.f = I.main_func(self.mod)
        self.block = self.f.regions[0].blocks[0]
        self.ret = I.block_ops(self.block)[-1]
        self.a, self.b = self.block.arguments
        self.em = Emitter(self.ret)

    def returning(self, outs) -> str:
        """Return `outs` from @main; the module must verify."""
        with self.ctx, I.ir.Location.unknown():
            with I.ir.InsertionPoint(self.ret):
                I.ir.Operation.create("func.return", operands=list(outs))
            self.ret.erase()
            ft = I.ir.FunctionType.get([self.a.type, self.b.type], [v.type for v in outs])
            self.f.attributes["function_type"] = I.ir.TypeAttr.get(ft)
        assert I.verify_error(self.mod) is None
        return str(self.mod)

    def ops(self, name):
        return [op for op in I.walk_ops(self.mod.operation) if op.name == name]


def test_collectives_carry_groups_channels_and_single_op_bodies():
    p = Prog()
    with p.ctx, I.ir.Location.unknown():
        em = p.em
        outs = [em.all_reduce(p.a, replica_groups(M, [X]), "max"),
                em.reduce_scatter(p.a, 1, replica_groups(M, [Y]), "add"),
                em.at(p.ret).all_gather(p.a, 0, replica_groups(M, [X, Y])),     # at(): one counter
                em.all_to_all(p.a, 0, 1, replica_groups(M, [Y])),
                em.collective_permute(p.a, [(0, 1), (1, 0)])]
    p.returning(outs)
    assert [str(v.type) for v in outs] == ["tensor<4x6xf32>", "tensor<4x3xf32>", "tensor<16x6xf32>",
                                           "tensor<2x12xf32>", "tensor<4x6xf32>"]
    names = ["stablehlo.all_reduce", "stablehlo.reduce_scatter", "stablehlo.all_gather",
             "stablehlo.all_to_all", "stablehlo.collective_permute"]
    coll = [p.ops(n)[0] for n in names]
    handles = [str(op.attributes["channel_handle"]) for op in coll]
    assert handles == [f"#stablehlo.channel_handle<handle = {i}, type = 1>" for i in range(1, 6)]
    for op in coll[:3]:
        assert "use_global_device_ids" in op.attributes
    assert str(coll[0].attributes["replica_groups"]) == "dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>"
    assert str(coll[1].attributes["replica_groups"]) == "dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>"
    assert str(coll[2].attributes["replica_groups"]) == "dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>"
    for op, body in ((coll[0], "stablehlo.maximum"), (coll[1], "stablehlo.add")):
        assert [o.name for o in I.block_ops(op.regions[0].blocks[0])] == [body, "stablehlo.return"]


def test_i1_travels_as_i8():
    p = Prog()
    with p.ctx, I.ir.Location.unknown():
        g = p.em.all_gather(p.b, 1, replica_groups(M, [Y]))
        t = p.em.all_to_all(p.b, 1, 0, replica_groups(M, [X]))
    p.returning([g, t])
    assert str(g.type) == "tensor<4x12xi1>" and str(t.type) == "tensor<8x3xi1>"
    for name in ("stablehlo.all_gather", "stablehlo.all_to_all"):
        (op,) = p.ops(name)
        assert str(I.elem_of(op.operands[0].type)) == "i8" and str(I.elem_of(op.results[0].type)) == "i8"


def test_slices_pads_and_crops_have_the_right_types():
    p = Prog()
    with p.ctx, I.ir.Location.unknown():
        em = p.em
        s = em.slice(p.a, [1, 0], [4, 6], [2, 4])          # rows 1, 3; cols 0, 4
        assert em.crop(p.a, 1, 6) == p.a and em.pad_to(p.a, 0, 4) == p.a   # no-ops add nothing
        c = em.crop(p.a, 1, 5)
        pd = em.pad_to(p.a, 0, 7)
        d = em.dynamic_slice_dim(p.a, 1, em.splat(2, I.make_tensor([], I.ir.IntegerType.get_signless(32))), 3)
        r = em.reshape(p.a, [2, 12])
        bc = em.broadcast_dims(em.slice(p.a, [0, 0], [1, 6]), I.make_tensor([3, 1, 6], I.elem_of(p.a.type)), [1, 2])
    p.returning([s, c, pd, d, r, bc])
    assert [I.shape_of(v.type) for v in (s, c, pd, d, r, bc)] == [[2, 2], [4, 5], [7, 6], [4, 3], [2, 12], [3, 1, 6]]


@pytest.mark.parametrize("elem,value,text", [("f32", float("-inf"), "0xFF800000"), ("bf16", float("inf"), "0x7F80"),
                                              ("f16", float("-inf"), "0xFC00"), ("i1", 1, "true"),
                                              ("i32", 7, "7"), ("f64", 0.5, "5.000000e-01")])
def test_splat_literals_parse(elem, value, text):
    p = Prog()
    with p.ctx, I.ir.Location.unknown():
        v = p.em.splat(value, I.make_tensor([2], I.ir.Type.parse(elem)))
    p.returning([v])
    (op,) = p.ops("stablehlo.constant")
    assert f"dense<{text}>" in str(op.attributes["value"])


def test_shard_index_of_unsplit_axes_is_a_constant():
    p = Prog()
    with p.ctx, I.ir.Location.unknown():
        v = p.em.shard_index(M, [])
    p.returning([v])
    assert p.ops("stablehlo.partition_id") == [] and I.splat_value(v) == 0


def test_emitted_ops_compute_per_device_values_on_4_xla_replicas():
    p = Prog()
    with p.ctx, I.ir.Location.unknown():
        em = p.em
        iyx = em.shard_index(M, [Y, X])                    # y major: 2 * y + x
        iy = em.shard_index(M, [Y])
        outs = [iyx,
                em.all_reduce(p.a, replica_groups(M, [X]), "max"),
                em.reduce_scatter(p.a, 1, replica_groups(M, [Y]), "add"),
                em.all_gather(p.b, 0, replica_groups(M, [X, Y])),
                em.all_to_all(p.a, 0, 1, replica_groups(M, [Y])),
                em.collective_permute(p.a, [(0, 1), (1, 2), (2, 3), (3, 0)]),
                em.dynamic_slice_dim(p.a, 1, em.mul_i32(iy, 3), 3),
                em.select(em.valid_mask([4, 6], 1, iyx, 5), p.a,
                          em.broadcast(em.splat(float("-inf"), I.make_tensor([], I.elem_of(p.a.type))), p.a.type))]
    text = p.returning(outs)
    rng = np.random.default_rng(0)
    a = [rng.standard_normal((4, 6)).astype(np.float32) for _ in range(4)]
    b = [rng.random((4, 6)) < 0.5 for _ in range(4)]
    got = xla_oracle._execute(xla_oracle.prepare_local(text, 4), [a, b], 4)
    col = np.arange(6)
    for d in range(4):
        x, y = divmod(d, 2)
        row = 2 * x                                        # first device of d's y-group
        want = [np.int32(2 * y + x),
                np.maximum(a[y], a[2 + y]),                # x-group {y, 2 + y}
                (a[row] + a[row + 1])[:, 3 * y:3 * y + 3],
                np.concatenate(b, axis=0),
                np.concatenate([a[row][2 * y:2 * y + 2], a[row + 1][2 * y:2 * y + 2]], axis=1),
                a[(d - 1) % 4],
                a[d][:, 3 * y:3 * y + 3],
                np.where(col + (2 * y + x) < 5, a[d], -np.inf)]
        for i, (g, w) in enumerate(zip(got[d], want)):
            np.testing.assert_array_equal(g, w, err_msg=f"device {d}, result {i}")
