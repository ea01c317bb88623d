// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// A scatter-add of 2-way batch-sharded updates into zeros (an embedding gradient): each
// device scatters its own 4 updates into its own zeros, the result is partial over x and
// the return completes it with one all_reduce; the indices and updates are not gathered.

// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_gather
// CHECK: "stablehlo.scatter"
// CHECK: (tensor<10x4xf32>, tensor<4x1xi32>, tensor<4x4xf32>) -> tensor<10x4xf32>
// CHECK-NOT: stablehlo.all_gather
// CHECK: %[[R:.*]] = "stablehlo.all_reduce"
// CHECK-NOT: stablehlo.all_gather
// CHECK: return %[[R]] : tensor<10x4xf32>
sdy.mesh @mesh = <["x"=2]>
func.func @main(%ix: tensor<8x1xi32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>},
                %u: tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<10x4xf32> {
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %z = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<f32>) -> tensor<10x4xf32>
  %0 = "stablehlo.scatter"(%z, %ix, %u) ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) {scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0],
      scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}
      : (tensor<10x4xf32>, tensor<8x1xi32>, tensor<8x4xf32>) -> tensor<10x4xf32>
  return %0 : tensor<10x4xf32>
}
