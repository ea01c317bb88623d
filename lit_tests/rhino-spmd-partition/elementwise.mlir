// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Pointwise ops on matching shardings run on local shards with no collective; the
// signature holds local types, the global types and the global shardings.
// CHECK-LABEL: module attributes {mhlo.num_partitions = 8 : i32, mhlo.num_replicas = 1 : i32}
// CHECK: sdy.mesh @mesh = <["x"=2, "y"=4]>
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<4x4xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}
// CHECK-SAME: -> (tensor<4x4xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>})
// CHECK-NOT: stablehlo.all_
// CHECK-NOT: sdy.sharding_per_value
// CHECK: stablehlo.add %arg0, %arg1 : tensor<4x4xf32>
// CHECK: stablehlo.exponential %{{.*}} : tensor<4x4xf32>
// CHECK: stablehlo.constant dense<1.000000e+00> : tensor<4x4xf32>
// CHECK: stablehlo.multiply {{.*}} : tensor<4x4xf32>
// CHECK-NOT: stablehlo.all_
// CHECK: return
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %0 = stablehlo.add %arg0, %arg1 : tensor<8x16xf32>
  %1 = stablehlo.exponential %0 : tensor<8x16xf32>
  %c = stablehlo.constant dense<1.0> : tensor<8x16xf32>
  %2 = stablehlo.multiply %1, %c : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}

// -----

// Operands sharded on different dimensions: the second operand moves from
// [{}, {"x"}] to [{"x"}, {}] with one all_to_all (split dim 0, concat dim 1).
// CHECK-LABEL: func.func @main
// CHECK: %[[A:.*]] = "stablehlo.all_to_all"(%arg1)
// CHECK-SAME: channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, concat_dimension = 1 : i64, replica_groups = dense<{{\[\[}}0, 1, 2, 3]]> : tensor<1x4xi64>, split_count = 4 : i64, split_dimension = 0 : i64
// CHECK-SAME: (tensor<8x4xf32>) -> tensor<2x16xf32>
// CHECK: stablehlo.add %arg0, %[[A]] : tensor<2x16xf32>
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.add %arg0, %arg1 : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// broadcast/convert/compare/select on local shards; i32 and i1 values shrink too.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<2x16xi32> {rhino.global_type = tensor<8x16xi32>
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.broadcast_in_dim %arg0, dims = [0] : (tensor<2xf32>) -> tensor<2x16xf32>
// CHECK: stablehlo.convert %arg1 : (tensor<2x16xi32>) -> tensor<2x16xf32>
// CHECK: stablehlo.compare GT, {{.*}} -> tensor<2x16xi1>
// CHECK: stablehlo.select {{.*}} : tensor<2x16xi1>, tensor<2x16xf32>
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}, %arg1: tensor<8x16xi32>) -> tensor<8x16xf32> {
  %0 = stablehlo.broadcast_in_dim %arg0, dims = [0] : (tensor<8xf32>) -> tensor<8x16xf32>
  %1 = stablehlo.convert %arg1 : (tensor<8x16xi32>) -> tensor<8x16xf32>
  %2 = stablehlo.compare GT, %0, %1 : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xi1>
  %3 = stablehlo.select %2, %0, %1 : tensor<8x16xi1>, tensor<8x16xf32>
  return %3 : tensor<8x16xf32>
}

// -----

// A replicated result of a sharded value: one all_gather per mesh axis, each over
// that axis's device groups ("x" groups are strided by 4 in a 2x4 mesh).
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<8x16xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>})
// CHECK: %[[N:.*]] = stablehlo.negate %arg0 : tensor<4x4xf32>
// CHECK: %[[G0:.*]] = "stablehlo.all_gather"(%[[N]]) <{all_gather_dim = 0 : i64, {{.*}}replica_groups = dense<{{\[\[}}0, 4], [1, 5], [2, 6], [3, 7]]> : tensor<4x2xi64>, use_global_device_ids}> : (tensor<4x4xf32>) -> tensor<8x4xf32>
// CHECK: %[[G1:.*]] = "stablehlo.all_gather"(%[[G0]]) <{all_gather_dim = 1 : i64, {{.*}}replica_groups = dense<{{\[\[}}0, 1, 2, 3], [4, 5, 6, 7]]> : tensor<2x4xi64>, use_global_device_ids}> : (tensor<8x4xf32>) -> tensor<8x16xf32>
// CHECK: return %[[G1]]
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}) {
  %0 = stablehlo.negate %arg0 : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// A replicated argument with a sharded result: a partition_id-indexed dynamic_slice,
// no collective. Device d's shard index over "y" comes from a table indexed by d.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: %[[P:.*]] = stablehlo.partition_id : tensor<ui32>
// CHECK: %[[PI:.*]] = stablehlo.convert %[[P]] : (tensor<ui32>) -> tensor<i32>
// CHECK: %[[TAB:.*]] = stablehlo.constant dense<[0, 1, 2, 3, 0, 1, 2, 3]> : tensor<8xi32>
// CHECK: stablehlo.dynamic_slice %[[TAB]], %[[PI]], sizes = [1]
// CHECK: stablehlo.dynamic_slice %arg0, {{.*}} sizes = [8, 4] : (tensor<8x16xf32>, tensor<i32>, tensor<i32>) -> tensor<8x4xf32>
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}) -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}) {
  %0 = stablehlo.sine %arg0 : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// A mesh with device_ids: device index = position in the list, so the shard-index
// table (indexed by partition_id) is the inverse of the list.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.constant dense<[3, 0, 1, 2]> : tensor<4xi32>
sdy.mesh @mesh = <["x"=4], device_ids=[1, 2, 3, 0]>
func.func @main(%arg0: tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) {
  %0 = stablehlo.cosine %arg0 : tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// With device_ids the replica group of an all_gather lists device ids in shard order.
// CHECK-LABEL: func.func @main
// CHECK: "stablehlo.all_gather"(%{{.*}}) <{all_gather_dim = 0 : i64, {{.*}}replica_groups = dense<{{\[\[}}1, 2, 3, 0]]> : tensor<1x4xi64>, use_global_device_ids}> : (tensor<2xf32>) -> tensor<8xf32>
sdy.mesh @mesh = <["x"=4], device_ids=[1, 2, 3, 0]>
func.func @main(%arg0: tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}) {
  %0 = stablehlo.cosine %arg0 : tensor<8xf32>
  return %0 : tensor<8xf32>
}
