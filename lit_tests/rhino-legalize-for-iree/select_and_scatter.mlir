// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree)' | filecheck %s

// A window of 2 with stride 3 and one element of low padding: position 0 of the first
// window is padding (never selected), the select region runs on whole strided slices
// in row-major window order, and the chosen elements go back through one scatter that
// IREE converts (one batch dim of index vectors; the add region moved over), whose
// result sits behind a barrier (IREE fused consumers into it and ran out of stack).
// CHECK-LABEL: func.func public @padded
// CHECK-NOT: select_and_scatter
// CHECK: %[[XP:.*]] = stablehlo.pad %arg0, %{{.*}}, low = [1], high = [0], interior = [0]
// CHECK: %[[V0:.*]] = stablehlo.slice %[[XP]] [0:4:3]
// CHECK: %[[PAD:.*]] = stablehlo.constant dense<[false, true]> : tensor<2xi1>
// CHECK: %[[V1:.*]] = stablehlo.slice %[[XP]] [1:5:3]
// CHECK: %[[KEEP:.*]] = stablehlo.compare GE, %[[V0]], %[[V1]], FLOAT
// CHECK: %[[TAKE:.*]] = stablehlo.not %[[KEEP]]
// CHECK: stablehlo.select %{{.*}}, %[[V1]], %[[V0]]
// CHECK: stablehlo.iota dim = 0 : tensor<2xi32>
// CHECK: %[[S:.*]] = "stablehlo.scatter"(%{{.*}}) <{indices_are_sorted = false, scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>, unique_indices = false}>
// CHECK: stablehlo.add
// CHECK: (tensor<5xf32>, tensor<2x1xi32>, tensor<2xf32>) -> tensor<5xf32>
// CHECK: %[[R:.*]] = stablehlo.optimization_barrier %[[S]] : tensor<5xf32>
// CHECK: return %[[R]]
func.func public @padded(%x: tensor<5xf32>, %s: tensor<2xf32>) -> tensor<5xf32> {
  %i = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = "stablehlo.select_and_scatter"(%x, %s, %i) <{padding = dense<[[1, 0]]> : tensor<1x2xi64>, window_dimensions = array<i64: 2>, window_strides = array<i64: 3>}> ({
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %c = stablehlo.compare GE, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
      stablehlo.return %c : tensor<i1>
    }, {
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %c = stablehlo.add %a, %b : tensor<f32>
      stablehlo.return %c : tensor<f32>
    }) : (tensor<5xf32>, tensor<2xf32>, tensor<f32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// JAX's max-pool gradient: the operand is already padded with -inf, padding 0. Nine
// window positions, no mask; the index vector is (row, col) of the chosen element.
// CHECK-LABEL: func.func public @maxpool_grad
// CHECK-NOT: select_and_scatter
// CHECK-COUNT-9: stablehlo.slice %arg0
// CHECK-NOT: stablehlo.pad
// CHECK: "stablehlo.scatter"(%{{.*}}) <{indices_are_sorted = false, scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0, 1], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 1>, unique_indices = false}>
// CHECK: (tensor<5x5xf32>, tensor<4x2xi32>, tensor<4xf32>) -> tensor<5x5xf32>
func.func public @maxpool_grad(%x: tensor<5x5xf32>, %s: tensor<2x2xf32>) -> tensor<5x5xf32> {
  %i = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = "stablehlo.select_and_scatter"(%x, %s, %i) <{window_dimensions = array<i64: 3, 3>, window_strides = array<i64: 2, 2>}> ({
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %c = stablehlo.compare GE, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
      stablehlo.return %c : tensor<i1>
    }, {
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %c = stablehlo.add %a, %b : tensor<f32>
      stablehlo.return %c : tensor<f32>
    }) : (tensor<5x5xf32>, tensor<2x2xf32>, tensor<f32>) -> tensor<5x5xf32>
  return %0 : tensor<5x5xf32>
}

// A select region that is not elementwise stays (IREE's refusal then names it).
// CHECK-LABEL: func.func public @custom_select
// CHECK: "stablehlo.select_and_scatter"
func.func public @custom_select(%x: tensor<4xf32>, %s: tensor<2xf32>) -> tensor<4xf32> {
  %i = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = "stablehlo.select_and_scatter"(%x, %s, %i) <{window_dimensions = array<i64: 2>, window_strides = array<i64: 2>}> ({
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %r = stablehlo.reshape %a : (tensor<f32>) -> tensor<1xf32>
      %q = stablehlo.reshape %r : (tensor<1xf32>) -> tensor<f32>
      %c = stablehlo.compare GE, %q, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
      stablehlo.return %c : tensor<i1>
    }, {
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %c = stablehlo.add %a, %b : tensor<f32>
      stablehlo.return %c : tensor<f32>
    }) : (tensor<4xf32>, tensor<2xf32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
