// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-annotate-cost{device=cpu-test})' | filecheck %s

// cpu-test: 100 GFLOP/s, 10 GB/s. A 64x64x64 f32 matmul does 524288 flops (5.24 us of
// math) and moves 49152 bytes (4.9 us): compute-bound, plus the 10 us launch overhead.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.dot_general {{.*}}rhino.flops = 524288 : i64, rhino.time_s = 1.524288{{[0-9]*}}E-5 : f64
func.func @main(%a: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %0 = stablehlo.dot_general %a, %a, contracting_dims = [1] x [0] : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  return %0 : tensor<64x64xf32>
}
