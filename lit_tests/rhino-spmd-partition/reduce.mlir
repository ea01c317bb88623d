// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Sum over a sharded dimension: local reduce, then all_reduce(add) over "y".
// CHECK-LABEL: func.func @main
// CHECK: %[[R:.*]] = stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.add across dimensions = [1] : (tensor<4x4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK: "stablehlo.all_reduce"(%[[R]]) <{channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, replica_groups = dense<{{\[\[}}0, 1, 2, 3], [4, 5, 6, 7]]> : tensor<2x4xi64>, use_global_device_ids}> ({
// CHECK-NEXT: ^bb0(%{{.*}}: tensor<f32>, %{{.*}}: tensor<f32>):
// CHECK-NEXT: stablehlo.add
// CHECK-NEXT: stablehlo.return
// CHECK-NEXT: }) : (tensor<4xf32>) -> tensor<4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8xf32> {
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// Max with a -inf init: the partial maxima combine with all_reduce(maximum).
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.maximum across dimensions = [1] : (tensor<4x4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK: "stablehlo.all_reduce"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: stablehlo.maximum
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<8xf32> {
  %c = stablehlo.constant dense<0xFF800000> : tensor<f32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.maximum across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// A sum whose init is not the identity (1.0) cannot be completed by an all_reduce
// (the init would be added once per shard): the operand is gathered first.
// CHECK-LABEL: func.func @main
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<8x4xf32>) -> tensor<8x16xf32>
// CHECK: stablehlo.reduce(%[[G]] init: %{{.*}}) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
// CHECK-NOT: stablehlo.all_reduce
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<8xf32> {
  %c = stablehlo.constant dense<1.0> : tensor<f32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// Argmax (variadic reduce, custom body) over the sharded dimension: never an
// all_reduce of the wrong kind — both inputs are gathered, then reduced locally.
// CHECK-LABEL: func.func @main
// CHECK: %[[V:.*]] = "stablehlo.all_gather"(%arg0) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<8x4xf32>) -> tensor<8x16xf32>
// CHECK: %[[I:.*]] = "stablehlo.all_gather"(%arg1) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<8x4xi32>) -> tensor<8x16xi32>
// CHECK: stablehlo.reduce(%[[V]] init: %{{.*}}), (%[[I]] init: %{{.*}}) across dimensions = [1] : (tensor<8x16xf32>, tensor<8x16xi32>, tensor<f32>, tensor<i32>) -> (tensor<8xf32>, tensor<8xi32>)
// CHECK-NOT: stablehlo.all_reduce
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}, %arg1: tensor<8x16xi32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32>, tensor<8xi32>) {
  %c = stablehlo.constant dense<0xFF800000> : tensor<f32>
  %c1 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.reduce(%arg0 init: %c), (%arg1 init: %c1) across dimensions = [1] : (tensor<8x16xf32>, tensor<8x16xi32>, tensor<f32>, tensor<i32>) -> (tensor<8xf32>, tensor<8xi32>)
    reducer(%a: tensor<f32>, %b: tensor<f32>) (%ai: tensor<i32>, %bi: tensor<i32>) {
      %1 = stablehlo.compare GE, %a, %b : (tensor<f32>, tensor<f32>) -> tensor<i1>
      %2 = stablehlo.select %1, %a, %b : tensor<i1>, tensor<f32>
      %3 = stablehlo.select %1, %ai, %bi : tensor<i1>, tensor<i32>
      stablehlo.return %2, %3 : tensor<f32>, tensor<i32>
    }
  return %0#0, %0#1 : tensor<8xf32>, tensor<8xi32>
}

// -----

// A boolean "any" (or over i1) is not an add/mul/min/max all_reduce: gather, then reduce.
// i1 travels as i8 (IREE's collectives do not move i1).
// CHECK-LABEL: func.func @main
// CHECK: %[[W:.*]] = stablehlo.convert %arg0 : (tensor<8x4xi1>) -> tensor<8x4xi8>
// CHECK: %[[G8:.*]] = "stablehlo.all_gather"(%[[W]]) {{.*}} : (tensor<8x4xi8>) -> tensor<8x16xi8>
// CHECK: %[[G:.*]] = stablehlo.convert %[[G8]] : (tensor<8x16xi8>) -> tensor<8x16xi1>
// CHECK: stablehlo.reduce(%[[G]] init: %{{.*}}) applies stablehlo.or
// CHECK-NOT: stablehlo.all_reduce
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xi1> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<8xi1> {
  %c = stablehlo.constant dense<false> : tensor<i1>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.or across dimensions = [1] : (tensor<8x16xi1>, tensor<i1>) -> tensor<8xi1>
  return %0 : tensor<8xi1>
}

// -----

// An integer sum over both mesh axes to a scalar: one all_reduce over all devices.
// CHECK-LABEL: func.func @main
// CHECK: %[[R:.*]] = stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x4xi32>, tensor<i32>) -> tensor<i32>
// CHECK: "stablehlo.all_reduce"(%[[R]]) {{.*}}replica_groups = dense<{{\[\[}}0, 1, 2, 3, 4, 5, 6, 7]]> : tensor<1x8xi64>
// CHECK: }) : (tensor<i32>) -> tensor<i32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xi32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) -> tensor<i32> {
  %c = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [0, 1] : (tensor<8x16xi32>, tensor<i32>) -> tensor<i32>
  return %0 : tensor<i32>
}

// -----

// A sum whose result is wanted sharded on the axis it is partial over: the local
// partial sums are completed and scattered in one reduce_scatter (not all_reduce +
// slice, and not an all_to_all of the 4x larger operand).
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.add across dimensions = [1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<8xf32>
// CHECK: "stablehlo.reduce_scatter"(%{{.*}}) <{{.*}}replica_groups = dense<{{\[\[}}0, 1, 2, 3]]> : tensor<1x4xi64>, scatter_dimension = 0 : i64, use_global_device_ids}>
// CHECK: }) : (tensor<8xf32>) -> tensor<2xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) {
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %0 = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}
