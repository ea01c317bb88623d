// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-inline)' | filecheck %s

// A JAX-style helper call is replaced by the helper's body.
// CHECK-LABEL: func.func public @simple
// CHECK-NOT: call
// CHECK: %[[ZERO:.*]] = stablehlo.broadcast_in_dim
// CHECK: %[[R:.*]] = stablehlo.maximum %arg0, %[[ZERO]]
// CHECK: return %[[R]]
func.func public @simple(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @relu(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// Calls inside an inlined body are inlined too (closed_call -> relu).
// CHECK-LABEL: func.func public @chain
// CHECK-NOT: call
// CHECK: stablehlo.dot_general %arg0, %arg1
// CHECK: stablehlo.maximum
func.func public @chain(%arg0: tensor<4x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %0 = call @closed_call(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// Every result of a multi-result call is rewired.
// CHECK-LABEL: func.func public @multi
// CHECK-NOT: call
// CHECK-DAG: %[[S:.*]] = stablehlo.add %arg0, %arg1
// CHECK-DAG: %[[P:.*]] = stablehlo.multiply %arg0, %arg1
// CHECK: return %[[P]], %[[S]]
func.func public @multi(%arg0: tensor<f32>, %arg1: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
  %0:2 = call @sum_prod(%arg0, %arg1) : (tensor<f32>, tensor<f32>) -> (tensor<f32>, tensor<f32>)
  return %0#1, %0#0 : tensor<f32>, tensor<f32>
}

// Calls inside a while body (a scan) are inlined in place.
// CHECK-LABEL: func.func public @in_while
// CHECK: stablehlo.while
// CHECK: do {
// CHECK-NOT: call
// CHECK: stablehlo.maximum %iterArg_0
// CHECK: stablehlo.return
func.func public @in_while(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.while(%i = %c0, %x = %arg0) : tensor<i32>, tensor<4xf32>
  cond {
    %c3 = stablehlo.constant dense<3> : tensor<i32>
    %lt = stablehlo.compare LT, %i, %c3, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    stablehlo.return %lt : tensor<i1>
  } do {
    %y = func.call @relu(%x) : (tensor<4xf32>) -> tensor<4xf32>
    %c1 = stablehlo.constant dense<1> : tensor<i32>
    %j = stablehlo.add %i, %c1 : tensor<i32>
    stablehlo.return %j, %y : tensor<i32>, tensor<4xf32>
  }
  return %0#1 : tensor<4xf32>
}

// Calls inside case branches are inlined in every branch.
// CHECK-LABEL: func.func public @in_case
// CHECK: stablehlo.case
// CHECK-NOT: call
// CHECK: stablehlo.maximum
// CHECK: stablehlo.add
func.func public @in_case(%arg0: tensor<i32>, %arg1: tensor<f32>) -> tensor<f32> {
  %0 = "stablehlo.case"(%arg0) ({
    %r = func.call @relu_scalar(%arg1) : (tensor<f32>) -> tensor<f32>
    stablehlo.return %r : tensor<f32>
  }, {
    %s:2 = func.call @sum_prod(%arg1, %arg1) : (tensor<f32>, tensor<f32>) -> (tensor<f32>, tensor<f32>)
    stablehlo.return %s#0 : tensor<f32>
  }) : (tensor<i32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// Declarations (runtime imports) and public callees stay calls.
// CHECK-LABEL: func.func public @kept
// CHECK: call @rhino.all_reduce_sum(%arg0)
// CHECK: call @simple(
func.func public @kept(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @rhino.all_reduce_sum(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = call @simple(%0) : (tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// The inlined private functions are erased; the declaration stays.
// CHECK: func.func private @rhino.all_reduce_sum
// CHECK-NOT: func.func private @relu
// CHECK-NOT: func.func private @closed_call
// CHECK-NOT: func.func private @sum_prod
func.func private @rhino.all_reduce_sum(tensor<4xf32>) -> tensor<4xf32>
func.func private @relu(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
  %0 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<4xf32>
  %1 = stablehlo.maximum %arg0, %0 : tensor<4xf32>
  return %1 : tensor<4xf32>
}
func.func private @relu_scalar(%arg0: tensor<f32>) -> tensor<f32> {
  %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
  %0 = stablehlo.maximum %arg0, %cst : tensor<f32>
  return %0 : tensor<f32>
}
func.func private @relu44(%arg0: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %cst = stablehlo.constant dense<0.000000e+00> : tensor<4x4xf32>
  %0 = stablehlo.maximum %arg0, %cst : tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}
func.func private @closed_call(%arg0: tensor<4x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  %1 = call @relu44(%0) : (tensor<4x4xf32>) -> tensor<4x4xf32>
  return %1 : tensor<4x4xf32>
}
func.func private @sum_prod(%arg0: tensor<f32>, %arg1: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
  %0 = stablehlo.add %arg0, %arg1 : tensor<f32>
  %1 = stablehlo.multiply %arg0, %arg1 : tensor<f32>
  return %0, %1 : tensor<f32>, tensor<f32>
}
