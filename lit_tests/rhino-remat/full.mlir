// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-remat{policy=full})' | filecheck %s
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-remat{policy=none})' | filecheck %s --check-prefix=NONE

// Three identical tanh layers (one group) and a sum-of-squares loss; the train step as
// jax.value_and_grad lowers it. The backward reads, per layer, tanh's output (the next
// layer's input: always kept) and 1 - tanh (computed with the forward: a residual). Full
// recomputation keeps only each layer's input: 1 - tanh is recomputed right before the
// backward multiply that reads it, from the input passed through an optimization barrier
// together with the incoming gradient (and anchored to it by adding -0.0 derived from
// it); the forward's copy (and the constant it read) is erased.
// CHECK: module @jit_step attributes {{{.*}}rhino.remat = "{{.*}}\22cloned_ops\22: 9{{.*}}\22dropped_bytes\22: 96{{.*}}\22erased_ops\22: 9{{.*}}\22layers\22: 3, \22policy\22: \22full\22
// CHECK-LABEL: func.func public @main
// CHECK: %[[H0:.*]] = stablehlo.tanh
// CHECK-NOT: stablehlo.subtract
// CHECK: %[[H1:.*]] = stablehlo.tanh
// CHECK: %[[H2:.*]] = stablehlo.tanh
// CHECK: stablehlo.reduce
// The last layer's backward: the barrier waits for the gradient %[[G:.*]]
// CHECK: %[[G:.*]] = stablehlo.add
// CHECK: %[[B:.*]]:2 = stablehlo.optimization_barrier %[[G]], %[[H2]]
// CHECK: %[[Z:.*]] = stablehlo.select
// CHECK: %[[ZB:.*]] = stablehlo.broadcast_in_dim %[[Z]], dims = [0]
// CHECK: %[[IN:.*]] = stablehlo.add %[[B]]#1, %[[ZB]]
// CHECK: %[[ONE:.*]] = stablehlo.broadcast_in_dim
// CHECK: %[[D:.*]] = stablehlo.subtract %[[ONE]], %[[IN]]
// CHECK: stablehlo.multiply %[[G]], %[[D]]
// CHECK: stablehlo.optimization_barrier %{{.*}}, %[[H1]]
// CHECK: stablehlo.optimization_barrier %{{.*}}, %[[H0]]
// CHECK: return

// NONE-NOT: rhino.remat
// NONE-NOT: optimization_barrier
module @jit_step attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<4x4xf32>, %arg1: tensor<4x4xf32>, %arg2: tensor<4x4xf32>, %arg3: tensor<2x4xf32>) -> (tensor<4x4xf32> {jax.result_info = "result[0][0]"}, tensor<4x4xf32> {jax.result_info = "result[0][1]"}, tensor<4x4xf32> {jax.result_info = "result[0][2]"}, tensor<f32> {jax.result_info = "result[1]"}) {
    %0 = stablehlo.dot_general %arg3, %arg0, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %1 = stablehlo.tanh %0 : tensor<2x4xf32>
    %cst = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %2 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<2x4xf32>
    %3 = stablehlo.subtract %2, %1 : tensor<2x4xf32>
    %4 = stablehlo.dot_general %1, %arg1, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %5 = stablehlo.tanh %4 : tensor<2x4xf32>
    %cst_0 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %6 = stablehlo.broadcast_in_dim %cst_0, dims = [] : (tensor<f32>) -> tensor<2x4xf32>
    %7 = stablehlo.subtract %6, %5 : tensor<2x4xf32>
    %8 = stablehlo.dot_general %5, %arg2, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %9 = stablehlo.tanh %8 : tensor<2x4xf32>
    %cst_1 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %10 = stablehlo.broadcast_in_dim %cst_1, dims = [] : (tensor<f32>) -> tensor<2x4xf32>
    %11 = stablehlo.subtract %10, %9 : tensor<2x4xf32>
    %12 = stablehlo.multiply %9, %9 : tensor<2x4xf32>
    %cst_2 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %13 = stablehlo.reduce(%12 init: %cst_2) applies stablehlo.add across dimensions = [0, 1] : (tensor<2x4xf32>, tensor<f32>) -> tensor<f32>
    %cst_3 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %14 = stablehlo.broadcast_in_dim %cst_3, dims = [] : (tensor<f32>) -> tensor<2x4xf32>
    %15 = stablehlo.multiply %9, %14 : tensor<2x4xf32>
    %16 = stablehlo.multiply %14, %9 : tensor<2x4xf32>
    %17 = stablehlo.add %15, %16 : tensor<2x4xf32>
    %18 = stablehlo.multiply %17, %11 : tensor<2x4xf32>
    %19 = stablehlo.multiply %18, %9 : tensor<2x4xf32>
    %20 = stablehlo.add %18, %19 : tensor<2x4xf32>
    %21 = stablehlo.dot_general %20, %5, contracting_dims = [0] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<4x4xf32>
    %22 = stablehlo.transpose %21, dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %23 = stablehlo.dot_general %20, %arg2, contracting_dims = [1] x [1], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %24 = stablehlo.multiply %23, %7 : tensor<2x4xf32>
    %25 = stablehlo.multiply %24, %5 : tensor<2x4xf32>
    %26 = stablehlo.add %24, %25 : tensor<2x4xf32>
    %27 = stablehlo.dot_general %26, %1, contracting_dims = [0] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<4x4xf32>
    %28 = stablehlo.transpose %27, dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %29 = stablehlo.dot_general %26, %arg1, contracting_dims = [1] x [1], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %30 = stablehlo.multiply %29, %3 : tensor<2x4xf32>
    %31 = stablehlo.multiply %30, %1 : tensor<2x4xf32>
    %32 = stablehlo.add %30, %31 : tensor<2x4xf32>
    %33 = stablehlo.dot_general %32, %arg3, contracting_dims = [0] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<4x4xf32>
    %34 = stablehlo.transpose %33, dims = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %cst_4 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %35 = stablehlo.broadcast_in_dim %cst_4, dims = [] : (tensor<f32>) -> tensor<4x4xf32>
    %36 = stablehlo.multiply %35, %34 : tensor<4x4xf32>
    %37 = stablehlo.subtract %arg0, %36 : tensor<4x4xf32>
    %cst_5 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %38 = stablehlo.broadcast_in_dim %cst_5, dims = [] : (tensor<f32>) -> tensor<4x4xf32>
    %39 = stablehlo.multiply %38, %28 : tensor<4x4xf32>
    %40 = stablehlo.subtract %arg1, %39 : tensor<4x4xf32>
    %cst_6 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %41 = stablehlo.broadcast_in_dim %cst_6, dims = [] : (tensor<f32>) -> tensor<4x4xf32>
    %42 = stablehlo.multiply %41, %22 : tensor<4x4xf32>
    %43 = stablehlo.subtract %arg2, %42 : tensor<4x4xf32>
    return %37, %40, %43, %13 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<f32>
  }
}

