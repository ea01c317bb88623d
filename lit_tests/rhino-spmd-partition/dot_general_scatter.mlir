// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s
// XFAIL: *

// KNOWN INEFFICIENCY (numbers are right): the same program as the reduce_scatter case
// of constraint.mlir, but with the wanted sharding on the function result instead of
// a sharding_constraint. Propagation gives the dot itself [{"x"}, {"y"}]; the
// partitioner then shards the column factor j on "y", drops "y" from the contracting
// factor (dedupe, results first) and emits an all_gather of the lhs (192 B/device)
// plus an all_to_all of the rhs (384 B/device) = 576 B, where a local dot followed by
// reduce_scatter moves 384 B. The choice of a partial result + reduce_scatter should
// be priced against re-laying out the operands (partition/reshard.py prices both).
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.dot_general %arg0, %arg1
// CHECK: "stablehlo.reduce_scatter"
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<16x32xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> (tensor<8x32xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}
