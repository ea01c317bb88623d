// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-inline,func.func(canonicalize))' | filecheck %s
// RUN: cat %s | rhino-opt - --split-input-file | filecheck %s --check-prefix=STDIN

// Chunks are processed one by one and printed separated by the marker; upstream
// passes (canonicalize, which drops the dead add) mix with rhino passes in one pipeline.
// CHECK-LABEL: func.func @first
// CHECK-NEXT: stablehlo.add %arg0, %arg0
// CHECK: // -----
// CHECK-LABEL: func.func @second
// CHECK-NEXT: return %arg0
// STDIN-LABEL: func.func @first
// STDIN: // -----
// STDIN-LABEL: func.func @second
func.func @first(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @double(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @double(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @second(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
  return %arg0 : tensor<4xf32>
}
