// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// A scan over layers whose body is pointwise: the carry keeps [{"x"}, {}] inside the
// body, so the loop has local types everywhere and no collective at all.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_
// CHECK: stablehlo.while(%[[I:.*]] = %{{.*}}, %[[H:.*]] = %arg0) : tensor<i32>, tensor<2x16xf32>
// CHECK: cond
// CHECK: } do {
// CHECK: %[[S:.*]] = stablehlo.sine %[[H]] : tensor<2x16xf32>
// CHECK: %[[M:.*]] = stablehlo.multiply %[[S]], %arg1 : tensor<2x16xf32>
// CHECK: stablehlo.return %{{.*}}, %[[M]] : tensor<i32>, tensor<2x16xf32>
// CHECK-NOT: stablehlo.all_
// CHECK: return %{{.*}}#1 : tensor<2x16xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.while(%i = %c0, %h = %arg0) : tensor<i32>, tensor<8x16xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %s = stablehlo.sine %h : tensor<8x16xf32>
      %m = stablehlo.multiply %s, %arg1 : tensor<8x16xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %m : tensor<i32>, tensor<8x16xf32>
    }
  return %0#1 : tensor<8x16xf32>
}

// -----

// A scan over stacked weights (3 layers, columns on "y"): the carry is [{"x"}, {"y"}]
// in and out of the body; the contraction inside gathers the carry's "y" columns
// (its contracting dimension) each iteration, and the yielded value is a local shard.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<3x16x4xf32> {rhino.global_type = tensor<3x16x16xf32>
// CHECK-SAME: -> (tensor<4x4xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>})
// CHECK: stablehlo.while(%{{.*}} = %{{.*}}, %[[H:.*]] = %{{.*}}) : tensor<i32>, tensor<4x4xf32>
// CHECK: } do {
// CHECK: stablehlo.dynamic_slice %arg1, {{.*}} sizes = [1, 16, 4] : (tensor<3x16x4xf32>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<1x16x4xf32>
// CHECK: %[[G:.*]] = "stablehlo.all_gather"(%[[H]]) <{all_gather_dim = 1 : i64, {{.*}}}> : (tensor<4x4xf32>) -> tensor<4x16xf32>
// CHECK: %[[D:.*]] = stablehlo.dot_general %[[G]], {{.*}} : (tensor<4x16xf32>, tensor<16x4xf32>) -> tensor<4x4xf32>
// CHECK: %[[T:.*]] = stablehlo.tanh %[[D]] : tensor<4x4xf32>
// CHECK: stablehlo.return %{{.*}}, %[[T]] : tensor<i32>, tensor<4x4xf32>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<3x16x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}, {"y"}]>}) -> tensor<8x16xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0:2 = stablehlo.while(%i = %c0, %h = %arg0) : tensor<i32>, tensor<8x16xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %z = stablehlo.constant dense<0> : tensor<i32>
      %w = stablehlo.dynamic_slice %arg1, %i, %z, %z, sizes = [1, 16, 16] : (tensor<3x16x16xf32>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<1x16x16xf32>
      %w2 = stablehlo.reshape %w : (tensor<1x16x16xf32>) -> tensor<16x16xf32>
      %y = stablehlo.dot_general %h, %w2, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
      %t = stablehlo.tanh %y : tensor<8x16xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %t : tensor<i32>, tensor<8x16xf32>
    }
  return %0#1 : tensor<8x16xf32>
}

// -----

// A loop that sums a sharded dimension into an accumulator (starts at 0, only added
// to): the carry stays partial over "x", each device summing its own partial row sums,
// and the one all_reduce is after the loop, not in the body (partition/spmd/carry.py).
// CHECK-LABEL: func.func @main
// CHECK: %[[Z:.*]] = stablehlo.constant dense<0.000000e+00> : tensor<8xf32>
// CHECK: %[[L:.*]]:2 = stablehlo.while(%{{.*}} = %{{.*}}, %[[A:.*]] = %[[Z]])
// CHECK: } do {
// CHECK-NOT: stablehlo.all_reduce
// CHECK: %[[R:.*]] = stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.add across dimensions = [1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<8xf32>
// CHECK-NOT: stablehlo.all_reduce
// CHECK: %[[S:.*]] = stablehlo.add %[[A]], %[[R]] : tensor<8xf32>
// CHECK-NOT: stablehlo.all_reduce
// CHECK: stablehlo.return %{{.*}}, %[[S]]
// CHECK-NEXT: }
// CHECK-NEXT: %[[C:.*]] = "stablehlo.all_reduce"(%[[L]]#1)
// CHECK: return %[[C]] : tensor<8xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %z = stablehlo.constant dense<0.0> : tensor<8xf32>
  %0:2 = stablehlo.while(%i = %c0, %acc = %z) : tensor<i32>, tensor<8xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %c = stablehlo.constant dense<0.0> : tensor<f32>
      %r = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
      %a = stablehlo.add %acc, %r : tensor<8xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %a : tensor<i32>, tensor<8xf32>
    }
  return %0#1 : tensor<8xf32>
}

// -----

// The same accumulator, but the body also reads the carry (a running maximum of it):
// the carry must hold the complete sum, so the partial row sums are completed in the body.
// CHECK-LABEL: func.func @main
// CHECK: } do {
// CHECK: %[[R:.*]] = stablehlo.reduce(%arg0 init: %{{.*}}) applies stablehlo.add across dimensions = [1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<8xf32>
// CHECK: "stablehlo.all_reduce"(%[[R]])
// CHECK: stablehlo.return
// CHECK-NOT: stablehlo.all_reduce
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}, tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %z = stablehlo.constant dense<0.0> : tensor<8xf32>
  %0:3 = stablehlo.while(%i = %c0, %acc = %z, %top = %z) : tensor<i32>, tensor<8xf32>, tensor<8xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %c = stablehlo.constant dense<0.0> : tensor<f32>
      %r = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
      %a = stablehlo.add %acc, %r : tensor<8xf32>
      %m = stablehlo.maximum %top, %acc : tensor<8xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %a, %m : tensor<i32>, tensor<8xf32>, tensor<8xf32>
    }
  return %0#1, %0#2 : tensor<8xf32>, tensor<8xf32>
}

// -----

// An accumulator whose result the caller wants sharded over the axis it is partial
// over (a ZeRO-2 gradient shard): the carry stays whole and partial in the loop, and
// one reduce_scatter after it completes and shards it.
// CHECK-LABEL: func.func @main
// CHECK: } do {
// CHECK-NOT: stablehlo.reduce_scatter
// CHECK: stablehlo.add %{{.*}} : tensor<8xf32>
// CHECK: stablehlo.return
// CHECK-NEXT: }
// CHECK-NEXT: %[[C:.*]] = "stablehlo.reduce_scatter"(%{{.*}}#1)
// CHECK: return %[[C]] : tensor<2xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %z = stablehlo.constant dense<0.0> : tensor<8xf32>
  %0:2 = stablehlo.while(%i = %c0, %acc = %z) : tensor<i32>, tensor<8xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %c = stablehlo.constant dense<0.0> : tensor<f32>
      %r = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
      %a = stablehlo.add %acc, %r : tensor<8xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %a : tensor<i32>, tensor<8xf32>
    }
  return %0#1 : tensor<8xf32>
}

// -----

// A bf16 contribution widened before it is added to an f32 accumulator (how rhino-accumulate
// sums low-precision gradients): each device widens its own partial sums, the carry stays
// partial, and the one all_reduce after the loop is in f32.
// CHECK-LABEL: func.func @main
// CHECK: } do {
// CHECK-NOT: stablehlo.all_reduce
// CHECK: %[[W:.*]] = stablehlo.convert %{{.*}} : (tensor<8xbf16>) -> tensor<8xf32>
// CHECK: stablehlo.add %{{.*}}, %[[W]] : tensor<8xf32>
// CHECK: stablehlo.return
// CHECK-NEXT: }
// CHECK-NEXT: "stablehlo.all_reduce"(%{{.*}}#1)
// CHECK: }) : (tensor<8xf32>) -> tensor<8xf32>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xbf16> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}]>}) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %z = stablehlo.constant dense<0.0> : tensor<8xf32>
  %0:2 = stablehlo.while(%i = %c0, %acc = %z) : tensor<i32>, tensor<8xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %c = stablehlo.constant dense<0.0> : tensor<bf16>
      %r = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xbf16>, tensor<bf16>) -> tensor<8xbf16>
      %w = stablehlo.convert %r : (tensor<8xbf16>) -> tensor<8xf32>
      %a = stablehlo.add %acc, %w : tensor<8xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %a : tensor<i32>, tensor<8xf32>
    }
  return %0#1 : tensor<8xf32>
}

// -----

// case: the branches' yields are tied to the results, so both branches run on local
// shards of the captured value and the result keeps [{"x"}, {"y"}]; the index is a
// replicated scalar.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<4x4xf32> {rhino.global_type = tensor<8x16xf32>, sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>})
// CHECK-NOT: stablehlo.all_
// CHECK: "stablehlo.case"(%arg1) ({
// CHECK: stablehlo.negate %arg0 : tensor<4x4xf32>
// CHECK: }, {
// CHECK: stablehlo.exponential %arg0 : tensor<4x4xf32>
// CHECK: }) : (tensor<i32>) -> tensor<4x4xf32>
// CHECK-NOT: stablehlo.all_
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %p: tensor<i32>) -> tensor<8x16xf32> {
  %0 = "stablehlo.case"(%p) ({
    %1 = stablehlo.negate %arg0 : tensor<8x16xf32>
    stablehlo.return %1 : tensor<8x16xf32>
  }, {
    %1 = stablehlo.exponential %arg0 : tensor<8x16xf32>
    stablehlo.return %1 : tensor<8x16xf32>
  }) : (tensor<i32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
