// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree)' | filecheck %s

// A stable sort whose second operand already holds positions (argsort): that operand
// breaks ties, behind an optimization_barrier so IREE sees no iota; the comparator
// becomes less(a, b) or (not less(b, a) and pos_a < pos_b).
// CHECK-LABEL: func.func public @argsort
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 1 : tensor<2x8xi32>
// CHECK: %[[POS:.*]] = stablehlo.optimization_barrier %[[IOTA]] : tensor<2x8xi32>
// CHECK: "stablehlo.sort"(%arg0, %[[POS]]) <{dimension = 1 : i64, is_stable = true}>
// CHECK: ^bb0(%[[A:.*]]: tensor<i32>, %[[B:.*]]: tensor<i32>, %[[PA:.*]]: tensor<i32>, %[[PB:.*]]: tensor<i32>):
// CHECK: %[[AB:.*]] = stablehlo.compare GT, %[[A]], %[[B]], SIGNED
// CHECK: %[[BA:.*]] = stablehlo.compare GT, %[[B]], %[[A]], SIGNED
// CHECK: %[[EARLIER:.*]] = stablehlo.compare LT, %[[PA]], %[[PB]]
// CHECK: %[[NBA:.*]] = stablehlo.not %[[BA]]
// CHECK: %[[TIE:.*]] = stablehlo.and %[[NBA]], %[[EARLIER]]
// CHECK: %[[LESS:.*]] = stablehlo.or %[[AB]], %[[TIE]]
// CHECK: stablehlo.return %[[LESS]]
func.func public @argsort(%x: tensor<2x8xi32>) -> tensor<2x8xi32> {
  %0 = stablehlo.iota dim = 1 : tensor<2x8xi32>
  %1:2 = "stablehlo.sort"(%x, %0) <{dimension = 1 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<i32>, %b: tensor<i32>, %c: tensor<i32>, %d: tensor<i32>):
    %r = stablehlo.compare GT, %a, %b, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<2x8xi32>, tensor<2x8xi32>) -> (tensor<2x8xi32>, tensor<2x8xi32>)
  return %1#1 : tensor<2x8xi32>
}

// No position operand: one more (an i32 iota along dim 0), its result unused.
// CHECK-LABEL: func.func public @sort_dim0
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 0 : tensor<5x3xi32>
// CHECK: %[[POS:.*]] = stablehlo.optimization_barrier %[[IOTA]]
// CHECK: %[[S:.*]]:2 = "stablehlo.sort"(%arg0, %[[POS]]) <{dimension = 0 : i64, is_stable = true}>
// CHECK: stablehlo.compare LT, %{{.*}}, %{{.*}}, TOTALORDER
// CHECK: return %[[S]]#0 : tensor<5x3xf32>
func.func public @sort_dim0(%x: tensor<5x3xf32>) -> tensor<5x3xf32> {
  %0 = "stablehlo.sort"(%x) <{dimension = 0 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %r = stablehlo.compare LT, %a, %b, TOTALORDER : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<5x3xf32>) -> tensor<5x3xf32>
  return %0 : tensor<5x3xf32>
}

// Unstable sorts may order equal keys any way; top-k (every result only sliced) stays
// for IREE's topk.
// CHECK-LABEL: func.func public @unstable
// CHECK-NOT: optimization_barrier
// CHECK: "stablehlo.sort"(%arg0) <{dimension = 0 : i64, is_stable = false}>
func.func public @unstable(%x: tensor<5xf32>) -> tensor<5xf32> {
  %0 = "stablehlo.sort"(%x) <{dimension = 0 : i64, is_stable = false}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %r = stablehlo.compare LT, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<5xf32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// CHECK-LABEL: func.func public @top_k
// CHECK-NOT: optimization_barrier
// CHECK: "stablehlo.sort"(%arg0, %0) <{dimension = 1 : i64, is_stable = true}>
func.func public @top_k(%x: tensor<1x8xi32>) -> (tensor<1x4xi32>, tensor<1x4xi32>) {
  %0 = stablehlo.iota dim = 1 : tensor<1x8xi32>
  %1:2 = "stablehlo.sort"(%x, %0) <{dimension = 1 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<i32>, %b: tensor<i32>, %c: tensor<i32>, %d: tensor<i32>):
    %r = stablehlo.compare GT, %a, %b, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<1x8xi32>, tensor<1x8xi32>) -> (tensor<1x8xi32>, tensor<1x8xi32>)
  %2 = stablehlo.slice %1#0 [0:1, 0:4] : (tensor<1x8xi32>) -> tensor<1x4xi32>
  %3 = stablehlo.slice %1#1 [0:1, 0:4] : (tensor<1x8xi32>) -> tensor<1x4xi32>
  return %2, %3 : tensor<1x4xi32>, tensor<1x4xi32>
}
