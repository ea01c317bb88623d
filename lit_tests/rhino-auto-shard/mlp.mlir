// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test})' | filecheck %s --check-prefix=DP
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=2x2xcpu-test})' | filecheck %s --check-prefix=DP
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test strategy=megatron})' | filecheck %s --check-prefix=TP
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x8xcpu-test memory=1MiB})' | filecheck %s --check-prefix=BUDGET
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x8xcpu-test memory=1MiB level=O3})' | filecheck %s --check-prefix=BUDGET
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test},rhino-spmd-partition)' | filecheck %s --check-prefix=LOCAL

// MLP forward x (64x256) @ w1 (256x1024, 1 MiB) -> tanh -> @ w2 (1024x256, 1 MiB) on the
// fixed test cpu profile. Every op gets a sharding, every @main argument and result too.

// Enough memory: data parallel on a flat mesh of all 4 devices (also for 2 nodes of 2),
// the batch split, both weights replicated: no collective at all.
// DP: sdy.mesh @mesh = <["x"=4]>
// DP-LABEL: func.func @main
// DP-SAME: %arg0: tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// DP-SAME: %arg1: tensor<256x1024xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// DP-SAME: %arg2: tensor<1024x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// DP-SAME: -> (tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
// DP-NEXT: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>}
// DP-NEXT: stablehlo.tanh {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>}
// DP-NEXT: stablehlo.dot_general {{.*}}, %arg2, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>}

// strategy=megatron: w1 split by columns, w2 by rows, the hidden activation split.
// TP: sdy.mesh @mesh = <["x"=4]>
// TP-LABEL: func.func @main
// TP-SAME: %arg0: tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// TP-SAME: %arg1: tensor<256x1024xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}
// TP-SAME: %arg2: tensor<1024x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// TP-NEXT: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"x"}]>]>}
// TP-NEXT: stablehlo.tanh {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"x"}]>]>}

// 1 MiB per device on 8 devices: the 2 MiB of weights cannot be replicated, so the plan
// (O2 and O3 alike) is a 2x4 mesh, batch on "x" and both weights split on "y".
// BUDGET: sdy.mesh @mesh = <["x"=2, "y"=4]>
// BUDGET-LABEL: func.func @main
// BUDGET-SAME: %arg0: tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// BUDGET-SAME: %arg1: tensor<256x1024xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}
// BUDGET-SAME: %arg2: tensor<1024x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}
// BUDGET-NEXT: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>}
// BUDGET-NEXT: stablehlo.tanh {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>}

// What auto-shard writes is what rhino-spmd-partition follows: local 16-row batches.
// LOCAL: module attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32}
// LOCAL-LABEL: func.func @main
// LOCAL-SAME: %arg0: tensor<16x256xf32>
// LOCAL-SAME: %arg1: tensor<256x1024xf32>
// LOCAL-SAME: -> (tensor<16x256xf32>
// LOCAL-NOT: stablehlo.all_
// LOCAL: return {{.*}} : tensor<16x256xf32>
func.func @main(%x: tensor<64x256xf32>, %w1: tensor<256x1024xf32>, %w2: tensor<1024x256xf32>) -> tensor<64x256xf32> {
  %0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<64x256xf32>, tensor<256x1024xf32>) -> tensor<64x1024xf32>
  %1 = stablehlo.tanh %0 : tensor<64x1024xf32>
  %2 = stablehlo.dot_general %1, %w2, contracting_dims = [1] x [0] : (tensor<64x1024xf32>, tensor<1024x256xf32>) -> tensor<64x256xf32>
  return %2 : tensor<64x256xf32>
}
