// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-pipeline-split{microbatches=2})' | filecheck %s

// Two stages, two micro-batches: the batch (dim 0 of %x, found through the factor rules)
// halves in every per-micro-batch value; the stage-0 activation is stage 1's input.
// CHECK: module attributes {rhino.pipeline = "{{.*}}\22microbatches\22: 2{{.*}}\22stages\22: 2
// CHECK-LABEL: module @stage_0
// CHECK: func.func @fwd(%arg0: tensor<3x4xf32>, %arg1: tensor<4x8xf32>) -> tensor<3x8xf32>
// CHECK-NEXT: stablehlo.dot_general %arg0, %arg1
// CHECK-NEXT: stablehlo.tanh
// CHECK-LABEL: module @stage_1
// CHECK: func.func @fwd(%arg0: tensor<3x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<3x4xf32>
// CHECK-NEXT: stablehlo.dot_general %arg0, %arg1
func.func @main(%w1: tensor<4x8xf32>, %w2: tensor<8x4xf32>, %x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] {rhino.stage = 0 : i64} : (tensor<6x4xf32>, tensor<4x8xf32>) -> tensor<6x8xf32>
  %1 = stablehlo.tanh %0 {rhino.stage = 0 : i64} : tensor<6x8xf32>
  %2 = stablehlo.dot_general %1, %w2, contracting_dims = [1] x [0] {rhino.stage = 1 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  return %2 : tensor<6x4xf32>
}
