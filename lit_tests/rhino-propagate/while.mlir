// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate)' | filecheck %s

// A scan over layers: the carried activation is tied to the loop operand, the body
// argument, the yielded value and the result (analysis/dataflow.py), so it keeps one
// sharding everywhere; inside the body the weight's "y" column sharding joins it.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>})
// CHECK: stablehlo.while{{.*}}attributes {sdy.sharding = #sdy.sharding_per_value<[<@mesh, []>, <@mesh, [{"x"}, {"y"}]>]>}
// CHECK: cond
// CHECK: } do {
// CHECK: stablehlo.dynamic_slice %arg1{{.*}}sdy.sharding_per_value<[<@mesh, [{}, {}, {"y"}]>]>
// CHECK: stablehlo.reshape {{.*}}sdy.sharding_per_value<[<@mesh, [{}, {"y"}]>]>
// CHECK: stablehlo.dot_general %iterArg_0, {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
// CHECK: %[[T:.*]] = stablehlo.tanh {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
// CHECK: stablehlo.return %{{.*}}, %[[T]]
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<3x16x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}, {"y"}]>}) -> tensor<8x16xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.while(%i = %c0, %h = %arg0) : tensor<i32>, tensor<8x16xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %z = stablehlo.constant dense<0> : tensor<i32>
      %w = stablehlo.dynamic_slice %arg1, %i, %z, %z, sizes = [1, 16, 16] : (tensor<3x16x16xf32>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<1x16x16xf32>
      %w2 = stablehlo.reshape %w : (tensor<1x16x16xf32>) -> tensor<16x16xf32>
      %y = stablehlo.dot_general %h, %w2, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
      %t = stablehlo.tanh %y : tensor<8x16xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %t : tensor<i32>, tensor<8x16xf32>
    }
  return %0#1 : tensor<8x16xf32>
}

// -----

// A sharding that only appears inside the body (on a body op) reaches the loop
// operand outside: the unannotated argument becomes [{}, {"x"}].
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<4x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}
// CHECK-SAME: -> (tensor<4x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>})
// CHECK: stablehlo.while{{.*}}sdy.sharding_per_value<[<@mesh, []>, <@mesh, [{}, {"x"}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.while(%i = %c0, %h = %arg0) : tensor<i32>, tensor<4x8xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %s = stablehlo.sine %h {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"x"}]>]>} : tensor<4x8xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %s : tensor<i32>, tensor<4x8xf32>
    }
  return %0#1 : tensor<4x8xf32>
}
