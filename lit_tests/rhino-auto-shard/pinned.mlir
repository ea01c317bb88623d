// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test})' | filecheck %s

// Shardings already on @main's arguments are fixed decisions: their mesh (axis names and
// shape) is kept and the rest of the plan is chosen around them.

// w1 pinned to columns on "tp": the planner follows with w2 by rows (Megatron), where
// it would otherwise pick data parallelism (mlp.mlir).
// CHECK: sdy.mesh @mesh = <["tp"=4]>
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// CHECK-SAME: %arg1: tensor<256x1024xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"tp"}]>}
// CHECK-SAME: %arg2: tensor<1024x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"tp"}, {}]>}
// CHECK-NEXT: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"tp"}]>]>}
sdy.mesh @mesh = <["tp"=4]>
func.func @main(%x: tensor<64x256xf32>, %w1: tensor<256x1024xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"tp"}]>}, %w2: tensor<1024x256xf32>) -> tensor<64x256xf32> {
  %0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<64x256xf32>, tensor<256x1024xf32>) -> tensor<64x1024xf32>
  %1 = stablehlo.tanh %0 : tensor<64x1024xf32>
  %2 = stablehlo.dot_general %1, %w2, contracting_dims = [1] x [0] : (tensor<64x1024xf32>, tensor<1024x256xf32>) -> tensor<64x256xf32>
  return %2 : tensor<64x256xf32>
}

// -----

// A 2x2 mesh with the batch pinned to "y": the mesh stays 2x2 (not the flat 4 the
// planner picks by itself) and the batch stays on "y" in every op.
// CHECK: sdy.mesh @mesh = <["x"=2, "y"=2]>
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}
// CHECK-NEXT: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"y"}, {}]>]>}
// CHECK-NEXT: stablehlo.tanh {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"y"}, {}]>]>}
// CHECK-NEXT: stablehlo.dot_general {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"y"}, {{.*}}]>]>}
sdy.mesh @mesh = <["x"=2, "y"=2]>
func.func @main(%x: tensor<64x256xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}, %w1: tensor<256x1024xf32>, %w2: tensor<1024x256xf32>) -> tensor<64x256xf32> {
  %0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<64x256xf32>, tensor<256x1024xf32>) -> tensor<64x1024xf32>
  %1 = stablehlo.tanh %0 : tensor<64x1024xf32>
  %2 = stablehlo.dot_general %1, %w2, contracting_dims = [1] x [0] : (tensor<64x1024xf32>, tensor<1024x256xf32>) -> tensor<64x256xf32>
  return %2 : tensor<64x256xf32>
}
