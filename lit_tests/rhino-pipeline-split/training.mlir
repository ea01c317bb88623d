// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-pipeline-split{microbatches=4 batch-args=1})' | filecheck %s

// A weight gradient contracts the batch: per micro-batch it is a partial sum (an output
// of @bwd that the runtime accumulates), and the SGD step that follows runs once, in
// @update, on the accumulated gradient. Stage 1's loss gradient flows back to stage 0.
// CHECK-LABEL: module @stage_0
// CHECK: func.func @fwd(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32>
// CHECK: func.func @bwd(%arg0: tensor<2x4xf32>, %arg1: tensor<2x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT: stablehlo.dot_general %arg0, %arg1, contracting_dims = [0] x [0]
// CHECK: func.func @update(%arg0: tensor<4x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK: stablehlo.subtract %arg1
// CHECK-LABEL: module @stage_1
// CHECK: func.func @fwd(%arg0: tensor<2x4xf32>) -> tensor<2x4xf32>
func.func @main(%w: tensor<4x4xf32>, %x: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %h = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] {rhino.stage = 0 : i64} : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %g = stablehlo.multiply %h, %h {rhino.stage = 1 : i64} : tensor<8x4xf32>
  %dw = stablehlo.dot_general %x, %g, contracting_dims = [0] x [0] {rhino.stage = 0 : i64} : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  %lr = stablehlo.constant dense<0.1> : tensor<4x4xf32>
  %s = stablehlo.multiply %lr, %dw : tensor<4x4xf32>
  %w2 = stablehlo.subtract %w, %s : tensor<4x4xf32>
  return %w2 : tensor<4x4xf32>
}
