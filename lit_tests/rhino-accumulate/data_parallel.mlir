// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-accumulate{microbatches=2},rhino-propagate,rhino-spmd-partition)' | filecheck %s

// A data-parallel MLP train step (batch of %x over "x"=2, weights replicated, SGD) with
// 2 micro-batches: each device's gradients of a micro-batch are partial over "x", and the
// accumulator carries stay partial (partition/spmd/carry.py), so the body has no
// collective and each gradient (and the loss sum) is all-reduced once, after the loop,
// before the update reads it.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg2: tensor<4x4xf32> {rhino.global_type = tensor<8x4xf32>
// CHECK: %[[L:.*]]:{{[0-9]+}} = stablehlo.while
// CHECK: } do {
// CHECK-NOT: stablehlo.all_reduce
// CHECK: stablehlo.dot_general {{.*}} -> tensor<4x8xf32>
// CHECK-NOT: stablehlo.all_reduce
// CHECK: stablehlo.return
// CHECK-NEXT: }
// CHECK: "stablehlo.all_reduce"(%[[L]]#{{[0-9]+}})
// CHECK: }) : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK: "stablehlo.all_reduce"(%[[L]]#{{[0-9]+}})
// CHECK: }) : (tensor<8x2xf32>) -> tensor<8x2xf32>
// CHECK: "stablehlo.all_reduce"(%[[L]]#{{[0-9]+}})
// CHECK: }) : (tensor<f32>) -> tensor<f32>
// CHECK-NOT: stablehlo.all_reduce
// CHECK: return
sdy.mesh @mesh = <["x"=2]>
func.func @main(%w1: tensor<4x8xf32>, %w2: tensor<8x2xf32>,
                %x: tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>},
                %y: tensor<8x2xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
    -> (tensor<4x8xf32>, tensor<8x2xf32>, tensor<f32>) {
  // forward: h = relu(x w1), p = h w2, loss = sum((p - y)^2)
  %a = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  %z8 = stablehlo.constant dense<0.0> : tensor<8x8xf32>
  %h = stablehlo.maximum %a, %z8 : tensor<8x8xf32>
  %p = stablehlo.dot_general %h, %w2, contracting_dims = [1] x [0] : (tensor<8x8xf32>, tensor<8x2xf32>) -> tensor<8x2xf32>
  %e = stablehlo.subtract %p, %y : tensor<8x2xf32>
  %e2 = stablehlo.multiply %e, %e : tensor<8x2xf32>
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %loss = stablehlo.reduce(%e2 init: %z) applies stablehlo.add across dimensions = [0, 1] : (tensor<8x2xf32>, tensor<f32>) -> tensor<f32>
  // backward: dp = 2e, dw2 = h^T dp, dh = dp w2^T masked by relu, dw1 = x^T dh
  %two = stablehlo.constant dense<2.0> : tensor<8x2xf32>
  %dp = stablehlo.multiply %two, %e : tensor<8x2xf32>
  %dw2 = stablehlo.dot_general %h, %dp, contracting_dims = [0] x [0] : (tensor<8x8xf32>, tensor<8x2xf32>) -> tensor<8x2xf32>
  %dh = stablehlo.dot_general %dp, %w2, contracting_dims = [1] x [1] : (tensor<8x2xf32>, tensor<8x2xf32>) -> tensor<8x8xf32>
  %on = stablehlo.compare GT, %a, %z8 : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xi1>
  %da = stablehlo.select %on, %dh, %z8 : tensor<8x8xi1>, tensor<8x8xf32>
  %dw1 = stablehlo.dot_general %x, %da, contracting_dims = [0] x [0] : (tensor<8x4xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  // SGD, once per step
  %lr1 = stablehlo.constant dense<0.01> : tensor<4x8xf32>
  %s1 = stablehlo.multiply %lr1, %dw1 : tensor<4x8xf32>
  %n1 = stablehlo.subtract %w1, %s1 : tensor<4x8xf32>
  %lr2 = stablehlo.constant dense<0.01> : tensor<8x2xf32>
  %s2 = stablehlo.multiply %lr2, %dw2 : tensor<8x2xf32>
  %n2 = stablehlo.subtract %w2, %s2 : tensor<8x2xf32>
  return %n1, %n2, %loss : tensor<4x8xf32>, tensor<8x2xf32>, tensor<f32>
}
