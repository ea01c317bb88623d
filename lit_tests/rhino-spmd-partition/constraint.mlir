// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// sdy.sharding_constraint ops are consumed: they become the reshard they ask for
// (or nothing) and no sdy op or per-value sharding is left in the local program.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<4x4xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}
// CHECK-NOT: sdy.sharding_constraint
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.negate %arg0 : tensor<4x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %0 = sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {"y"}]> : tensor<8x16xf32>
  %1 = stablehlo.negate %0 : tensor<8x16xf32>
  return %1 : tensor<8x16xf32>
}

// -----

// A constraint asking for the dot's columns on "y", the axis its contraction is
// partial over: reduce_scatter along dimension 1 (the result is 4 x 32 / 4).
// CHECK-LABEL: func.func @main
// CHECK: %[[D:.*]] = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<4x4xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
// CHECK: %[[RS:.*]] = "stablehlo.reduce_scatter"(%[[D]]) <{channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, replica_groups = dense<{{\[\[}}0, 1, 2, 3], [4, 5, 6, 7]]> : tensor<2x4xi64>, scatter_dimension = 1 : i64, use_global_device_ids}> ({
// CHECK: stablehlo.add
// CHECK: }) : (tensor<4x32xf32>) -> tensor<4x8xf32>
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.exponential %[[RS]] : tensor<4x8xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<16x32xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> tensor<8x32xf32> {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = sdy.sharding_constraint %0 <@mesh, [{"x"}, {"y"}]> : tensor<8x32xf32>
  %2 = stablehlo.exponential %1 : tensor<8x32xf32>
  return %2 : tensor<8x32xf32>
}

// -----

// A replicating constraint in the middle: two all_gathers (one per axis) before it,
// replicated local types after it.
// CHECK-LABEL: func.func @main
// CHECK: %[[N:.*]] = stablehlo.negate %arg0 : tensor<4x4xf32>
// CHECK: %[[G0:.*]] = "stablehlo.all_gather"(%[[N]]) <{all_gather_dim = 0 : i64, {{.*}}}> : (tensor<4x4xf32>) -> tensor<8x4xf32>
// CHECK: %[[G1:.*]] = "stablehlo.all_gather"(%[[G0]]) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<8x4xf32>) -> tensor<8x16xf32>
// CHECK: stablehlo.exponential %[[G1]] : tensor<8x16xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.negate %arg0 : tensor<8x16xf32>
  %1 = sdy.sharding_constraint %0 <@mesh, [{}, {}]> : tensor<8x16xf32>
  %2 = stablehlo.exponential %1 : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}

// -----

// A constraint that moves an axis between dimensions: one all_to_all, as for any
// [{"x"}, {}] -> [{}, {"x"}] reshard.
// CHECK-LABEL: func.func @main
// CHECK: %[[A:.*]] = "stablehlo.all_to_all"(%{{.*}}) {{.*}} : (tensor<2x16xf32>) -> tensor<8x4xf32>
// CHECK-NOT: stablehlo.all_gather
// CHECK: stablehlo.exponential %[[A]] : tensor<8x4xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.sine %arg0 : tensor<8x16xf32>
  %1 = sdy.sharding_constraint %0 <@mesh, [{}, {"x"}]> : tensor<8x16xf32>
  %2 = stablehlo.exponential %1 : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}
