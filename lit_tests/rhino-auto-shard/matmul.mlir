// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test})' | filecheck %s --check-prefix=AUTO
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x2xcpu-test level=O3})' | filecheck %s --check-prefix=AUTO2
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test strategy=dp})' | filecheck %s --check-prefix=DP
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test strategy=dp batch-args=1})' | filecheck %s --check-prefix=BATCH

// One matmul A (128x512, 256 KiB) x B (512x2048, 4 MiB) on the fixed test cpu profile
// (cpu-test: plans do not depend on this machine's calibration).

// Searched (O2 on 4 devices, O3 on 2): splitting B's columns needs no collective and
// keeps only a quarter of the big operand per device, so A stays replicated.
// AUTO: sdy.mesh @mesh = <["x"=4]>
// AUTO-LABEL: func.func @main
// AUTO-SAME: %arg0: tensor<128x512xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// AUTO-SAME: %arg1: tensor<512x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}
// AUTO-SAME: -> (tensor<128x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>})
// AUTO: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"x"}]>]>}
// AUTO2: sdy.mesh @mesh = <["x"=2]>
// AUTO2-LABEL: func.func @main
// AUTO2-SAME: %arg0: tensor<128x512xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// AUTO2-SAME: %arg1: tensor<512x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}
// AUTO2: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"x"}]>]>}

// strategy=dp: the batch (dim 0 of the data argument A) on every device, B replicated.
// DP: sdy.mesh @mesh = <["x"=4]>
// DP-LABEL: func.func @main
// DP-SAME: %arg0: tensor<128x512xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// DP-SAME: %arg1: tensor<512x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}
// DP-SAME: -> (tensor<128x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
// DP: stablehlo.dot_general %arg0, %arg1, {{.*}}{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>}

// batch-args=1 names B's dim 0 (the contracted 512) as the batch: dp then splits the
// contraction and the result is replicated (a partial sum, completed by an all_reduce).
// BATCH-LABEL: func.func @main
// BATCH-SAME: %arg0: tensor<128x512xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}
// BATCH-SAME: %arg1: tensor<512x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// BATCH-SAME: -> (tensor<128x2048xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>})
func.func @main(%a: tensor<128x512xf32>, %b: tensor<512x2048xf32>) -> tensor<128x2048xf32> {
  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<128x512xf32>, tensor<512x2048xf32>) -> tensor<128x2048xf32>
  return %0 : tensor<128x2048xf32>
}
