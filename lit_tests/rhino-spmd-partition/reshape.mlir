// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Splitting a sharded dimension whose major factor takes the whole axis: local reshape.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.reshape %arg0 : (tensor<4x4xf32>) -> tensor<4x1x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x4x4xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<8x16xf32>) -> tensor<8x4x4xf32>
  return %0 : tensor<8x4x4xf32>
}

// -----

// Merging with the major dimension sharded: local reshape.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.reshape %arg0 : (tensor<8x1x4xf32>) -> tensor<8x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}, {}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<8x4x4xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// Merging with the minor dimension sharded has no contiguous layout: all_gather first.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<2x2xf32>) -> tensor<2x8xf32>
// CHECK: stablehlo.reshape %[[G]] : (tensor<2x8xf32>) -> tensor<16xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<2x8xf32>) -> tensor<16xf32>
  return %0 : tensor<16xf32>
}

// -----

// Strided split [16] on "x"=4 -> [2, 8] on [{"x":(1)2}, {"x":(2)2}]: each device's
// 4 contiguous elements are one row piece of 4: a local reshape, no collective.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<1x4xf32> {rhino.global_type = tensor<2x8xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)2}, {"x":(2)2}]>})
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.reshape %arg0 : (tensor<4xf32>) -> tensor<1x4xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> tensor<2x8xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<16xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

// The inverse merge of sub-axes: local reshape back to [16] on "x".
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<1x4xf32> {rhino.global_type = tensor<2x8xf32>
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.reshape %arg0 : (tensor<1x4xf32>) -> tensor<4xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)2}, {"x":(2)2}]>}) -> tensor<16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<2x8xf32>) -> tensor<16xf32>
  return %0 : tensor<16xf32>
}

// -----

// A sub-axis argument: [32] on "x":(1)4 of "x"=8 holds 8 elements per device (pairs of
// devices hold the same shard); the split is local.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<8xf32> {rhino.global_type = tensor<32xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)4}]>}
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.reshape %arg0 : (tensor<8xf32>) -> tensor<1x8xf32>
sdy.mesh @mesh = <["x"=8]>
func.func @main(%arg0: tensor<32xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)4}]>}) -> tensor<2x16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<32xf32>) -> tensor<2x16xf32>
  %1 = stablehlo.negate %0 : tensor<2x16xf32>
  return %1 : tensor<2x16xf32>
}

// -----

// Gathering a sub-axis: [16] on "x":(1)2 of "x"=4 -> replicated result; the all_gather
// runs over the "x":(1)2 groups (devices whose "x" coordinates differ by 2).
// CHECK-LABEL: func.func @main
// CHECK: "stablehlo.all_gather"(%{{.*}}) <{all_gather_dim = 0 : i64, {{.*}}replica_groups = dense<{{\[\[}}0, 2], [1, 3]]> : tensor<2x2xi64>, use_global_device_ids}> : (tensor<8xf32>) -> tensor<16xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)2}]>}) -> (tensor<16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}) {
  %0 = stablehlo.abs %arg0 : tensor<16xf32>
  return %0 : tensor<16xf32>
}

// -----

// Attention heads: [B*S, H*D] -> [B*S, H, D] with H*D on "y": the head factor (H=4)
// takes "y" whole, each device holds one head and the split is local.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.reshape %arg0 : (tensor<8x16xf32>) -> tensor<8x1x16xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<16x64xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<16x4x16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<16x64xf32>) -> tensor<16x4x16xf32>
  return %0 : tensor<16x4x16xf32>
}

// -----

// [2, 7] -> [7, 2] shares no factor: the reshape runs on the whole (replicated) value
// and this device's column is cut from its result, never a local reshape of 7 elements.
// CHECK-LABEL: func.func @main
// CHECK: %[[R:.*]] = stablehlo.reshape %arg0 : (tensor<2x7xf32>) -> tensor<7x2xf32>
// CHECK: stablehlo.dynamic_slice %[[R]], %{{.*}}, %{{.*}}, sizes = [7, 1] : (tensor<7x2xf32>, tensor<i32>, tensor<i32>) -> tensor<7x1xf32>
sdy.mesh @mesh = <["x"=2]>
func.func @main(%arg0: tensor<2x7xf32>) -> (tensor<7x2xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) {
  %0 = stablehlo.reshape %arg0 : (tensor<2x7xf32>) -> tensor<7x2xf32>
  return %0 : tensor<7x2xf32>
}
