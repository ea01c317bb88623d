// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// slice: the sliced dimension (a permutation factor) is gathered first; the other
// dimension stays sharded and its limit becomes the local size.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}replica_groups = dense<{{\[\[}}0, 1, 2, 3], [4, 5, 6, 7]]> : tensor<2x4xi64>, use_global_device_ids}> : (tensor<4x4xf32>) -> tensor<4x16xf32>
// CHECK: stablehlo.slice %[[G]] [0:4, 4:12] : (tensor<4x16xf32>) -> tensor<4x8xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x8xf32> {
  %0 = stablehlo.slice %arg0 [0:8, 4:12] : (tensor<8x16xf32>) -> tensor<8x8xf32>
  return %0 : tensor<8x8xf32>
}

// -----

// A strided slice of the unsharded dimension only: local, no collective.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.slice %arg0 [0:2, 1:16:2] : (tensor<2x16xf32>) -> tensor<2x8xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x8xf32> {
  %0 = stablehlo.slice %arg0 [0:8, 1:16:2] : (tensor<8x16xf32>) -> tensor<8x8xf32>
  return %0 : tensor<8x8xf32>
}

// -----

// pad of the sharded dimension: gathered first, padded locally.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<4x4xf32>) -> tensor<4x16xf32>
// CHECK: stablehlo.pad %[[G]], %{{.*}}, low = [0, 2], high = [0, 2], interior = [0, 0] : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x20xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x20xf32> {
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = stablehlo.pad %arg0, %c, low = [0, 2], high = [0, 2], interior = [0, 0] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x20xf32>
  return %0 : tensor<8x20xf32>
}

// -----

// concatenate along the sharded dimension: that operand is gathered; the already
// replicated operand is untouched; the row sharding ("x") stays.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<4x4xf32>) -> tensor<4x16xf32>
// CHECK: stablehlo.concatenate %[[G]], %arg1, dim = 1 : (tensor<4x16xf32>, tensor<4x8xf32>) -> tensor<4x24xf32>
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<8x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x24xf32> {
  %0 = stablehlo.concatenate %arg0, %arg1, dim = 1 : (tensor<8x16xf32>, tensor<8x8xf32>) -> tensor<8x24xf32>
  return %0 : tensor<8x24xf32>
}

// -----

// concatenate along an unsharded dimension: local.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.concatenate %arg0, %arg1, dim = 0 : (tensor<8x4xf32>, tensor<2x4xf32>) -> tensor<10x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}, %arg1: tensor<2x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}) -> tensor<10x16xf32> {
  %0 = stablehlo.concatenate %arg0, %arg1, dim = 0 : (tensor<8x16xf32>, tensor<2x16xf32>) -> tensor<10x16xf32>
  return %0 : tensor<10x16xf32>
}

// -----

// dynamic_slice of the sharded dimension: gathered first; the unsliced dimension's
// size in `sizes` becomes the local size.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<4x4xf32>) -> tensor<4x16xf32>
// CHECK: stablehlo.dynamic_slice %[[G]], %{{.*}}, %arg1, sizes = [4, 4] : (tensor<4x16xf32>, tensor<i32>, tensor<i32>) -> tensor<4x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %i: tensor<i32>) -> tensor<8x4xf32> {
  %z = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.dynamic_slice %arg0, %z, %i, sizes = [8, 4] : (tensor<8x16xf32>, tensor<i32>, tensor<i32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

// dynamic_update_slice on the unsharded dimension only (rows on "x"): local.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.dynamic_update_slice %arg0, %arg1, %{{.*}}, %arg2 : (tensor<2x16xf32>, tensor<2x4xf32>, tensor<i32>, tensor<i32>) -> tensor<2x16xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %u: tensor<8x4xf32>, %i: tensor<i32>) -> tensor<8x16xf32> {
  %z = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.dynamic_update_slice %arg0, %u, %z, %i : (tensor<8x16xf32>, tensor<8x4xf32>, tensor<i32>, tensor<i32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// pad that keeps the size (low -1, high 1) still moves every element across shard
// boundaries (Shardy's rule calls the dim pointwise): gathered first, padded whole.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 0 : i64, {{.*}}}> : (tensor<3xf32>) -> tensor<6xf32>
// CHECK: stablehlo.pad %[[G]], %{{.*}}, low = [-1], high = [1], interior = [0] : (tensor<6xf32>, tensor<f32>) -> tensor<6xf32>
sdy.mesh @mesh = <["x"=2]>
func.func @main(%arg0: tensor<6xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> tensor<6xf32> {
  %c = stablehlo.constant dense<1.5> : tensor<f32>
  %0 = stablehlo.pad %arg0, %c, low = [-1], high = [1], interior = [0] : (tensor<6xf32>, tensor<f32>) -> tensor<6xf32>
  return %0 : tensor<6xf32>
}
