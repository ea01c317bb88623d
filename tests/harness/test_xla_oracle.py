"""The harness itself, on hand-written local programs: it passes correct ones and
fails wrong ones (a missing all_reduce, unmasked padding, a wrong shard order)."""
import numpy as np
import pytest

from harness import layout
from harness.xla_oracle import (assert_close, check_local, prepare_local, run_global,
                                run_local)
from rhino_mlir.sharding import AxisRef, Mesh, TensorSharding, parse_sharding

MESH = '<["x"=2, "y"=2]>'
ADD = """({
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %s = stablehlo.add %a, %b : tensor<f32>
      stablehlo.return %s : tensor<f32>
    })"""

# y = lhs @ rhs, lhs [M, K] on [{"x"}, {"y"}], rhs [K, 4] on [{"y"}, {}], y on [{"x"}, {}]
GLOBAL = """
module @g {
  sdy.mesh @mesh = MESH
  func.func public @main(%lhs: tensor<MxKxf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>},
                         %rhs: tensor<Kx4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>})
      -> (tensor<Mx4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) {
    %0 = stablehlo.dot_general %lhs, %rhs, contracting_dims = [1] x [0] : (tensor<MxKxf32>, tensor<Kx4xf32>) -> tensor<Mx4xf32>
    return %0 : tensor<Mx4xf32>
  }
}"""

# local: mask the padded K columns/rows (input padding is NaN), dot, all_reduce over y
LOCAL = """
module @l attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  sdy.mesh @mesh = MESH
  func.func public @main(%lhs: tensor<mxkxf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>, rhino.global_type = tensor<MxKxf32>},
                         %rhs: tensor<kx4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>, rhino.global_type = tensor<Kx4xf32>})
      -> (tensor<mx4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>, rhino.global_type = tensor<Mx4xf32>}) {
    %pid = stablehlo.partition_id : tensor<ui32>
    %two = stablehlo.constant dense<2> : tensor<ui32>
    %yc = stablehlo.remainder %pid, %two : tensor<ui32>
    %yi = stablehlo.convert %yc : (tensor<ui32>) -> tensor<i32>
    %c = stablehlo.constant dense<k> : tensor<i32>
    %off = stablehlo.multiply %yi, %c : tensor<i32>
    %G = stablehlo.constant dense<K> : tensor<i32>
    %lim = stablehlo.subtract %G, %off : tensor<i32>
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %il = stablehlo.iota dim = 1 : tensor<mxkxi32>
    %ll = stablehlo.broadcast_in_dim %lim, dims = [] : (tensor<i32>) -> tensor<mxkxi32>
    %ml = stablehlo.compare LT, %il, %ll : (tensor<mxkxi32>, tensor<mxkxi32>) -> tensor<mxkxi1>
    %zl = stablehlo.broadcast_in_dim %zero, dims = [] : (tensor<f32>) -> tensor<mxkxf32>
    %lhs2 = stablehlo.select %ml, %lhs, %zl : tensor<mxkxi1>, tensor<mxkxf32>
    %ir = stablehlo.iota dim = 0 : tensor<kx4xi32>
    %lr = stablehlo.broadcast_in_dim %lim, dims = [] : (tensor<i32>) -> tensor<kx4xi32>
    %mr = stablehlo.compare LT, %ir, %lr : (tensor<kx4xi32>, tensor<kx4xi32>) -> tensor<kx4xi1>
    %zr = stablehlo.broadcast_in_dim %zero, dims = [] : (tensor<f32>) -> tensor<kx4xf32>
    %rhs2 = stablehlo.select %mr, %rhs, %zr : tensor<kx4xi1>, tensor<kx4xf32>
    %0 = stablehlo.dot_general LHS, RHS, contracting_dims = [1] x [0] : (tensor<mxkxf32>, tensor<kx4xf32>) -> tensor<mx4xf32>
    REDUCE
  }
}"""
ALL_REDUCE = ('%1 = "stablehlo.all_reduce"(%0) ' + ADD + ' {replica_groups = dense<[[0, 1], [2, 3]]> '
              ': tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, '
              'use_global_device_ids} : (tensor<mx4xf32>) -> tensor<mx4xf32>\n    return %1 : tensor<mx4xf32>')


def _fill(t, M, K, lhs="%lhs2", rhs="%rhs2", reduce=ALL_REDUCE):
    m, k = -(-M // 2), -(-K // 2)
    t = t.replace("REDUCE", reduce).replace("LHS", lhs).replace("RHS", rhs).replace("MESH", MESH)
    for a, b in (("M", M), ("K", K), ("m", m), ("k", k)):
        t = t.replace(f"tensor<{a}x", f"tensor<{b}x").replace(f"x{a}x", f"x{b}x").replace(f"dense<{a}>", f"dense<{b}>")
    return t


def _inputs(M, K, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((M, K)).astype(np.float32),
            rng.standard_normal((K, 4)).astype(np.float32)]


@pytest.mark.parametrize("M,K", [(8, 6), (7, 5), (3, 3)])
def test_sharded_contraction_matches_global(M, K):
    ins = _inputs(M, K)
    out, = check_local(_fill(LOCAL, M, K), _fill(GLOBAL, M, K), ins)
    np.testing.assert_allclose(out, ins[0] @ ins[1], rtol=1e-5, atol=1e-5)


def test_missing_all_reduce_fails():
    bad = _fill(LOCAL, 8, 6, reduce="return %0 : tensor<4x4xf32>")
    with pytest.raises(AssertionError, match="result 0 on device"):
        check_local(bad, _fill(GLOBAL, 8, 6), _inputs(8, 6))


def test_unmasked_padding_fails():
    # 5 does not divide by 2: device y=1 holds 2 real + 1 NaN padding column
    bad = _fill(LOCAL, 7, 5, lhs="%lhs", rhs="%rhs")
    with pytest.raises(AssertionError, match="NaN mismatch"):
        check_local(bad, _fill(GLOBAL, 7, 5), _inputs(7, 5))
    # ...but an even split has no padding, so the same program is right there
    check_local(_fill(LOCAL, 8, 6, lhs="%lhs", rhs="%rhs"), _fill(GLOBAL, 8, 6), _inputs(8, 6))


def test_wrong_replica_groups_fail():
    bad = _fill(LOCAL, 8, 6).replace("[[0, 1], [2, 3]]", "[[0, 2], [1, 3]]")
    with pytest.raises(AssertionError):
        check_local(bad, _fill(GLOBAL, 8, 6), _inputs(8, 6))


def test_copying_the_global_program_fails():
    # the "do-nothing partitioner": global types where local ones are expected
    g = _fill(GLOBAL, 8, 6).replace("module @g {", "module @g attributes {mhlo.num_partitions = 4 : i32} {")
    with pytest.raises(AssertionError, match="argument 0: local program expects"):
        check_local(g, _fill(GLOBAL, 8, 6), _inputs(8, 6))


COLLECTIVES = """
module @c attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  sdy.mesh @mesh = <["x"=4]>
  func.func public @main(%a: tensor<4x2xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
      -> (tensor<1x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>},
          tensor<4x2xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>},
          tensor<ui32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) {
    %0 = "stablehlo.all_to_all"(%a) {split_dimension = 0 : i64, concat_dimension = 1 : i64, split_count = 4 : i64,
          replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>}
          : (tensor<4x2xf32>) -> tensor<1x8xf32>
    %1 = "stablehlo.collective_permute"(%a) {source_target_pairs = dense<[[0, 0], [1, 1], [2, 2], [3, 3]]> : tensor<4x2xi64>,
          channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>} : (tensor<4x2xf32>) -> tensor<4x2xf32>
    %p = stablehlo.partition_id : tensor<ui32>
    %2 = stablehlo.reshape %p : (tensor<ui32>) -> tensor<1xui32>
    return %0, %1, %2 : tensor<1x8xf32>, tensor<4x2xf32>, tensor<1xui32>
  }
}"""


def test_rewrites_for_replicas():
    text = prepare_local(COLLECTIVES.replace("tensor<ui32> {sdy", "tensor<1xui32> {sdy"), 4)
    assert "partition_id" not in text and "replica_id" in text
    assert "channel_handle" not in text and "sdy." not in text
    assert "mhlo.num_replicas = 4" in text and "mhlo.num_partitions = 1" in text


def test_all_to_all_and_partition_id_run():
    text = COLLECTIVES.replace("tensor<ui32> {sdy", "tensor<1xui32> {sdy")
    x = np.arange(64, dtype=np.float32).reshape(16, 4)[:, :2].copy()   # [16, 2] on x
    outs = run_local(text, [x])
    # transpose-like reshard [{"x"}, {}] -> [{}, {"x"}] of the [16, 2] value seen as blocks
    for d in range(4):
        np.testing.assert_array_equal(outs[d][2], [d])
        np.testing.assert_array_equal(outs[d][1], x[4 * d:4 * d + 4])
        np.testing.assert_array_equal(outs[d][0].reshape(4, 2), x[d::4])


def test_run_global():
    ins = _inputs(8, 6)
    out, = run_global(_fill(GLOBAL, 8, 6), ins)
    np.testing.assert_allclose(out, ins[0] @ ins[1], rtol=1e-6)


# ----------------------------------------------------------------------------- layout

def test_layout_uneven_and_device_ids():
    mesh = Mesh("m", (("x", 4),), device_ids=(3, 2, 1, 0))
    sh = parse_sharding('#sdy.sharding<@m, [{"x"}]>')
    x = np.arange(10, dtype=np.int32)
    shards = layout.slice_global(x, sh, mesh)
    big = np.iinfo(np.int32).max
    # device 3 sits at position 0 and holds [0, 3); device 0 holds [9, 10) + padding
    assert shards[3].tolist() == [0, 1, 2] and shards[0].tolist() == [9, big, big]
    np.testing.assert_array_equal(layout.assemble(shards, [10], sh, mesh), x)
    assert layout.gather_groups(sh, mesh, 0) == [[3, 2, 1, 0]]


def test_layout_sub_axis_and_all_pad_shard():
    mesh = Mesh("m", (("x", 2), ("y", 4)))
    # dim 0 on "y":(2)2 then "x" is minor: shard = 2*ycoord_minor + x
    sh = TensorSharding("m", ((AxisRef("y", 2, 2), AxisRef("x")),))
    want = {}
    for d in range(8):
        x, y = divmod(d, 4)
        want[d] = ((y % 2) * 2 + x,)
    assert {d: layout.shard_index(sh, mesh, d) for d in range(8)} == want
    shards = layout.slice_global(np.arange(3.0, dtype=np.float32), sh, mesh)
    assert np.isnan(shards[5]).all()           # shard 3 of 3 elements is all padding
    groups = layout.gather_groups(sh, mesh, 0)
    # members differ in x and y%2 (the sub-axis), share y//2; listed in shard order
    assert groups == [[0, 4, 1, 5], [2, 6, 3, 7]]


def test_assemble_detects_disagreeing_replicas():
    mesh = Mesh("m", (("x", 2), ("y", 2)))
    sh = parse_sharding('#sdy.sharding<@m, [{"x"}, {}]>')
    shards = [np.zeros((1, 2), np.float32) for _ in range(4)]
    shards[3] = shards[3] + 1
    with pytest.raises(AssertionError, match="replicas differ"):
        layout.assemble(shards, [2, 2], sh, mesh)


@pytest.mark.parametrize("dtype,ok,bad", [
    (np.float32, 1.0 + 5e-6, 1.0 + 5e-4), (np.float16, 1.005, 1.05), (np.int32, 1, 2),
])
def test_assert_close_tolerances(dtype, ok, bad):
    ref = np.array([1.0, -2.0], np.float64).astype(dtype)
    assert_close(np.array([ok, -2.0]).astype(dtype), ref, dtype)
    with pytest.raises(AssertionError):
        assert_close(np.array([bad, -2.0]).astype(dtype), ref, dtype)
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0]).astype(dtype), ref, dtype)
