"""analysis/cost.py: op formulas and the ring formulas shared with the partitioner."""
import pytest

from rhino_mlir import ir as I
from rhino_mlir.analysis.cost import collective_bytes, op_bytes, op_flops, ring_bytes


@pytest.mark.parametrize("kind, nbytes, n, expected", [
    ("all_gather", 1024, 4, 768.0),
    ("reduce_scatter", 1024, 4, 768.0),
    ("all_reduce", 1024, 4, 1536.0),
    ("stablehlo.all_reduce", 1024, 2, 1024.0),
    ("all_to_all", 1024, 8, 896.0),
    ("collective_permute", 1024, 8, 1024.0),
    ("all_reduce", 1024, 1, 0.0),
])
def test_ring_bytes(kind, nbytes, n, expected):
    assert ring_bytes(kind, nbytes, n) == expected


def test_ring_bytes_unknown_kind():
    with pytest.raises(ValueError, match="unknown collective 'broadcast'"):
        ring_bytes("broadcast", 8, 2)


def ops_of(text):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    return m, {op.name: op for op in I.walk_ops(I.main_func(m).operation)}


def test_empty_replica_groups_mean_every_replica():
    _, ops = ops_of("""
    module attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 8 : i32} {
      func.func @main(%x: tensor<2x4xf32>) -> tensor<16x4xf32> {
        %0 = "stablehlo.all_gather"(%x) {all_gather_dim = 0 : i64, replica_groups = dense<> : tensor<0x0xi64>} : (tensor<2x4xf32>) -> tensor<16x4xf32>
        return %0 : tensor<16x4xf32>
      }
    }""")
    ag = ops["stablehlo.all_gather"]
    assert collective_bytes(ag) == ring_bytes("all_gather", 16 * 4 * 4, 8) == 224.0
    assert collective_bytes(ops["func.return"]) == 0.0


def test_grouped_convolution_and_reduce_window():
    _, ops = ops_of("""
    func.func @main(%img: tensor<2x16x16x8xf32>, %k: tensor<3x3x2x8xf32>) -> tensor<2x7x7x8xf32> {
      %0 = stablehlo.convolution(%img, %k) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 4 : i64} : (tensor<2x16x16x8xf32>, tensor<3x3x2x8xf32>) -> tensor<2x14x14x8xf32>
      %cst = stablehlo.constant dense<0.0> : tensor<f32>
      %1 = "stablehlo.reduce_window"(%0, %cst) ({
        ^bb0(%a: tensor<f32>, %b: tensor<f32>):
          %m = stablehlo.maximum %a, %b : tensor<f32>
          stablehlo.return %m : tensor<f32>
      }) {window_dimensions = array<i64: 1, 2, 2, 1>, window_strides = array<i64: 1, 2, 2, 1>} : (tensor<2x14x14x8xf32>, tensor<f32>) -> tensor<2x7x7x8xf32>
      return %1 : tensor<2x7x7x8xf32>
    }""")
    conv = ops["stablehlo.convolution"]
    # 8 input features in 4 groups: each output sees 3*3*2 inputs
    assert op_flops(conv) == 2 * (2 * 14 * 14 * 8) * 9 * (8 // 4)
    assert op_bytes(conv) == 4 * (2 * 16 * 16 * 8 + 3 * 3 * 2 * 8 + 2 * 14 * 14 * 8)
    assert op_flops(ops["stablehlo.reduce_window"]) == 2 * 7 * 7 * 8 * 4
    assert op_flops(ops["stablehlo.constant"]) == 0


def test_variadic_reduce_counts_each_input():
    _, ops = ops_of("""
    func.func @main(%v: tensor<4x6xf32>, %i: tensor<4x6xi32>) -> (tensor<4xf32>, tensor<4xi32>) {
      %c0 = stablehlo.constant dense<0.0> : tensor<f32>
      %c1 = stablehlo.constant dense<0> : tensor<i32>
      %0:2 = stablehlo.reduce(%v init: %c0), (%i init: %c1) across dimensions = [1] : (tensor<4x6xf32>, tensor<4x6xi32>, tensor<f32>, tensor<i32>) -> (tensor<4xf32>, tensor<4xi32>)
       reducer(%a: tensor<f32>, %b: tensor<f32>) (%c: tensor<i32>, %d: tensor<i32>) {
        %m = stablehlo.maximum %a, %b : tensor<f32>
        %n = stablehlo.maximum %c, %d : tensor<i32>
        stablehlo.return %m, %n : tensor<f32>, tensor<i32>
      }
      return %0#0, %0#1 : tensor<4xf32>, tensor<4xi32>
    }""")
    assert op_flops(ops["stablehlo.reduce"]) == 2 * 24
