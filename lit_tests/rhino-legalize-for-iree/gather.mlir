// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree)' | filecheck %s
// A second run changes nothing:
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree,rhino-legalize-for-iree)' | filecheck %s

// One component: its start index clamped into [0, 3 - 1] (the spec's rule, which
// IREE's gather skipped for an explicit index vector on a collapsed dim).
// CHECK-LABEL: func.func public @rows
// CHECK-DAG: %[[LO:.*]] = stablehlo.constant dense<0> : tensor<i32>
// CHECK-DAG: %[[HI:.*]] = stablehlo.constant dense<2> : tensor<i32>
// CHECK: %[[C:.*]] = stablehlo.clamp %[[LO]], %arg1, %[[HI]] : (tensor<i32>, tensor<7x1xi32>, tensor<i32>) -> tensor<7x1xi32>
// CHECK: "stablehlo.gather"(%arg0, %[[C]])
// CHECK-NOT: stablehlo.clamp
func.func public @rows(%x: tensor<3x4xf32>, %i: tensor<7x1xi32>) -> tensor<7x4xf32> {
  %0 = "stablehlo.gather"(%x, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1>, slice_sizes = array<i64: 1, 4>}> : (tensor<3x4xf32>, tensor<7x1xi32>) -> tensor<7x4xf32>
  return %0 : tensor<7x4xf32>
}

// Two components (start_index_map = [1, 0], a window of 2 on dim 1) whose bounds
// agree, [4 - 2, 3 - 1] = [2, 2]: rank-0 bounds again.
// CHECK-LABEL: func.func public @point
// CHECK-DAG: %[[LO:.*]] = stablehlo.constant dense<0> : tensor<i32>
// CHECK-DAG: %[[HI:.*]] = stablehlo.constant dense<2> : tensor<i32>
// CHECK: %[[C:.*]] = stablehlo.clamp %[[LO]], %arg1, %[[HI]] : (tensor<i32>, tensor<2x5xi32>, tensor<i32>) -> tensor<2x5xi32>
// CHECK: "stablehlo.gather"(%arg0, %[[C]])
func.func public @point(%x: tensor<3x4xf32>, %i: tensor<2x5xi32>) -> tensor<5x2xf32> {
  %0 = "stablehlo.gather"(%x, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [1, 0], index_vector_dim = 0>, slice_sizes = array<i64: 1, 2>}> : (tensor<3x4xf32>, tensor<2x5xi32>) -> tensor<5x2xf32>
  return %0 : tensor<5x2xf32>
}

// Bounds per component, [4 - 1, 3 - 1] = [3, 2]: a row of bounds broadcast along the
// index vector dim (1).
// CHECK-LABEL: func.func public @uneven_bounds
// CHECK-DAG: %[[ROW:.*]] = stablehlo.constant dense<[3, 2]> : tensor<2xi32>
// CHECK: %[[HI:.*]] = stablehlo.broadcast_in_dim %[[ROW]], dims = [1] : (tensor<2xi32>) -> tensor<5x2xi32>
// CHECK: %[[LO:.*]] = stablehlo.broadcast_in_dim %{{.*}}, dims = [] : (tensor<i32>) -> tensor<5x2xi32>
// CHECK: %[[C:.*]] = stablehlo.clamp %[[LO]], %arg1, %[[HI]] : tensor<5x2xi32>
// CHECK: "stablehlo.gather"(%arg0, %[[C]])
func.func public @uneven_bounds(%x: tensor<3x4xf32>, %i: tensor<5x2xi32>) -> tensor<5xf32> {
  %0 = "stablehlo.gather"(%x, %i) <{dimension_numbers = #stablehlo.gather<collapsed_slice_dims = [0, 1], start_index_map = [1, 0], index_vector_dim = 1>, slice_sizes = array<i64: 1, 1>}> : (tensor<3x4xf32>, tensor<5x2xi32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// Constant indices already in range: nothing to clamp.
// CHECK-LABEL: func.func public @constant_in_range
// CHECK-NOT: stablehlo.clamp
func.func public @constant_in_range(%x: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %i = stablehlo.constant dense<[[0], [2]]> : tensor<2x1xi32>
  %0 = "stablehlo.gather"(%x, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1>, slice_sizes = array<i64: 1, 4>}> : (tensor<3x4xf32>, tensor<2x1xi32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}
