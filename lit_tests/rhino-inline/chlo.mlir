// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-inline)' | filecheck %s
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-inline{legalize-chlo=false})' | filecheck %s --check-prefix=KEEP

// chlo ops that JAX emits (layer norm's square, gelu's erfc) become plain StableHLO,
// including inside inlined helpers.
// CHECK-LABEL: func.func public @square
// CHECK-NOT: chlo.
// CHECK: stablehlo.multiply %arg0, %arg0
// KEEP-LABEL: func.func public @square
// KEEP: chlo.square %arg0
func.func public @square(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = chlo.square %arg0 : tensor<4xf32> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// CHECK-LABEL: func.func public @erfc_in_helper
// CHECK-NOT: call
// CHECK-NOT: chlo.
// CHECK: return
// KEEP-LABEL: func.func public @erfc_in_helper
// KEEP-NOT: call
// KEEP: chlo.erfc %arg0
func.func public @erfc_in_helper(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @erfc(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @erfc(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = chlo.erfc %arg0 : tensor<4xf32> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
