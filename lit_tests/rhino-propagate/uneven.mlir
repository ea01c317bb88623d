// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate)' | filecheck %s

// Dimensions that do not divide by the shard count propagate like even ones: 10 on
// "x"=4 (ceil-sized shards of 3, the last one padded) reaches the dot's rhs.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<10x3xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// CHECK: stablehlo.dot_general {{.*}}sdy.sharding_per_value<[<@mesh, [{}, {}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<6x10xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}, %arg1: tensor<10x3xf32>) -> tensor<6x3xf32> {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<6x10xf32>, tensor<10x3xf32>) -> tensor<6x3xf32>
  return %0 : tensor<6x3xf32>
}

// -----

// 7 rows on "y"=4 pass through pointwise ops and into the reduce's kept dimension.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.exponential %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"y"}, {}]>]>
// CHECK: stablehlo.reduce{{.*}}sdy.sharding_per_value<[<@mesh, [{"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<7x5xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> tensor<7xf32> {
  %0 = stablehlo.exponential %arg0 : tensor<7x5xf32>
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %1 = stablehlo.reduce(%0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<7x5xf32>, tensor<f32>) -> tensor<7xf32>
  return %1 : tensor<7xf32>
}

// -----

// A compound (reshape) dimension only takes what splits evenly: [6] on "x"=4 -> [2, 3]
// keeps the part of "x" that divides the major factor (2), the sub-axis "x":(1)2.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x":(1)2}, {}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<6xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> tensor<2x3xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<6xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
