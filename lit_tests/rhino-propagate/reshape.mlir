// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate)' | filecheck %s

// Splitting a sharded dimension: [8, 16] -> [8, 4, 4] is ([i, jk])->([i, j, k]);
// "y" (4) covers the major factor j exactly.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x4x4xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<8x16xf32>) -> tensor<8x4x4xf32>
  return %0 : tensor<8x4x4xf32>
}

// -----

// Merging dimensions whose major one is sharded keeps the sharding.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}, {}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<8x4x4xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// Merging with only the minor dimension sharded has no contiguous layout: the
// merged dimension stays replicated.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<2x8xf32>) -> tensor<16xf32>
  return %0 : tensor<16xf32>
}

// -----

// Strided split (Rhino): [16] on "x"=4 -> [2, 8]; the axis spans both factors, so it
// is split into sub-axes "x":(1)2 (major dim) and "x":(2)2 (minor dim).
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)2}, {"x":(2)2}]>})
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x":(1)2}, {"x":(2)2}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> tensor<2x8xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<16xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

// The inverse merge: the two sub-axes join back into the full axis "x".
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)2}, {"x":(2)2}]>}) -> tensor<16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<2x8xf32>) -> tensor<16xf32>
  return %0 : tensor<16xf32>
}

// -----

// A sub-axis input: [32] on "x":(1)4 of "x"=8 -> [2, 16]; the sub-axis splits again
// and the pointwise user follows.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reshape %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x":(1)2}, {"x":(2)2}]>]>
// CHECK: stablehlo.negate {{.*}}sdy.sharding_per_value<[<@mesh, [{"x":(1)2}, {"x":(2)2}]>]>
sdy.mesh @mesh = <["x"=8]>
func.func @main(%arg0: tensor<32xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)4}]>}) -> tensor<2x16xf32> {
  %0 = stablehlo.reshape %arg0 : (tensor<32xf32>) -> tensor<2x16xf32>
  %1 = stablehlo.negate %0 : tensor<2x16xf32>
  return %1 : tensor<2x16xf32>
}

// -----

// Backwards through a split reshape: the result's head sharding reaches the
// unannotated input as the major part of the merged dimension.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<8x64xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x64xf32>) -> (tensor<8x4x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}, {}]>}) {
  %0 = stablehlo.reshape %arg0 : (tensor<8x64xf32>) -> tensor<8x4x16xf32>
  return %0 : tensor<8x4x16xf32>
}
