// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test})'

// The pass's errors are about the whole module (cluster, options, budget): they carry no
// source line, so they are checked as the one-line CLI message, which names the pass.
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=4xcpu})' 2>&1 | filecheck %s --check-prefix=SPEC
// SPEC: rhino-opt: rhino-auto-shard: malformed cluster spec '4xcpu': expected NODESxDEVICESxTYPE[+...], e.g. 2x8xH100
// SPEC-NOT: Traceback
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=0x4xcpu-test})' 2>&1 | filecheck %s --check-prefix=COUNT
// COUNT: rhino-opt: rhino-auto-shard: cluster spec '0x4xcpu-test': node and device counts must be positive
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xfoo})' 2>&1 | filecheck %s --check-prefix=DEVICE
// DEVICE: rhino-opt: rhino-auto-shard: unknown device 'foo'; known: {{.*}}cpu-test
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test memory=lots})' 2>&1 | filecheck %s --check-prefix=MEMORY
// MEMORY: rhino-opt: rhino-auto-shard: malformed memory size 'lots': expected a number of bytes with an optional unit
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test level=O9})' 2>&1 | filecheck %s --check-prefix=LEVEL
// LEVEL: rhino-opt: rhino-auto-shard: unknown level 'O9' (choose O2 or O3)
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test strategy=fsdp})' 2>&1 | filecheck %s --check-prefix=STRATEGY
// STRATEGY: rhino-opt: rhino-auto-shard: unknown strategy 'fsdp' (choose from auto, dp, zero1, zero2, zero3, megatron, dp-tp)
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test memory=64KiB})' 2>&1 | filecheck %s --check-prefix=BUDGET
// BUDGET: rhino-opt: rhino-auto-shard: no plan fits 64.00KiB per device on 1x4xcpu-test: the smallest plan found needs {{[0-9.]+}}{{K|M}}iB per device; use --memory {{[0-9.]+}}{{K|M}}iB or more devices
// RUN: not rhino-opt %S/Inputs/mesh-2.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test})' 2>&1 | filecheck %s --check-prefix=MESH
// MESH: rhino-opt: rhino-auto-shard: the program's shardings use mesh @mesh of 2 devices but cluster 1x4xcpu-test has 4; drop the annotations or plan for 2 devices
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{clusters=1x4xcpu-test})' 2>&1 | filecheck %s --check-prefix=OPTION
// OPTION: rhino-opt: pipeline: unknown option 'clusters' for pass 'rhino-auto-shard' (options: batch-args, cluster, level, memory, microbatches, remat, strategy)
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{batch-args=a})' 2>&1 | filecheck %s --check-prefix=BATCHARGS
// BATCHARGS: rhino-opt: pipeline: bad value 'a' for option 'batch-args' of pass 'rhino-auto-shard' (expected int)
// RUN: not rhino-opt %S/Inputs/matmul.mlir --pass-pipeline='builtin.module(rhino-auto-shard{cluster=1x4xcpu-test batch-args=7})' 2>&1 | filecheck %s --check-prefix=BATCHRANGE
// BATCHRANGE: rhino-opt: rhino-auto-shard: --batch-args 7 is not an argument of @main (it has 2: 0..1)

// Inputs the planner cannot take are named at their line.

// expected-error @+1 {{dynamic shapes are not supported: %arg0 : tensor<8x?xf32>}}
func.func @main(%arg0: tensor<8x?xf32>) -> tensor<8x?xf32> {
  return %arg0 : tensor<8x?xf32>
}

// -----

// A pinned sharding must name an axis of its mesh (Shardy's verifier, at parse time).
sdy.mesh @mesh = <["x"=4]>
// expected-error @+1 {{'func.func' op arg 0 - unknown axis name: "y"}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}
