// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate)' | filecheck %s

// slice: the sliced dimension is a permutation factor and does not carry "y"; the
// untouched dimension keeps "x".
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.slice %arg0 [0:8, 4:12] {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x8xf32> {
  %0 = stablehlo.slice %arg0 [0:8, 4:12] : (tensor<8x16xf32>) -> tensor<8x8xf32>
  return %0 : tensor<8x8xf32>
}

// -----

// pad: the padded dimension is a permutation factor as well.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.pad {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x20xf32> {
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = stablehlo.pad %arg0, %c, low = [0, 2], high = [0, 2], interior = [0, 0] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x20xf32>
  return %0 : tensor<8x20xf32>
}

// -----

// concatenate: the concatenated dimension must be replicated; the other is shared.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.concatenate %arg0, %arg1, dim = 1 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<8x8xf32>) -> tensor<8x24xf32> {
  %0 = stablehlo.concatenate %arg0, %arg1, dim = 1 : (tensor<8x16xf32>, tensor<8x8xf32>) -> tensor<8x24xf32>
  return %0 : tensor<8x24xf32>
}

// -----

// dynamic_slice keeps the unsliced dimension's sharding; the index scalar is replicated.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<i32> {sdy.sharding = #sdy.sharding<@mesh, []>}
// CHECK: stablehlo.dynamic_slice {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %i: tensor<i32>) -> tensor<8x4xf32> {
  %z = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.dynamic_slice %arg0, %z, %i, sizes = [8, 4] : (tensor<8x16xf32>, tensor<i32>, tensor<i32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

// dynamic_update_slice: the update shares the dimension it spans whole ("x" on dim 0);
// the dimension written at a run-time offset (dim 1) is not sharded (local_rules.restrict).
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// CHECK: stablehlo.dynamic_update_slice {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %u: tensor<8x4xf32>, %i: tensor<i32>) -> tensor<8x16xf32> {
  %z = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.dynamic_update_slice %arg0, %u, %z, %i : (tensor<8x16xf32>, tensor<8x4xf32>, tensor<i32>, tensor<i32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
