// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Fixed bug (was wrong numbers): dynamic_update_slice at a dynamic offset into a dimension
// sharded on "y". Shardy's rule ([i, j], [i, k], [], [])->([i, j]) need_replication={k}
// leaves the operand's factor j shardable (XLA handles it with per-shard offsets and
// masks), but rhino-spmd-partition runs the op on the local 4x4 shard with the global
// offset %arg2, so every "y" shard writes the update at its own column 0 (clamped).
// A fix either gathers dimension 1 first (mark j need_replication in
// analysis/local_rules.restrict) or offsets the index by the shard start and masks;
// both read the shard position, so the check below asks for one of them.
// CHECK-LABEL: func.func @main
// CHECK: {{stablehlo.all_gather|stablehlo.partition_id}}
// CHECK: stablehlo.dynamic_update_slice
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %u: tensor<8x4xf32>, %i: tensor<i32>) -> tensor<8x16xf32> {
  %z = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.dynamic_update_slice %arg0, %u, %z, %i : (tensor<8x16xf32>, tensor<8x4xf32>, tensor<i32>, tensor<i32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
