// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-lower-collectives)' | filecheck %s
// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-lower-collectives{mode=import})' | filecheck %s

// mode=import (the default): every collective and partition_id becomes a func.call to a
// private declaration @rhino.<name>, the name carrying the static parameters
// (collective_imports.py): kind, reduce kind, d<dim>, s<split>.c<concat>, one g<...>
// per replica group, one p<src>_<dst> per pair, and t<k> telling apart declarations
// that differ only in tensor type.

// Each kind once, on a 2x2 mesh (device = 2*x + y).
// CHECK-LABEL: module @kinds
// CHECK-DAG: func.func private @rhino.all_reduce.sum.g0_1_2_3.t0(tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-DAG: func.func private @rhino.all_gather.d1.g0_1.g2_3.t0(tensor<4x4xf32>) -> tensor<4x8xf32>
// CHECK-DAG: func.func private @rhino.reduce_scatter.sum.d0.g0_2.g1_3.t0(tensor<4x4xf32>) -> tensor<2x4xf32>
// CHECK-DAG: func.func private @rhino.all_to_all.s0.c1.g0_1.g2_3.t0(tensor<4x4xf32>) -> tensor<2x8xf32>
// CHECK-DAG: func.func private @rhino.collective_permute.p0_1.p1_0.p2_3.p3_2.t0(tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-DAG: func.func private @rhino.partition_id() -> tensor<ui32>
// CHECK-LABEL: func.func @main
// CHECK-NEXT: %[[AR:.*]] = call @rhino.all_reduce.sum.g0_1_2_3.t0(%arg0) : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT: %[[AG:.*]] = call @rhino.all_gather.d1.g0_1.g2_3.t0(%arg0) : (tensor<4x4xf32>) -> tensor<4x8xf32>
// CHECK-NEXT: %[[RS:.*]] = call @rhino.reduce_scatter.sum.d0.g0_2.g1_3.t0(%arg0) : (tensor<4x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: %[[AA:.*]] = call @rhino.all_to_all.s0.c1.g0_1.g2_3.t0(%arg0) : (tensor<4x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT: %[[CP:.*]] = call @rhino.collective_permute.p0_1.p1_0.p2_3.p3_2.t0(%arg0) : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT: %[[PID:.*]] = call @rhino.partition_id() : () -> tensor<ui32>
// CHECK-NEXT: return %[[AR]], %[[AG]], %[[RS]], %[[AA]], %[[CP]], %[[PID]] :
// CHECK-NOT: stablehlo.all_
// CHECK-NOT: stablehlo.reduce_scatter
// CHECK-NOT: stablehlo.collective_permute
// CHECK-NOT: stablehlo.partition_id
module @kinds attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<2x8xf32>, tensor<4x4xf32>, tensor<ui32>) {
    %ar = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %ag = "stablehlo.all_gather"(%a) {all_gather_dim = 1 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<4x8xf32>
    %rs = "stablehlo.reduce_scatter"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {scatter_dimension = 0 : i64, replica_groups = dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<4x4xf32>) -> tensor<2x4xf32>
    %aa = "stablehlo.all_to_all"(%a) {split_dimension = 0 : i64, concat_dimension = 1 : i64, split_count = 2 : i64, replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 4, type = 1>} : (tensor<4x4xf32>) -> tensor<2x8xf32>
    %cp = "stablehlo.collective_permute"(%a) {source_target_pairs = dense<[[0, 1], [1, 0], [2, 3], [3, 2]]> : tensor<4x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 5, type = 1>} : (tensor<4x4xf32>) -> tensor<4x4xf32>
    %pid = stablehlo.partition_id : tensor<ui32>
    return %ar, %ag, %rs, %aa, %cp, %pid : tensor<4x4xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<2x8xf32>, tensor<4x4xf32>, tensor<ui32>
  }
}

// -----

// Reduce kinds: add/multiply/minimum/maximum -> sum/prod/min/max; on i1, or -> max and
// and -> min (the runtime reduces booleans as 0/1 integers).
// CHECK-LABEL: module @reduce_kinds
// CHECK-LABEL: func.func @main
// CHECK: call @rhino.all_reduce.sum.g0_1.t0(%arg0)
// CHECK: call @rhino.all_reduce.prod.g0_1.t0(%arg0)
// CHECK: call @rhino.all_reduce.min.g0_1.t0(%arg0)
// CHECK: call @rhino.reduce_scatter.max.d0.g0_1.t0(%arg0) : (tensor<4xf32>) -> tensor<2xf32>
// CHECK: call @rhino.all_reduce.max.g0_1.t0(%arg1) : (tensor<4xi1>) -> tensor<4xi1>
// CHECK: call @rhino.all_reduce.min.g0_1.t1(%arg1) : (tensor<4xi1>) -> tensor<4xi1>
module @reduce_kinds attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<4xf32>, %b: tensor<4xi1>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2xf32>, tensor<4xi1>, tensor<4xi1>) {
    %0 = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
    %1 = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.multiply %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
    %2 = "stablehlo.all_reduce"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.minimum %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
    %3 = "stablehlo.reduce_scatter"(%a) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.maximum %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {scatter_dimension = 0 : i64, replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 4, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<2xf32>
    %4 = "stablehlo.all_reduce"(%b) ({
    ^bb0(%p: tensor<i1>, %q: tensor<i1>):
      %s = stablehlo.or %p, %q : tensor<i1>
      stablehlo.return %s : tensor<i1>
    }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 5, type = 1>, use_global_device_ids} : (tensor<4xi1>) -> tensor<4xi1>
    %5 = "stablehlo.all_reduce"(%b) ({
    ^bb0(%p: tensor<i1>, %q: tensor<i1>):
      %s = stablehlo.and %p, %q : tensor<i1>
      stablehlo.return %s : tensor<i1>
    }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 6, type = 1>, use_global_device_ids} : (tensor<4xi1>) -> tensor<4xi1>
    return %0, %1, %2, %3, %4, %5 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2xf32>, tensor<4xi1>, tensor<4xi1>
  }
}

// -----

// One declaration per distinct (collective, types): the same all_gather twice shares
// @...t0; over another type it gets @...t1. A variadic all_reduce becomes one call per
// operand. Replica groups padded with -1 (uneven groups) name only their devices.
// CHECK-LABEL: module @declarations
// CHECK-COUNT-1: func.func private @rhino.all_gather.d0.g0_1.t0(tensor<2xf32>) -> tensor<4xf32>
// CHECK-COUNT-1: func.func private @rhino.all_gather.d0.g0_1.t1(tensor<3xf32>) -> tensor<6xf32>
// CHECK-NOT: func.func private @rhino.all_gather
// CHECK-LABEL: func.func @main
// CHECK-NEXT: %[[G0:.*]] = call @rhino.all_gather.d0.g0_1.t0(%arg0) : (tensor<2xf32>) -> tensor<4xf32>
// CHECK-NEXT: %[[G1:.*]] = call @rhino.all_gather.d0.g0_1.t0(%arg0) : (tensor<2xf32>) -> tensor<4xf32>
// CHECK-NEXT: %[[G2:.*]] = call @rhino.all_gather.d0.g0_1.t1(%arg1) : (tensor<3xf32>) -> tensor<6xf32>
// CHECK-NEXT: %[[V0:.*]] = call @rhino.all_reduce.sum.g0_1_2.g3_4.t0(%arg0) : (tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT: %[[V1:.*]] = call @rhino.all_reduce.sum.g0_1_2.g3_4.t1(%arg1) : (tensor<3xf32>) -> tensor<3xf32>
// CHECK-NEXT: return %[[G0]], %[[G1]], %[[G2]], %[[V0]], %[[V1]] :
module @declarations attributes {mhlo.num_partitions = 5 : i32, mhlo.num_replicas = 1 : i32} {
  func.func @main(%a: tensor<2xf32>, %b: tensor<3xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<6xf32>, tensor<2xf32>, tensor<3xf32>) {
    %0 = "stablehlo.all_gather"(%a) {all_gather_dim = 0 : i64, replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<2xf32>) -> tensor<4xf32>
    %1 = "stablehlo.all_gather"(%a) {all_gather_dim = 0 : i64, replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<2xf32>) -> tensor<4xf32>
    %2 = "stablehlo.all_gather"(%b) {all_gather_dim = 0 : i64, replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<3xf32>) -> tensor<6xf32>
    %3:2 = "stablehlo.all_reduce"(%a, %b) ({
    ^bb0(%p: tensor<f32>, %q: tensor<f32>):
      %s = stablehlo.add %p, %q : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1, 2], [3, 4, -1]]> : tensor<2x3xi64>, channel_handle = #stablehlo.channel_handle<handle = 4, type = 1>, use_global_device_ids} : (tensor<2xf32>, tensor<3xf32>) -> (tensor<2xf32>, tensor<3xf32>)
    return %0, %1, %2, %3#0, %3#1 : tensor<4xf32>, tensor<4xf32>, tensor<6xf32>, tensor<2xf32>, tensor<3xf32>
  }
}

// -----

// replica_id is 0 (mhlo.num_replicas = 1): a constant, no import. Collectives inside a
// while body are lowered too. A declaration already in the module (hand-written, or an
// earlier run) keeps its name: partition_id reuses it, an all_reduce whose name is taken
// by another signature gets the next tag.
// CHECK-LABEL: module @nested
// CHECK-NEXT: func.func private @rhino.all_reduce.sum.g0_1.t1(tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: func.func private @rhino.partition_id() -> tensor<ui32>
// CHECK-NEXT: func.func private @rhino.all_reduce.sum.g0_1.t0(tensor<8xf32>) -> tensor<8xf32>
// CHECK-NEXT: func.func @main
// CHECK: %[[R:.*]] = stablehlo.constant dense<0> : tensor<ui32>
// CHECK: stablehlo.while
// CHECK: do
// CHECK: call @rhino.all_reduce.sum.g0_1.t1(%{{.*}}) : (tensor<4xf32>) -> tensor<4xf32>
// CHECK: call @rhino.partition_id() : () -> tensor<ui32>
// CHECK: return %{{.*}}, %[[R]] :
// CHECK-NOT: stablehlo.all_reduce
// CHECK-NOT: stablehlo.replica_id
module @nested attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  func.func private @rhino.partition_id() -> tensor<ui32>
  func.func private @rhino.all_reduce.sum.g0_1.t0(tensor<8xf32>) -> tensor<8xf32>
  func.func @main(%a: tensor<4xf32>) -> (tensor<4xf32>, tensor<ui32>) {
    %rid = stablehlo.replica_id : tensor<ui32>
    %c0 = stablehlo.constant dense<0> : tensor<i32>
    %r:2 = stablehlo.while(%i = %c0, %x = %a) : tensor<i32>, tensor<4xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %lt = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %lt : tensor<i1>
    } do {
      %s = "stablehlo.all_reduce"(%x) ({
      ^bb0(%p: tensor<f32>, %q: tensor<f32>):
        %t = stablehlo.add %p, %q : tensor<f32>
        stablehlo.return %t : tensor<f32>
      }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
      %pid = stablehlo.partition_id : tensor<ui32>
      %pf = stablehlo.convert %pid : (tensor<ui32>) -> tensor<f32>
      %pb = stablehlo.broadcast_in_dim %pf, dims = [] : (tensor<f32>) -> tensor<4xf32>
      %y = stablehlo.add %s, %pb : tensor<4xf32>
      %c1 = stablehlo.constant dense<1> : tensor<i32>
      %j = stablehlo.add %i, %c1 : tensor<i32>
      stablehlo.return %j, %y : tensor<i32>, tensor<4xf32>
    }
    return %r#1, %rid : tensor<4xf32>, tensor<ui32>
  }
}
