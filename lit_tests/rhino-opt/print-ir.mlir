// RUN: rhino-opt %s --print-ir-after-all --pass-pipeline='builtin.module(rhino-inline,cse)' -o %t 2>&1 | filecheck %s
// RUN: filecheck %s --input-file=%t --check-prefix=OUT

// CHECK: // -----// IR Dump After rhino-inline //----- //
// CHECK-LABEL: func.func @main
// CHECK: // -----// IR Dump After cse //----- //
// CHECK-LABEL: func.func @main
// OUT-LABEL: func.func @main
// OUT-NOT: call
func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @id(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @id(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
}
