// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-annotate-cost)' | filecheck %s

// flops = 2 * batch * M * N * K; bytes = operands + result, read and written once.
// CHECK-LABEL: func.func @matmul
// 2*4*16*8 = 1024 flops; (4*8 + 8*16 + 4*16) * 4 bytes = 896
// CHECK: stablehlo.dot_general {{.*}}rhino.bytes = 896 : i64, rhino.flops = 1024 : i64
func.func @matmul(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// CHECK-LABEL: func.func @batched
// 2*2*3*5*4 = 240 flops; (24 + 40 + 30) * 4 = 376 bytes
// CHECK: stablehlo.dot_general {{.*}}rhino.bytes = 376 : i64, rhino.flops = 240 : i64
func.func @batched(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {
  %0 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [1] : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
  return %0 : tensor<2x3x5xf32>
}

// bf16 halves the bytes, not the flops: 2*8*8*8 = 1024; 3 * 64 * 2 = 384
// CHECK-LABEL: func.func @bf16
// CHECK: stablehlo.dot_general {{.*}}rhino.bytes = 384 : i64, rhino.flops = 1024 : i64
func.func @bf16(%a: tensor<8x8xbf16>, %b: tensor<8x8xbf16>) -> tensor<8x8xbf16> {
  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<8x8xbf16>, tensor<8x8xbf16>) -> tensor<8x8xbf16>
  return %0 : tensor<8x8xbf16>
}

// stablehlo.dot (the legacy form) contracts the last lhs dimension: 2*4*8 = 64
// CHECK-LABEL: func.func @matvec
// CHECK: stablehlo.dot {{.*}}rhino.flops = 64 : i64
func.func @matvec(%a: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<4xf32> {
  %0 = "stablehlo.dot"(%a, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
