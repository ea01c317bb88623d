// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s
// XFAIL: *

// KNOWN INEFFICIENCY (numbers are right): open dimensions ({?}) of a
// sharding_constraint. rhino-propagate fills them ([{"x"}, {"y"}] everywhere below) but
// does not write the result back on the constraint op (propagate.write skips
// sdy.sharding_constraint), and rhino-spmd-partition reads the constraint's own text
// with {?} as replicated: it all_gathers "x" at the second constraint and then slices
// "x" again for the result — two collectives' worth of work where none is needed.
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
