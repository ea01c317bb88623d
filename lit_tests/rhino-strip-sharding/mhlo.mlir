// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-strip-sharding)' | filecheck %s

// XLA's pre-Shardy spelling: a custom_call @Sharding is a constraint, it forwards its
// operand; mhlo.sharding strings on arguments go; module attributes stay.
// CHECK: module attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32}
// CHECK-LABEL: func.func public @main
// CHECK-SAME: (%arg0: tensor<4xf32>) -> tensor<4xf32>
// CHECK-NOT: custom_call
// CHECK-NOT: mhlo.sharding
// CHECK: %[[A:.*]] = stablehlo.add %arg0, %arg0
// CHECK-NEXT: return %[[A]]
module attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<4xf32> {mhlo.sharding = "{devices=[2]<=[2]}"}) -> (tensor<4xf32> {mhlo.sharding = "{replicated}"}) {
    %0 = stablehlo.custom_call @Sharding(%arg0) {mhlo.sharding = "{devices=[2]<=[2]}"} : (tensor<4xf32>) -> tensor<4xf32>
    %1 = stablehlo.add %0, %0 : tensor<4xf32>
    return %1 : tensor<4xf32>
  }
}
