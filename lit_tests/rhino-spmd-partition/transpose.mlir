// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Resharding a [{"x"}, {}] value into [{}, {"x"}] is one all_to_all: split the
// columns 4 ways, concatenate the rows (8x16 on 4 devices: 2x16 -> 8x4).
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<8x4xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>})
// CHECK-NOT: stablehlo.all_gather
// CHECK: %[[A:.*]] = "stablehlo.all_to_all"(%{{.*}}) <{channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, concat_dimension = 0 : i64, replica_groups = dense<{{\[\[}}0, 1, 2, 3]]> : tensor<1x4xi64>, split_count = 4 : i64, split_dimension = 1 : i64}> : (tensor<2x16xf32>) -> tensor<8x4xf32>
// CHECK-NOT: stablehlo.all_
// CHECK: return %[[A]]
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) {
  %0 = sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {}]> : tensor<8x16xf32>
  %1 = stablehlo.negate %0 : tensor<8x16xf32>
  %2 = sdy.sharding_constraint %1 <@mesh, [{}, {"x"}]> : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}

// -----

// A transpose op moves the sharding with the dimensions: no data moves.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: %[[T:.*]] = stablehlo.transpose %arg0, dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK: stablehlo.transpose %[[T]], dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.transpose %arg0, dims = [1, 0] : (tensor<8x16xf32>) -> tensor<16x8xf32>
  %1 = stablehlo.transpose %0, dims = [1, 0] : (tensor<16x8xf32>) -> tensor<8x16xf32>
  return %1 : tensor<8x16xf32>
}

// -----

// A transpose whose result wants the same layout as its input ([{}, {"x"}] both): the
// operand is resharded to [{"x"}, {}] with one all_to_all, then transposed locally.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_gather
// CHECK: %[[A:.*]] = "stablehlo.all_to_all"(%arg0) {{.*}}concat_dimension = 1 : i64{{.*}}split_count = 4 : i64, split_dimension = 0 : i64}> : (tensor<8x4xf32>) -> tensor<2x16xf32>
// CHECK: stablehlo.transpose %[[A]], dims = [1, 0] : (tensor<2x16xf32>) -> tensor<16x2xf32>
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<16x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) {
  %0 = stablehlo.transpose %arg0, dims = [1, 0] : (tensor<8x16xf32>) -> tensor<16x8xf32>
  return %0 : tensor<16x8xf32>
}

// -----

// Rank 4 (attention): [B, S, H, D] -> [B, H, S, D] with B on "x" and H on "y": local.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.transpose %arg0, dims = [0, 2, 1, 3] : (tensor<1x8x1x16xf32>) -> tensor<1x1x8x16xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<2x8x4x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}, {"y"}, {}]>}) -> tensor<2x4x8x16xf32> {
  %0 = stablehlo.transpose %arg0, dims = [0, 2, 1, 3] : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
  return %0 : tensor<2x4x8x16xf32>
}
