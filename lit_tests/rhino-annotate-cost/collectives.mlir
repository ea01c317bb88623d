// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-annotate-cost)' | filecheck %s

// Per-device bytes on the wire (ring), n = replica group size:
// all_gather (n-1)/n * result, reduce_scatter (n-1)/n * operand,
// all_reduce 2(n-1)/n * bytes, all_to_all (n-1)/n * bytes, collective_permute operand.
module attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  // CHECK-LABEL: func.func @collectives
  // 4x16xf32 = 256 bytes gathered over 4: 192
  // CHECK: "stablehlo.all_gather"{{.*}}rhino.comm_bytes = 1.920000e+02 : f64, rhino.flops = 0 : i64
  // 256 bytes over groups of 2: 2 * 1/2 * 256 = 256
  // CHECK: "stablehlo.all_reduce"
  // CHECK: }) {rhino.bytes = 512 : i64, rhino.comm_bytes = 2.560000e+02 : f64
  // 256 bytes scattered over 4: 192
  // CHECK: "stablehlo.reduce_scatter"
  // CHECK: }) {rhino.bytes = 320 : i64, rhino.comm_bytes = 1.920000e+02 : f64
  // 256 bytes exchanged over 4: 192
  // CHECK: "stablehlo.all_to_all"{{.*}}rhino.comm_bytes = 1.920000e+02 : f64
  // one send of the operand: 64
  // CHECK: "stablehlo.collective_permute"{{.*}}rhino.comm_bytes = 6.400000e+01 : f64
  func.func @collectives(%x: tensor<4x4xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<4x4xf32>) {
    %0 = "stablehlo.all_gather"(%x) {all_gather_dim = 1 : i64, replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x16xf32>
    %1 = "stablehlo.all_reduce"(%0) ({
      ^bb0(%a: tensor<f32>, %b: tensor<f32>):
        %s = stablehlo.add %a, %b : tensor<f32>
        stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    %2 = "stablehlo.reduce_scatter"(%1) ({
      ^bb0(%a: tensor<f32>, %b: tensor<f32>):
        %s = stablehlo.add %a, %b : tensor<f32>
        stablehlo.return %s : tensor<f32>
    }) {scatter_dimension = 1 : i64, replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<4x16xf32>) -> tensor<4x4xf32>
    %3 = "stablehlo.all_to_all"(%1) {split_dimension = 1 : i64, concat_dimension = 1 : i64, split_count = 4 : i64, replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 4, type = 1>} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    %4 = "stablehlo.collective_permute"(%x) {source_target_pairs = dense<[[0, 1], [1, 2], [2, 3], [3, 0]]> : tensor<4x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 5, type = 1>} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    return %0, %1, %2, %3, %4 : tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<4x4xf32>
  }
}
