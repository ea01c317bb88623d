// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-remat{policy=selective})' | filecheck %s
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-remat{policy=full})' | filecheck %s --check-prefix=FULL

// Two layers x -> h = x @ w -> h * exp(h), loss = sum. The backward of layer 0 reads h
// (%0, a weight matmul's output) and exp(h) (%1). Selective recomputation keeps h and
// recomputes exp(h) from it; full recomputation also redoes the matmul from the layer's
// input (%arg2, through the barrier) and the weight (%arg0, read directly). The last layer
// (its backward starts right after the loss) is not recomputed.
// CHECK: rhino.remat = "{{.*}}\22dropped\22: [{\22bytes\22: 32, \22layer\22: 0, \22value\22: \221:0\22}]
// CHECK-LABEL: func.func public @main
// CHECK: %[[H:.*]] = stablehlo.dot_general %arg2, %arg0
// CHECK: %[[E:.*]] = stablehlo.exponential %[[H]]
// CHECK: %[[G:.*]] = stablehlo.dot_general %{{.*}}, %arg1, contracting_dims = [1] x [1]
// CHECK: stablehlo.multiply %[[H]], %[[G]]
// CHECK: %[[B:.*]]:2 = stablehlo.optimization_barrier %[[G]], %[[H]]
// CHECK: %[[H2:.*]] = stablehlo.add %[[B]]#1, %{{.*}}
// CHECK: %[[E2:.*]] = stablehlo.exponential %[[H2]]
// CHECK-NOT: %[[E]] :
// CHECK: stablehlo.multiply %[[G]], %[[E2]]

// FULL: rhino.remat = "{{.*}}\22dropped\22: [{\22bytes\22: 32, \22layer\22: 0, \22value\22: \220:0\22}, {\22bytes\22: 32, \22layer\22: 0, \22value\22: \221:0\22}]
// FULL-LABEL: func.func public @main
// FULL: %[[G:.*]] = stablehlo.dot_general %{{.*}}, %arg1, contracting_dims = [1] x [1]
// FULL: %[[B:.*]]:2 = stablehlo.optimization_barrier %[[G]], %arg2
// FULL: %[[X:.*]] = stablehlo.add %[[B]]#1, %{{.*}}
// FULL: %[[H2:.*]] = stablehlo.dot_general %[[X]], %arg0
// FULL: %[[E2:.*]] = stablehlo.exponential %[[H2]]
// FULL: stablehlo.multiply %[[H2]], %[[G]]
// FULL: stablehlo.multiply %[[G]], %[[E2]]
module @jit_step attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<4x4xf32>, %arg1: tensor<4x4xf32>, %arg2: tensor<2x4xf32>) -> (tensor<4x4xf32> {jax.result_info = "result[0][0]"}, tensor<4x4xf32> {jax.result_info = "result[0][1]"}, tensor<f32> {jax.result_info = "result[1]"}) {
    %0 = stablehlo.dot_general %arg2, %arg0, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %1 = stablehlo.exponential %0 : tensor<2x4xf32>
    %2 = stablehlo.multiply %0, %1 : tensor<2x4xf32>
    %3 = stablehlo.dot_general %2, %arg1, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %4 = stablehlo.exponential %3 : tensor<2x4xf32>
    %5 = stablehlo.multiply %3, %4 : tensor<2x4xf32>
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %6 = stablehlo.reduce(%5 init: %cst) applies stablehlo.add across dimensions = [0, 1] : (tensor<2x4xf32>, tensor<f32>) -> tensor<f32>
    %cst_0 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %7 = stablehlo.broadcast_in_dim %cst_0, dims = [] : (tensor<f32>) -> tensor<2x4xf32>
    %8 = stablehlo.multiply %3, %7 : tensor<2x4xf32>
    %9 = stablehlo.multiply %7, %4 : tensor<2x4xf32>
    %10 = stablehlo.multiply %8, %4 : tensor<2x4xf32>
    %11 = stablehlo.add %9, %10 : tensor<2x4xf32>
    %12 = stablehlo.dot_general %11, %2, contracting_dims = [0] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<4x4xf32>
    %13 = stablehlo.transpose %12, dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %14 = stablehlo.dot_general %11, %arg1, contracting_dims = [1] x [1], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %15 = stablehlo.multiply %0, %14 : tensor<2x4xf32>
    %16 = stablehlo.multiply %14, %1 : tensor<2x4xf32>
    %17 = stablehlo.multiply %15, %1 : tensor<2x4xf32>
    %18 = stablehlo.add %16, %17 : tensor<2x4xf32>
    %19 = stablehlo.dot_general %18, %arg2, contracting_dims = [0] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<4x4xf32>
    %20 = stablehlo.transpose %19, dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %cst_1 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %21 = stablehlo.broadcast_in_dim %cst_1, dims = [] : (tensor<f32>) -> tensor<4x4xf32>
    %22 = stablehlo.multiply %21, %20 : tensor<4x4xf32>
    %23 = stablehlo.subtract %arg0, %22 : tensor<4x4xf32>
    %cst_2 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %24 = stablehlo.broadcast_in_dim %cst_2, dims = [] : (tensor<f32>) -> tensor<4x4xf32>
    %25 = stablehlo.multiply %24, %13 : tensor<4x4xf32>
    %26 = stablehlo.subtract %arg1, %25 : tensor<4x4xf32>
    return %23, %26, %6 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<f32>
  }
}

