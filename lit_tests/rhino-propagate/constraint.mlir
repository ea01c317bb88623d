// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate)' | filecheck %s

// A sharding_constraint on an unannotated argument shards it and its users.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}
// CHECK: sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {"y"}]>
// CHECK: stablehlo.negate {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %0 = sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {"y"}]> : tensor<8x16xf32>
  %1 = stablehlo.negate %0 : tensor<8x16xf32>
  return %1 : tensor<8x16xf32>
}

// -----

// A closed constraint is fixed: it replicates what follows, even though the producer
// before it stays sharded like the argument.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>})
// CHECK: stablehlo.negate %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
// CHECK: sdy.sharding_constraint {{.*}} <@mesh, [{}, {}]>
// CHECK: stablehlo.exponential {{.*}}sdy.sharding_per_value<[<@mesh, [{}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.negate %arg0 : tensor<8x16xf32>
  %1 = sdy.sharding_constraint %0 <@mesh, [{}, {}]> : tensor<8x16xf32>
  %2 = stablehlo.exponential %1 : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}

// -----

// Open dimensions ({?}) let propagation add axes: "x" from the argument and "y" from
// the second constraint meet on the exponential.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>})
// CHECK: stablehlo.exponential {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x16xf32> {
  %0 = sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {?}]> : tensor<8x16xf32>
  %1 = stablehlo.exponential %0 : tensor<8x16xf32>
  %2 = sdy.sharding_constraint %1 <@mesh, [{?}, {"y"}]> : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}

// -----

// A constraint after a dot whose contracting factor is sharded: the result takes the
// constraint's column sharding (rhino-spmd-partition turns this into reduce_scatter).
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.dot_general {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
// CHECK: stablehlo.exponential {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<16x32xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> tensor<8x32xf32> {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = sdy.sharding_constraint %0 <@mesh, [{"x"}, {"y"}]> : tensor<8x32xf32>
  %2 = stablehlo.exponential %1 : tensor<8x32xf32>
  return %2 : tensor<8x32xf32>
}
