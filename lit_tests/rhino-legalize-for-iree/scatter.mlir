// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree)' | filecheck %s

// Two index batch dims (2 x 3) and a window of 3 along indexed dim 1: the window is
// unrolled into the batch (start + iota), indices become (18, 2), updates (18). A window
// is in bounds when 0 <= row <= 5 and 0 <= col <= 5 - 3; the others add -0.0 at (0, 0).
// CHECK-LABEL: func.func public @two_batch_dims
// CHECK: %[[ROW:.*]] = stablehlo.reshape %{{.*}} : (tensor<2x3x1xi32>) -> tensor<2x3xi32>
// CHECK: stablehlo.compare GE, %[[ROW]]
// CHECK: %[[RMAX:.*]] = stablehlo.constant dense<5> : tensor<2x3xi32>
// CHECK: stablehlo.compare LE, %[[ROW]], %[[RMAX]]
// CHECK: %[[CMAX:.*]] = stablehlo.constant dense<2> : tensor<2x3xi32>
// CHECK: %[[T:.*]] = stablehlo.iota dim = 2 : tensor<2x3x3xi32>
// CHECK: stablehlo.add %{{.*}}, %[[T]] : tensor<2x3x3xi32>
// CHECK: stablehlo.reshape %{{.*}} : (tensor<2x3x3x2xi32>) -> tensor<18x2xi32>
// CHECK: stablehlo.reshape %arg2 : (tensor<2x3x3xf32>) -> tensor<18xf32>
// CHECK: stablehlo.constant dense<-0.000000e+00> : tensor<18xf32>
// CHECK: "stablehlo.scatter"(%arg0, %{{.*}}, %{{.*}}) <{indices_are_sorted = false, scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0, 1], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 1>, unique_indices = false}>
// CHECK: (tensor<6x5xf32>, tensor<18x2xi32>, tensor<18xf32>) -> tensor<6x5xf32>
func.func public @two_batch_dims(%x: tensor<6x5xf32>, %i: tensor<2x3x2xi32>, %u: tensor<2x3x3xf32>) -> tensor<6x5xf32> {
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 2>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<6x5xf32>, tensor<2x3x2xi32>, tensor<2x3x3xf32>) -> tensor<6x5xf32>
  return %0 : tensor<6x5xf32>
}

// index_vector_dim = 0: the index vector moves last by a transpose.
// CHECK-LABEL: func.func public @vector_first
// CHECK: stablehlo.transpose %arg1, dims = [1, 2, 0] : (tensor<2x2x3xi32>) -> tensor<2x3x2xi32>
// CHECK: (tensor<6x5xf32>, tensor<12x2xi32>, tensor<12xf32>) -> tensor<6x5xf32>
func.func public @vector_first(%x: tensor<6x5xf32>, %i: tensor<2x2x3xi32>, %u: tensor<2x3x2xf32>) -> tensor<6x5xf32> {
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [1], scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 0>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<6x5xf32>, tensor<2x2x3xi32>, tensor<2x3x2xf32>) -> tensor<6x5xf32>
  return %0 : tensor<6x5xf32>
}

// Batching dims: the batch position becomes an iota index component (for operand dim
// 0, after the given one for dim 1), so the operand is transposed to (6, 2, 5) and back.
// CHECK-LABEL: func.func public @batching
// CHECK: stablehlo.iota dim = 0 : tensor<2x3xi32>
// CHECK: stablehlo.transpose %arg0, dims = [1, 0, 2] : (tensor<2x6x5xf32>) -> tensor<6x2x5xf32>
// CHECK: (tensor<6x2x5xf32>, tensor<6x2xi32>, tensor<6x5xf32>) -> tensor<6x2x5xf32>
// CHECK: stablehlo.transpose %{{.*}}, dims = [1, 0, 2] : (tensor<6x2x5xf32>) -> tensor<2x6x5xf32>
func.func public @batching(%x: tensor<2x6x5xf32>, %i: tensor<2x3x1xi32>, %u: tensor<2x3x5xf32>) -> tensor<2x6x5xf32> {
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [1], input_batching_dims = [0], scatter_indices_batching_dims = [0], scatter_dims_to_operand_dims = [1], index_vector_dim = 2>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<2x6x5xf32>, tensor<2x3x1xi32>, tensor<2x3x5xf32>) -> tensor<2x6x5xf32>
  return %0 : tensor<2x6x5xf32>
}

// int8 multiply: out-of-bounds rows multiply row 0 by 1.
// CHECK-LABEL: func.func public @int8_multiply
// CHECK: %[[ONE:.*]] = stablehlo.constant dense<1> : tensor<7x4xi8>
// CHECK: stablehlo.select %{{.*}}, %arg2, %[[ONE]]
// CHECK: stablehlo.multiply
func.func public @int8_multiply(%x: tensor<5x4xi8>, %i: tensor<7x1xi32>, %u: tensor<7x4xi8>) -> tensor<5x4xi8> {
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%a: tensor<i8>, %b: tensor<i8>):
    %s = stablehlo.multiply %a, %b : tensor<i8>
    stablehlo.return %s : tensor<i8>
  }) : (tensor<5x4xi8>, tensor<7x1xi32>, tensor<7x4xi8>) -> tensor<5x4xi8>
  return %0 : tensor<5x4xi8>
}

// Overwriting columns (implicit index vector): the operand is transposed so the indexed
// dim comes first; with no identity, out-of-bounds columns go to a padding row (index 3)
// that is cut off again.
// CHECK-LABEL: func.func public @overwrite_cols
// CHECK: %[[XT:.*]] = stablehlo.transpose %arg0, dims = [1, 0] : (tensor<4x3xf32>) -> tensor<3x4xf32>
// CHECK: stablehlo.constant dense<3> : tensor<2x1xi32>
// CHECK: %[[XP:.*]] = stablehlo.pad %[[XT]], %{{.*}}, low = [0, 0], high = [1, 0], interior = [0, 0] : (tensor<3x4xf32>, tensor<f32>) -> tensor<4x4xf32>
// CHECK: %[[S:.*]] = "stablehlo.scatter"(%[[XP]],
// CHECK: %[[C:.*]] = stablehlo.slice %[[S]] [0:3, 0:4]
// CHECK: stablehlo.transpose %[[C]], dims = [1, 0] : (tensor<3x4xf32>) -> tensor<4x3xf32>
func.func public @overwrite_cols(%x: tensor<4x3xf32>, %i: tensor<2xi32>, %u: tensor<4x2xf32>) -> tensor<4x3xf32> {
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [0], inserted_window_dims = [1], scatter_dims_to_operand_dims = [1], index_vector_dim = 1>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    stablehlo.return %b : tensor<f32>
  }) : (tensor<4x3xf32>, tensor<2xi32>, tensor<4x2xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// A rank-0 operand (iree-compile crashed on it) gets a unit dim, indexed by 0.
// CHECK-LABEL: func.func public @rank0
// CHECK: stablehlo.reshape %arg0 : (tensor<f32>) -> tensor<1xf32>
// CHECK: (tensor<1xf32>, tensor<1x1xi32>, tensor<1xf32>) -> tensor<1xf32>
// CHECK: stablehlo.reshape %{{.*}} : (tensor<1xf32>) -> tensor<f32>
func.func public @rank0(%x: tensor<f32>, %i: tensor<0xi32>, %u: tensor<f32>) -> tensor<f32> {
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<index_vector_dim = 0>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.maximum %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<f32>, tensor<0xi32>, tensor<f32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// Already canonical with constant indices in bounds: nothing to do.
// CHECK-LABEL: func.func public @constant_in_bounds
// CHECK-NEXT: stablehlo.constant dense<{{\[\[}}1], [4]]> : tensor<2x1xi32>
// CHECK-NEXT: "stablehlo.scatter"(%arg0,
// CHECK-NOT: stablehlo.select
func.func public @constant_in_bounds(%x: tensor<5x4xf32>, %u: tensor<2x4xf32>) -> tensor<5x4xf32> {
  %i = stablehlo.constant dense<[[1], [4]]> : tensor<2x1xi32>
  %0 = "stablehlo.scatter"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<5x4xf32>, tensor<2x1xi32>, tensor<2x4xf32>) -> tensor<5x4xf32>
  return %0 : tensor<5x4xf32>
}

// Two operands: IREE converts one only; the op stays as it is.
// CHECK-LABEL: func.func public @variadic
// CHECK-NEXT: "stablehlo.scatter"(%arg0, %arg1, %arg2, %arg3, %arg4)
func.func public @variadic(%x: tensor<4xf32>, %y: tensor<4xf32>, %i: tensor<1x1xi32>, %u: tensor<1xf32>, %v: tensor<1xf32>) -> tensor<4xf32> {
  %0:2 = "stablehlo.scatter"(%x, %y, %i, %u, %v) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>, %c: tensor<f32>, %d: tensor<f32>):
    stablehlo.return %c, %d : tensor<f32>, tensor<f32>
  }) : (tensor<4xf32>, tensor<4xf32>, tensor<1x1xi32>, tensor<1xf32>, tensor<1xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return %0#0 : tensor<4xf32>
}
