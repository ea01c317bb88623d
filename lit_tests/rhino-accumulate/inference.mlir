// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-accumulate{microbatches=2 batch-args=2})' | filecheck %s

// The batch is named (batch-args=2: without it, an inference program is split along the
// independent class with the most bytes, here the 8 output columns). A per-example result
// (no reduction over the batch) is written back, micro-batch k at
// index k of a (B/K, K, D) = (3, 2, 8) buffer, and viewed as (B, D) after the loop. The
// bias broadcast to the activation shape is cloned into the body at the micro-batch shape
// (3, 8); the weight is carried in whole.
// CHECK-LABEL: func.func @main
// CHECK: %[[X:.*]] = stablehlo.reshape %arg2 : (tensor<6x4xf32>) -> tensor<3x2x4xf32>
// CHECK: %[[BUF:.*]] = stablehlo.constant dense<0.000000e+00> : tensor<3x2x8xf32>
// CHECK: %[[L:.*]]:5 = stablehlo.while({{.*}} = %[[X]], %[[W:.*]] = %arg0, %[[B:.*]] = %arg1, %[[O:.*]] = %[[BUF]])
// CHECK: } do {
// CHECK: stablehlo.dot_general %{{.*}}, %[[W]]{{.*}} -> tensor<3x8xf32>
// CHECK: stablehlo.broadcast_in_dim %[[B]], dims = [1] : (tensor<8xf32>) -> tensor<3x8xf32>
// CHECK: %[[T:.*]] = stablehlo.tanh %{{.*}} : tensor<3x8xf32>
// CHECK: %[[T3:.*]] = stablehlo.reshape %[[T]] : (tensor<3x8xf32>) -> tensor<3x1x8xf32>
// CHECK: stablehlo.dynamic_update_slice %[[O]], %[[T3]], %{{.*}}, %iterArg, %{{.*}}
// CHECK: %[[Y:.*]] = stablehlo.reshape %[[L]]#4 : (tensor<3x2x8xf32>) -> tensor<6x8xf32>
// CHECK: return %[[Y]]
func.func @main(%w: tensor<4x8xf32>, %b: tensor<8xf32>, %x: tensor<6x4xf32>) -> tensor<6x8xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<6x4xf32>, tensor<4x8xf32>) -> tensor<6x8xf32>
  %1 = stablehlo.broadcast_in_dim %b, dims = [1] : (tensor<8xf32>) -> tensor<6x8xf32>
  %2 = stablehlo.add %0, %1 : tensor<6x8xf32>
  %3 = stablehlo.tanh %2 : tensor<6x8xf32>
  return %3 : tensor<6x8xf32>
}
