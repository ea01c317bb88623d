// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-accumulate{microbatches=2})' | filecheck %s

// A bf16 weight gradient is summed over micro-batches in f32 and converted back once,
// after the loop; a max over the batch (a max combiner) starts at -inf and stays bf16.
// CHECK-LABEL: func.func @main
// CHECK-DAG: %[[Z:.*]] = stablehlo.constant dense<0.000000e+00> : tensor<4x4xf32>
// CHECK-DAG: %[[NINF:.*]] = stablehlo.constant dense<0xFF80> : tensor<bf16>
// CHECK: stablehlo.while({{.*}} = %[[Z]], {{.*}} = %[[NINF]])
// CHECK: } do {
// CHECK: %[[DW:.*]] = stablehlo.dot_general {{.*}} contracting_dims = [0] x [0]{{.*}} -> tensor<4x4xbf16>
// CHECK: %[[DW32:.*]] = stablehlo.convert %[[DW]] : (tensor<4x4xbf16>) -> tensor<4x4xf32>
// CHECK: stablehlo.add %{{.*}}, %[[DW32]] : tensor<4x4xf32>
// CHECK: %[[M:.*]] = stablehlo.reduce{{.*}}applies stablehlo.maximum
// CHECK: stablehlo.maximum %{{.*}}, %[[M]] : tensor<bf16>
// CHECK: }
// CHECK: %[[G:.*]] = stablehlo.convert %{{.*}}#3 : (tensor<4x4xf32>) -> tensor<4x4xbf16>
// CHECK: stablehlo.subtract %arg0, %[[G]] : tensor<4x4xbf16>
func.func @main(%w: tensor<4x4xbf16>, %x: tensor<8x4xbf16>) -> (tensor<4x4xbf16>, tensor<bf16>) {
  %h = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xbf16>, tensor<4x4xbf16>) -> tensor<8x4xbf16>
  %dw = stablehlo.dot_general %x, %h, contracting_dims = [0] x [0] : (tensor<8x4xbf16>, tensor<8x4xbf16>) -> tensor<4x4xbf16>
  %ninf = stablehlo.constant dense<0xFF80> : tensor<bf16>
  %m = stablehlo.reduce(%h init: %ninf) applies stablehlo.maximum across dimensions = [0, 1] : (tensor<8x4xbf16>, tensor<bf16>) -> tensor<bf16>
  %w2 = stablehlo.subtract %w, %dw : tensor<4x4xbf16>
  return %w2, %m : tensor<4x4xbf16>, tensor<bf16>
}
