// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Open dimensions ({?}) of a sharding_constraint take what rhino-propagate found
// ([{"x"}, {"y"}] everywhere below; propagate writes it back on the constraint), so
// the partitioner moves nothing: no all_gather of "x" and re-slice.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_gather
// CHECK: return
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x16xf32> {
  %0 = sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {?}]> : tensor<8x16xf32>
  %1 = stablehlo.exponential %0 : tensor<8x16xf32>
  %2 = sdy.sharding_constraint %1 <@mesh, [{?}, {"y"}]> : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}
