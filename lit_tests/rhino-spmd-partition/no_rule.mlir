// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' -o %t 2>&1 | filecheck %s --check-prefix=WARN

// An op without a factor rule (here a custom_call) runs replicated: its sharded
// operand is gathered first, with a warning that names the op; sharding resumes after.
// WARN: no sharding rule for 'stablehlo.custom_call'; it runs replicated
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 0 : i64, {{.*}}}> : (tensor<2x16xf32>) -> tensor<8x16xf32>
// CHECK: %[[C:.*]] = stablehlo.custom_call @foo(%[[G]]) : (tensor<8x16xf32>) -> tensor<8x16xf32>
// CHECK: stablehlo.dynamic_slice %[[C]], {{.*}} sizes = [2, 16]
// CHECK: stablehlo.negate %{{.*}} : tensor<2x16xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) {
  %0 = stablehlo.custom_call @foo(%arg0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %1 = stablehlo.negate %0 : tensor<8x16xf32>
  return %1 : tensor<8x16xf32>
}
