// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Fixed bug (IREE ranks wrote past the buffer: SIGSEGV / wrong numbers): a row-sharded
// table indexed with two index batch dims. After the shift by the shard start, no index
// may leave the local operand (IREE 3.13 does not skip out-of-bounds scatter updates nor
// clamp gather indices): an add scatter sends invalid updates to row 0 as 0, an overwrite
// scatter to one extra row that is cropped off, a gather clamps and masks.

// CHECK-LABEL: func.func @main
// CHECK: stablehlo.subtract
// CHECK: stablehlo.select
// CHECK: stablehlo.select
// CHECK: "stablehlo.scatter"
// CHECK-SAME: unique_indices = false
// CHECK: (tensor<3x8xf32>, tensor<3x4x1xi32>, tensor<3x4x8xf32>) -> tensor<3x8xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%t: tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %ix: tensor<3x4x1xi32>,
               %u: tensor<3x4x8xf32>) -> (tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) {
  %0 = "stablehlo.scatter"(%t, %ix, %u) ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) {scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [0],
      scatter_dims_to_operand_dims = [0], index_vector_dim = 2>}
      : (tensor<10x8xf32>, tensor<3x4x1xi32>, tensor<3x4x8xf32>) -> tensor<10x8xf32>
  return %0 : tensor<10x8xf32>
}

// -----

// CHECK-LABEL: func.func @main
// CHECK: stablehlo.pad
// CHECK: "stablehlo.scatter"
// CHECK-SAME: unique_indices = false
// CHECK: (tensor<4x8xf32>, tensor<3x4xi32>, tensor<3x4x8xf32>) -> tensor<4x8xf32>
// CHECK: stablehlo.slice %{{.*}} [0:3, 0:8]
sdy.mesh @mesh = <["x"=4]>
func.func @main(%t: tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %ix: tensor<3x4xi32>,
                %u: tensor<3x4x8xf32>) -> (tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) {
  %0 = "stablehlo.scatter"(%t, %ix, %u) ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    stablehlo.return %b : tensor<f32>
  }) {scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [0],
      scatter_dims_to_operand_dims = [0], index_vector_dim = 2>, unique_indices = true}
      : (tensor<10x8xf32>, tensor<3x4xi32>, tensor<3x4x8xf32>) -> tensor<10x8xf32>
  return %0 : tensor<10x8xf32>
}

// -----

// CHECK-LABEL: func.func @main
// CHECK: stablehlo.clamp
// CHECK: stablehlo.subtract
// CHECK: stablehlo.clamp
// CHECK: "stablehlo.gather"
// CHECK: stablehlo.select
// CHECK: stablehlo.all_reduce
sdy.mesh @mesh = <["x"=4]>
func.func @main(%t: tensor<10x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %ix: tensor<3x4x1xi32>)
    -> tensor<3x4x8xf32> {
  %0 = "stablehlo.gather"(%t, %ix) {dimension_numbers = #stablehlo.gather<offset_dims = [2], collapsed_slice_dims = [0],
      start_index_map = [0], index_vector_dim = 2>, slice_sizes = array<i64: 1, 8>}
      : (tensor<10x8xf32>, tensor<3x4x1xi32>) -> tensor<3x4x8xf32>
  return %0 : tensor<3x4x8xf32>
}
