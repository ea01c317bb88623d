// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-annotate-cost)' | filecheck %s

// Elementwise: one flop per output element. Data movement: zero flops.
// CHECK-LABEL: func.func @pointwise
// CHECK: stablehlo.add {{.*}}rhino.bytes = 288 : i64, rhino.flops = 24 : i64
// CHECK: stablehlo.compare {{.*}}rhino.bytes = 216 : i64, rhino.flops = 24 : i64
// CHECK: stablehlo.select {{.*}}rhino.flops = 24 : i64
// CHECK: stablehlo.transpose {{.*}}rhino.bytes = 192 : i64, rhino.flops = 0 : i64
func.func @pointwise(%a: tensor<4x6xf32>, %b: tensor<4x6xf32>) -> tensor<6x4xf32> {
  %0 = stablehlo.add %a, %b : tensor<4x6xf32>
  %1 = stablehlo.compare GT, %0, %b : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xi1>
  %2 = stablehlo.select %1, %0, %b : tensor<4x6xi1>, tensor<4x6xf32>
  %3 = stablehlo.transpose %2, dims = [1, 0] : (tensor<4x6xf32>) -> tensor<6x4xf32>
  return %3 : tensor<6x4xf32>
}

// Reduce: one flop per input element; its combiner body is not annotated.
// CHECK-LABEL: func.func @reduce
// CHECK: stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.add across dimensions = [1] {rhino.bytes = 116 : i64, rhino.flops = 24 : i64}
func.func @reduce(%a: tensor<4x6xf32>) -> tensor<4xf32> {
  %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
  %0 = stablehlo.reduce(%a init: %cst) applies stablehlo.add across dimensions = [1] : (tensor<4x6xf32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// Loops: the while counts its carries, its body ops are annotated one by one.
// CHECK-LABEL: func.func @loop
// CHECK: stablehlo.while{{.*}}attributes {rhino.bytes = 40 : i64, rhino.flops = 0 : i64}
// CHECK: stablehlo.compare {{.*}}rhino.flops = 1 : i64
// CHECK: stablehlo.multiply {{.*}}rhino.flops = 4 : i64
func.func @loop(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.while(%i = %c0, %v = %x) : tensor<i32>, tensor<4xf32>
  cond {
    %c3 = stablehlo.constant dense<3> : tensor<i32>
    %lt = stablehlo.compare LT, %i, %c3, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    stablehlo.return %lt : tensor<i1>
  } do {
    %w = stablehlo.multiply %v, %v : tensor<4xf32>
    %c1 = stablehlo.constant dense<1> : tensor<i32>
    %j = stablehlo.add %i, %c1 : tensor<i32>
    stablehlo.return %j, %w : tensor<i32>, tensor<4xf32>
  }
  return %0#1 : tensor<4xf32>
}
