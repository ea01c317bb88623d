// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x2xcpu-test microbatches=2 strategy=dp})' | filecheck %s
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x2xcpu-test microbatches=2 strategy=dp},rhino-propagate,rhino-spmd-partition)' | filecheck %s --check-prefix=LOCAL
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x2xcpu-test microbatches=1 strategy=dp})' | filecheck %s --check-prefix=ONE
// RUN: not rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x2xcpu-test microbatches=3})' 2>&1 | filecheck %s --check-prefix=BAD

// An MLP train step (SGD). The planner's training choices are applied by the pass itself
// (rhino-accumulate after the shardings are written), so what follows is the program the
// plan was priced for: with 2 micro-batches, @main holds the accumulation loop.
// CHECK: sdy.mesh @mesh = <["x"=2]>
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.while
// (the batch argument viewed as 4 rows x 2 micro-batches)
// CHECK-SAME: tensor<4x2x4xf32>
// With 2 devices and the batch sharded, the accumulator carries stay partial: no collective
// inside the loop body, one all_reduce per gradient after it.
// LOCAL: stablehlo.while
// LOCAL: } do {
// LOCAL-NOT: all_reduce
// LOCAL: stablehlo.return
// LOCAL: stablehlo.all_reduce
// ONE-NOT: stablehlo.while
// BAD: rhino-opt: rhino-auto-shard: {{.*}}--microbatches 3 does not divide the batch of 8
func.func @main(%w1: tensor<4x8xf32>, %w2: tensor<8x2xf32>, %x: tensor<8x4xf32>, %y: tensor<8x2xf32>)
    -> (tensor<4x8xf32>, tensor<8x2xf32>, tensor<f32>) {
  %h0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  %z = stablehlo.constant dense<0.0> : tensor<8x8xf32>
  %h = stablehlo.maximum %h0, %z : tensor<8x8xf32>
  %p = stablehlo.dot_general %h, %w2, contracting_dims = [1] x [0] : (tensor<8x8xf32>, tensor<8x2xf32>) -> tensor<8x2xf32>
  %d = stablehlo.subtract %p, %y : tensor<8x2xf32>
  %sq = stablehlo.multiply %d, %d : tensor<8x2xf32>
  %zero = stablehlo.constant dense<0.0> : tensor<f32>
  %loss = stablehlo.reduce(%sq init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<8x2xf32>, tensor<f32>) -> tensor<f32>
  %two = stablehlo.constant dense<2.0> : tensor<8x2xf32>
  %gp = stablehlo.multiply %two, %d : tensor<8x2xf32>
  %gw2 = stablehlo.dot_general %h, %gp, contracting_dims = [0] x [0] : (tensor<8x8xf32>, tensor<8x2xf32>) -> tensor<8x2xf32>
  %gh = stablehlo.dot_general %gp, %w2, contracting_dims = [1] x [1] : (tensor<8x2xf32>, tensor<8x2xf32>) -> tensor<8x8xf32>
  %mask = stablehlo.compare GT, %h0, %z : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xi1>
  %gh0 = stablehlo.select %mask, %gh, %z : tensor<8x8xi1>, tensor<8x8xf32>
  %gw1 = stablehlo.dot_general %x, %gh0, contracting_dims = [0] x [0] : (tensor<8x4xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %lr = stablehlo.constant dense<0.01> : tensor<4x8xf32>
  %u1 = stablehlo.multiply %lr, %gw1 : tensor<4x8xf32>
  %w1n = stablehlo.subtract %w1, %u1 : tensor<4x8xf32>
  %lr2 = stablehlo.constant dense<0.01> : tensor<8x2xf32>
  %u2 = stablehlo.multiply %lr2, %gw2 : tensor<8x2xf32>
  %w2n = stablehlo.subtract %w2, %u2 : tensor<8x2xf32>
  return %w1n, %w2n, %loss : tensor<4x8xf32>, tensor<8x2xf32>, tensor<f32>
}
