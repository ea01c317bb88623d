// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// 10 on "x"=4: ceil-sized shards of 3 (the last holds 1 element and 2 of padding).
// Before summing over it, the padding is replaced by 0: a mask from the global index
// (local iota + shard start) < 10, then the partial sums are all_reduced.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<6x3xf32> {rhino.global_type = tensor<6x10xf32>
// CHECK: %[[START:.*]] = stablehlo.multiply %{{.*}}, %{{.*}} : tensor<i32>
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 1 : tensor<6x3xi32>
// CHECK: %[[OFF:.*]] = stablehlo.broadcast_in_dim %[[START]], dims = [] : (tensor<i32>) -> tensor<6x3xi32>
// CHECK: %[[IDX:.*]] = stablehlo.add %[[IOTA]], %[[OFF]] : tensor<6x3xi32>
// CHECK: %[[LIM:.*]] = stablehlo.constant dense<10> : tensor<6x3xi32>
// CHECK: %[[KEEP:.*]] = stablehlo.compare LT, %[[IDX]], %[[LIM]] : (tensor<6x3xi32>, tensor<6x3xi32>) -> tensor<6x3xi1>
// CHECK: %[[ZERO:.*]] = stablehlo.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[FILL:.*]] = stablehlo.broadcast_in_dim %[[ZERO]], dims = [] : (tensor<f32>) -> tensor<6x3xf32>
// CHECK: %[[X:.*]] = stablehlo.select %[[KEEP]], %arg0, %[[FILL]] : tensor<6x3xi1>, tensor<6x3xf32>
// CHECK: %[[R:.*]] = stablehlo.reduce(%[[X]] init: %{{.*}}) applies stablehlo.add across dimensions = [1] : (tensor<6x3xf32>, tensor<f32>) -> tensor<6xf32>
// CHECK: "stablehlo.all_reduce"(%[[R]])
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<6x10xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<6xf32> {
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<6x10xf32>, tensor<f32>) -> tensor<6xf32>
  return %0 : tensor<6xf32>
}

// -----

// Max over an uneven dimension: the padding is filled with -inf (0xFF800000).
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.constant dense<10> : tensor<6x3xi32>
// CHECK: %[[NINF:.*]] = stablehlo.constant dense<0xFF800000> : tensor<f32>
// CHECK: stablehlo.broadcast_in_dim %[[NINF]]
// CHECK: stablehlo.select
// CHECK: stablehlo.reduce({{.*}}) applies stablehlo.maximum
// CHECK: "stablehlo.all_reduce"
// CHECK: stablehlo.maximum
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<6x10xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<6xf32> {
  %c = stablehlo.constant dense<0xFF800000> : tensor<f32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.maximum across dimensions = [1] : (tensor<6x10xf32>, tensor<f32>) -> tensor<6xf32>
  return %0 : tensor<6xf32>
}

// -----

// An uneven contracting dimension: both operands' padding is masked (0 * NaN padding
// would poison the sum), then the partial products are all_reduced.
// CHECK-LABEL: func.func @main
// CHECK: %[[A:.*]] = stablehlo.select %{{.*}}, %arg0, %{{.*}} : tensor<6x3xi1>, tensor<6x3xf32>
// CHECK: %[[B:.*]] = stablehlo.select %{{.*}}, %arg1, %{{.*}} : tensor<3x3xi1>, tensor<3x3xf32>
// CHECK: %[[D:.*]] = stablehlo.dot_general %[[A]], %[[B]], contracting_dims = [1] x [0] : (tensor<6x3xf32>, tensor<3x3xf32>) -> tensor<6x3xf32>
// CHECK: "stablehlo.all_reduce"(%[[D]])
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<6x10xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}, %arg1: tensor<10x3xf32>) -> tensor<6x3xf32> {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<6x10xf32>, tensor<10x3xf32>) -> tensor<6x3xf32>
  return %0 : tensor<6x3xf32>
}

// -----

// Pointwise ops on uneven shards need no mask (the padding of the result is
// unspecified and cropped by the caller).
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<2x5xf32> {rhino.global_type = tensor<7x5xf32>
// CHECK-NOT: stablehlo.select
// CHECK: stablehlo.exponential %arg0 : tensor<2x5xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<7x5xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> tensor<7x5xf32> {
  %0 = stablehlo.exponential %arg0 : tensor<7x5xf32>
  return %0 : tensor<7x5xf32>
}

// -----

// Resharding an uneven dimension ([10 on "x"] -> columns on "x"): all_gather the
// padded rows (4 x 3 = 12), crop to 10, then slice the columns by shard index.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 0 : i64, {{.*}}}> : (tensor<3x8xf32>) -> tensor<12x8xf32>
// CHECK: %[[C:.*]] = stablehlo.slice %[[G]] [0:10, 0:8] : (tensor<12x8xf32>) -> tensor<10x8xf32>
// CHECK: stablehlo.dynamic_slice %[[C]], %{{.*}}, %{{.*}}, sizes = [10, 2] : (tensor<10x8xf32>, tensor<i32>, tensor<i32>) -> tensor<10x2xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> (tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) {
  %0 = stablehlo.negate %arg0 : tensor<10x8xf32>
  return %0 : tensor<10x8xf32>
}

// -----

// An iota along an uneven sharded dimension counts from the shard start: local iota
// plus shard index * 3.
// CHECK-LABEL: func.func @main
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 0 : tensor<3xi32>
// CHECK: stablehlo.multiply %{{.*}}, %{{.*}} : tensor<i32>
// CHECK: %[[B:.*]] = stablehlo.broadcast_in_dim %{{.*}}, dims = [] : (tensor<i32>) -> tensor<3xi32>
// CHECK: stablehlo.add %[[IOTA]], %[[B]] : tensor<3xi32>
sdy.mesh @mesh = <["x"=4]>
func.func @main() -> (tensor<10xi32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) {
  %0 = stablehlo.iota dim = 0 : tensor<10xi32>
  return %0 : tensor<10xi32>
}

// -----

// Uneven split into a compound dimension: [6] on "x"=4 is regathered (uneven) and
// sliced onto the sub-axis "x":(1)2 that [2, 3] can hold (one row per device pair).
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<1x3xf32> {rhino.global_type = tensor<2x3xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)2}, {}]>})
// CHECK: "stablehlo.all_gather"(%arg0) {{.*}} : (tensor<2xf32>) -> tensor<8xf32>
// CHECK: stablehlo.reshape %{{.*}} : (tensor<3xf32>) -> tensor<1x3xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<6xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> tensor<2x3xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<6xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
