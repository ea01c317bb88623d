// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-accumulate{microbatches=4})' | filecheck %s
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-accumulate{microbatches=1})' | filecheck %s --check-prefix=ONE

// A train step: forward, a weight gradient and a loss sum (both reduce the batch of %x),
// then SGD. The batch (dim 0 of %x, from the factor rules) is viewed as (B/K, K, D) =
// (2, 4, 4) once; iteration k takes x[:, k, :]. The gradient and the loss sum are
// carries that start at 0 and add each micro-batch's partial sum; the update runs once,
// after the loop, on the accumulated gradient.
// CHECK-LABEL: func.func @main
// CHECK: %[[X:.*]] = stablehlo.reshape %arg1 : (tensor<8x4xf32>) -> tensor<2x4x4xf32>
// CHECK: %[[Z:.*]] = stablehlo.constant dense<0.000000e+00> : tensor<4x4xf32>
// CHECK: %[[Z2:.*]] = stablehlo.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[L:.*]]:5 = stablehlo.while(%[[K:.*]] = %c, %[[XS:.*]] = %[[X]], %[[W:.*]] = %arg0, %[[G:.*]] = %[[Z]], %[[S:.*]] = %[[Z2]])
// CHECK: stablehlo.compare LT, %[[K]], %{{.*}}
// CHECK: } do {
// CHECK: %[[P:.*]] = stablehlo.dynamic_slice %[[XS]], %{{.*}}, %[[K]], %{{.*}}, sizes = [2, 1, 4]
// CHECK: %[[XK:.*]] = stablehlo.reshape %[[P]] : (tensor<2x1x4xf32>) -> tensor<2x4xf32>
// CHECK: %[[H:.*]] = stablehlo.dot_general %[[XK]], %[[W]]{{.*}} -> tensor<2x4xf32>
// CHECK: %[[DW:.*]] = stablehlo.dot_general %[[XK]], %{{.*}} contracting_dims = [0] x [0]{{.*}} -> tensor<4x4xf32>
// CHECK: %[[G2:.*]] = stablehlo.add %[[G]], %[[DW]] : tensor<4x4xf32>
// CHECK: %[[R:.*]] = stablehlo.reduce
// CHECK: %[[S2:.*]] = stablehlo.add %[[S]], %[[R]] : tensor<f32>
// CHECK: %[[K2:.*]] = stablehlo.add %[[K]], %{{.*}} : tensor<i32>
// CHECK: stablehlo.return %[[K2]], %[[XS]], %[[W]], %[[G2]], %[[S2]]
// CHECK: %[[U:.*]] = stablehlo.multiply %{{.*}}, %[[L]]#3 : tensor<4x4xf32>
// CHECK: %[[W2:.*]] = stablehlo.subtract %arg0, %[[U]]
// CHECK: return %[[W2]], %[[L]]#4

// ONE-LABEL: func.func @main
// ONE-NOT: stablehlo.while
// ONE: stablehlo.dot_general %arg1, %arg0
func.func @main(%w: tensor<4x4xf32>, %x: tensor<8x4xf32>) -> (tensor<4x4xf32>, tensor<f32>) {
  %h = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %g = stablehlo.multiply %h, %h : tensor<8x4xf32>
  %dw = stablehlo.dot_general %x, %g, contracting_dims = [0] x [0] : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %l = stablehlo.reduce(%g init: %z) applies stablehlo.add across dimensions = [0, 1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<f32>
  %lr = stablehlo.constant dense<0.1> : tensor<4x4xf32>
  %s = stablehlo.multiply %lr, %dw : tensor<4x4xf32>
  %w2 = stablehlo.subtract %w, %s : tensor<4x4xf32>
  return %w2, %l : tensor<4x4xf32>, tensor<f32>
}
