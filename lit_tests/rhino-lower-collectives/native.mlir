// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-lower-collectives{mode=native})' | filecheck %s

// mode=native keeps every collective and partition_id for IREE's own channels (NCCL
// under MPI): no call, no @rhino declaration, the attributes untouched. The pass only
// checks that each collective is lowerable (errors.mlir).
// CHECK-LABEL: func.func @main
// CHECK-NOT: func.call
// CHECK: %[[AR:.*]] = "stablehlo.all_reduce"(%arg0) <{channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, replica_groups = dense<{{\[\[}}0, 1, 2, 3]]> : tensor<1x4xi64>, use_global_device_ids}>
// CHECK: stablehlo.add
// CHECK: %[[AG:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, replica_groups = dense<{{\[\[}}0, 1], [2, 3]]> : tensor<2x2xi64>, use_global_device_ids}>
// CHECK: %[[RS:.*]] = "stablehlo.reduce_scatter"(%arg0)
// CHECK-SAME: replica_groups = dense<{{\[\[}}0, 2], [1, 3]]> : tensor<2x2xi64>, scatter_dimension = 0 : i64, use_global_device_ids}>
// CHECK: stablehlo.maximum
// CHECK: %[[AA:.*]] = "stablehlo.all_to_all"(%arg0)
// CHECK-SAME: concat_dimension = 1 : i64
// CHECK-SAME: split_dimension = 0 : i64
// CHECK: %[[CP:.*]] = "stablehlo.collective_permute"(%arg0)
// CHECK-SAME: source_target_pairs = dense<{{\[\[}}0, 1], [1, 0], [2, 3], [3, 2]]> : tensor<4x2xi64>
// CHECK: %[[PID:.*]] = stablehlo.partition_id : tensor<ui32>
// CHECK: %[[RID:.*]] = stablehlo.replica_id : tensor<ui32>
// CHECK: return %[[AR]], %[[AG]], %[[RS]], %[[AA]], %[[CP]], %[[PID]], %[[RID]] :
// CHECK-NOT: func.call
// CHECK-NOT: @rhino.
module attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<2x8xf32>, tensor<4x4xf32>, tensor<ui32>, tensor<ui32>) {
    %ar = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %ag = "stablehlo.all_gather"(%a) {all_gather_dim = 1 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x8xf32>
    %rs = "stablehlo.reduce_scatter"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.maximum %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {scatter_dimension = 0 : i64, replica_groups = dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<2x4xf32>
    %aa = "stablehlo.all_to_all"(%a) {split_dimension = 0 : i64, concat_dimension = 1 : i64, split_count = 2 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 4, type = 1>} : (tensor<4x4xf32>) -> tensor<2x8xf32>
    %cp = "stablehlo.collective_permute"(%a) {source_target_pairs = dense<[[0, 1], [1, 0], [2, 3], [3, 2]]> : tensor<4x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 5, type = 1>} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %pid = stablehlo.partition_id : tensor<ui32>
    %rid = stablehlo.replica_id : tensor<ui32>
    return %ar, %ag, %rs, %aa, %cp, %pid, %rid : tensor<4x4xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<2x8xf32>, tensor<4x4xf32>, tensor<ui32>, tensor<ui32>
  }
}
