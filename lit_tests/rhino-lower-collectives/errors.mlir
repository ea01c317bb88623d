// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-lower-collectives)'
// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-lower-collectives{mode=native})'

// The pass's own errors are checked as the one-line CLI message, which names the file and
// the line of the offending collective.
// A reduction body that is not a single add/multiply/minimum/maximum has no runtime
// reduce kind, in either mode (native mode checks the collectives are lowerable).
// RUN: not rhino-opt %S/Inputs/reduce-body.mlir --pass-pipeline='builtin.module(rhino-lower-collectives)' 2>&1 | filecheck %s --check-prefix=BODY
// RUN: not rhino-opt %S/Inputs/reduce-body.mlir --pass-pipeline='builtin.module(rhino-lower-collectives{mode=native})' 2>&1 | filecheck %s --check-prefix=BODY
// BODY: rhino-opt: rhino-lower-collectives: {{.*}}reduce-body.mlir:4: stablehlo.all_reduce reduces with 'stablehlo.add, stablehlo.multiply' but only a single add, multiply, minimum or maximum is supported; complete such reductions with all_gather + a local reduce
// BODY-NOT: Traceback
// RUN: not rhino-opt %S/Inputs/argmax-body.mlir --pass-pipeline='builtin.module(rhino-lower-collectives)' 2>&1 | filecheck %s --check-prefix=ARGMAX
// ARGMAX: rhino-opt: rhino-lower-collectives: {{.*}}argmax-body.mlir:{{[0-9]+}}: stablehlo.reduce_scatter reduces with 'stablehlo.compare, stablehlo.select' but only a single add, multiply, minimum or maximum is supported
// or/and bodies are max/min only on i1 (what the partitioner emits); on i32 a bitwise or is no reduce kind.
// RUN: not rhino-opt %S/Inputs/or-i32-body.mlir --pass-pipeline='builtin.module(rhino-lower-collectives)' 2>&1 | filecheck %s --check-prefix=ORI32
// ORI32: rhino-opt: rhino-lower-collectives: {{.*}}or-i32-body.mlir:{{[0-9]+}}: stablehlo.all_reduce reduces with 'stablehlo.or' but only a single add, multiply, minimum or maximum is supported
// Replica groups must be device indices (use_global_device_ids), as rhino-spmd-partition emits.
// RUN: not rhino-opt %S/Inputs/no-global-ids.mlir --pass-pipeline='builtin.module(rhino-lower-collectives)' 2>&1 | filecheck %s --check-prefix=IDS
// IDS: rhino-opt: rhino-lower-collectives: {{.*}}no-global-ids.mlir:{{[0-9]+}}: stablehlo.all_gather has replica groups without use_global_device_ids; groups must list device indices (rhino-spmd-partition emits them)
// RUN: not rhino-opt %S/Inputs/reduce-body.mlir --pass-pipeline='builtin.module(rhino-lower-collectives{mode=nccl})' 2>&1 | filecheck %s --check-prefix=MODE
// MODE: rhino-opt: rhino-lower-collectives: unknown mode 'nccl' (expected import or native)
// RUN: not rhino-opt %S/Inputs/reduce-body.mlir --pass-pipeline='builtin.module(rhino-lower-collectives{modes=import})' 2>&1 | filecheck %s --check-prefix=OPTION
// OPTION: rhino-opt: pipeline: unknown option 'modes' for pass 'rhino-lower-collectives' (options: mode)

// Malformed collectives are rejected by StableHLO's verifier when the file is parsed,
// before the pass reads their groups and pairs.

module attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<4xf32>) -> tensor<8xf32> {
    // expected-error @+1 {{replica groups should be a rank 2 tensor}}
    %0 = "stablehlo.all_gather"(%a) {all_gather_dim = 0 : i64, replica_groups = dense<[0, 1]> : tensor<2xi64>, use_global_device_ids, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>} : (tensor<4xf32>) -> tensor<8xf32>
    return %0 : tensor<8xf32>
  }
}

// -----

module attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @+1 {{replica id #1 seen more than once}}
    %0 = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1], [1, 0]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
    return %0 : tensor<4xf32>
  }
}

// -----

module attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @+1 {{duplicate targets not allowed}}
    %0 = "stablehlo.collective_permute"(%a) {source_target_pairs = dense<[[0, 1], [1, 1]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>} : (tensor<4xf32>) -> tensor<4xf32>
    return %0 : tensor<4xf32>
  }
}
