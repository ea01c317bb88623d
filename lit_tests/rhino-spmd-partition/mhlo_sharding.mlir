// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// mhlo.sharding on the arguments (XLA/GSPMD form) is read as sdy on one mesh.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<4x4xf32> {rhino.global_type = tensor<8x4xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"axis_0"}, {}]>}
// CHECK-NOT: mhlo.sharding
// CHECK: stablehlo.exponential %arg0 : tensor<4x4xf32>
func.func @main(%a: tensor<8x4xf32> {mhlo.sharding = "{devices=[2,1]0,1}"}) -> tensor<8x4xf32> {
  %0 = stablehlo.exponential %a : tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
