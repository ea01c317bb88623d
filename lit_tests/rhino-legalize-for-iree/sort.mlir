// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree)' | filecheck %s
// A second run changes nothing:
// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-legalize-for-iree,rhino-legalize-for-iree)' | filecheck %s

// A stable sort whose second operand already holds positions (argsort): that operand
// breaks ties, behind an optimization_barrier so IREE sees no iota; the comparator
// becomes less(a, b) or (not less(b, a) and pos_a < pos_b), a total order (so the new
// sort need not be stable); the used result leaves through a barrier too.
// CHECK-LABEL: func.func public @argsort
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 1 : tensor<2x8xi32>
// CHECK: %[[POS:.*]] = stablehlo.optimization_barrier %[[IOTA]] : tensor<2x8xi32>
// CHECK: %[[S:.*]]:2 = "stablehlo.sort"(%arg0, %[[POS]]) <{dimension = 1 : i64, is_stable = false}>
// CHECK: ^bb0(%[[A:.*]]: tensor<i32>, %[[B:.*]]: tensor<i32>, %[[PA:.*]]: tensor<i32>, %[[PB:.*]]: tensor<i32>):
// CHECK: %[[AB:.*]] = stablehlo.compare GT, %[[A]], %[[B]], SIGNED
// CHECK: %[[BA:.*]] = stablehlo.compare GT, %[[B]], %[[A]], SIGNED
// CHECK: %[[EARLIER:.*]] = stablehlo.compare LT, %[[PA]], %[[PB]]
// CHECK: %[[NBA:.*]] = stablehlo.not %[[BA]]
// CHECK: %[[TIE:.*]] = stablehlo.and %[[NBA]], %[[EARLIER]]
// CHECK: %[[LESS:.*]] = stablehlo.or %[[AB]], %[[TIE]]
// CHECK: stablehlo.return %[[LESS]]
// CHECK: %[[R:.*]] = stablehlo.optimization_barrier %[[S]]#1 : tensor<2x8xi32>
// CHECK: return %[[R]]
// CHECK-NOT: optimization_barrier
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
// CHECK: %[[S:.*]]:2 = "stablehlo.sort"(%arg0, %[[POS]]) <{dimension = 0 : i64, is_stable = false}>
// CHECK: stablehlo.compare LT, %{{.*}}, %{{.*}}, TOTALORDER
// CHECK: %[[R:.*]] = stablehlo.optimization_barrier %[[S]]#0 : tensor<5x3xf32>
// CHECK: return %[[R]] : tensor<5x3xf32>
func.func public @sort_dim0(%x: tensor<5x3xf32>) -> tensor<5x3xf32> {
  %0 = "stablehlo.sort"(%x) <{dimension = 0 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %r = stablehlo.compare LT, %a, %b, TOTALORDER : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<5x3xf32>) -> tensor<5x3xf32>
  return %0 : tensor<5x3xf32>
}

// Unstable sorts may order equal keys any way: no position key, but the result still
// leaves through a barrier (IREE sorts in place: a consumer fused into the sort's
// dispatch made it fail); an argument operand has no producer to keep apart.
// CHECK-LABEL: func.func public @unstable
// CHECK-NOT: optimization_barrier
// CHECK: %[[S:.*]] = "stablehlo.sort"(%arg0) <{dimension = 0 : i64, is_stable = false}>
// CHECK: stablehlo.optimization_barrier %[[S]] : tensor<5xf32>
func.func public @unstable(%x: tensor<5xf32>) -> tensor<5xf32> {
  %0 = "stablehlo.sort"(%x) <{dimension = 0 : i64, is_stable = false}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %r = stablehlo.compare LT, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<5xf32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// A top-k (every result only sliced) stays for IREE's topk.
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

// The partitioner's gather of an uneven sort dim (all_gather 8 rows -> slice 7): IREE
// fused the slice into the in-place sort's dispatch and failed ("write affecting
// operations on global resources are restricted to workgroup distributed contexts").
// The slice and the position iota enter through one barrier; the consumer (a pad) is
// kept apart by another.
// CHECK-LABEL: func.func public @sliced_operand
// CHECK: %[[SL:.*]] = stablehlo.slice %arg0 [0:7, 0:3]
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 0 : tensor<7x3xi32>
// CHECK: %[[IN:.*]]:2 = stablehlo.optimization_barrier %[[SL]], %[[IOTA]] : tensor<7x3xf32>, tensor<7x3xi32>
// CHECK: %[[S:.*]]:2 = "stablehlo.sort"(%[[IN]]#0, %[[IN]]#1) <{dimension = 0 : i64, is_stable = false}>
// CHECK: %[[OUT:.*]] = stablehlo.optimization_barrier %[[S]]#0 : tensor<7x3xf32>
// CHECK: stablehlo.pad %[[OUT]]
func.func public @sliced_operand(%x: tensor<8x3xf32>) -> tensor<8x3xf32> {
  %0 = stablehlo.slice %x [0:7, 0:3] : (tensor<8x3xf32>) -> tensor<7x3xf32>
  %1 = "stablehlo.sort"(%0) <{dimension = 0 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %r = stablehlo.compare LT, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<7x3xf32>) -> tensor<7x3xf32>
  %c = stablehlo.constant dense<0.0> : tensor<f32>
  %2 = stablehlo.pad %1, %c, low = [0, 0], high = [1, 0], interior = [0, 0] : (tensor<7x3xf32>, tensor<f32>) -> tensor<8x3xf32>
  return %2 : tensor<8x3xf32>
}

// Sorting along a dimension of size 1 is the identity: the sort is dropped (IREE
// failed on it with a pad after it, the partitioner's cut to a sharded result).
// CHECK-LABEL: func.func public @size_one_dim
// CHECK-NOT: stablehlo.sort
// CHECK: stablehlo.pad %arg0, %{{.*}}, low = [0, 0, 0], high = [0, 0, 1]
// CHECK-NOT: stablehlo.sort
func.func public @size_one_dim(%x: tensor<4x5x1xi32>) -> tensor<4x5x2xi32> {
  %0 = "stablehlo.sort"(%x) <{dimension = 2 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<i32>, %b: tensor<i32>):
    %r = stablehlo.compare LT, %a, %b, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<4x5x1xi32>) -> tensor<4x5x1xi32>
  %c = stablehlo.constant dense<0> : tensor<i32>
  %1 = stablehlo.pad %0, %c, low = [0, 0, 0], high = [0, 0, 1], interior = [0, 0, 0] : (tensor<4x5x1xi32>, tensor<i32>) -> tensor<4x5x2xi32>
  return %1 : tensor<4x5x2xi32>
}

// A top-k of a sliced operand: the values enter through a barrier, the position iota
// stays in sight (IREE raises sort + slice to its topk only when it sees the iota).
// CHECK-LABEL: func.func public @top_k_of_slice
// CHECK: %[[SL:.*]] = stablehlo.slice %arg0 [0:2, 0:8]
// CHECK: %[[IOTA:.*]] = stablehlo.iota dim = 1 : tensor<2x8xi32>
// CHECK: %[[V:.*]] = stablehlo.optimization_barrier %[[SL]] : tensor<2x8xf32>
// CHECK: %[[S:.*]]:2 = "stablehlo.sort"(%[[V]], %[[IOTA]]) <{dimension = 1 : i64, is_stable = true}>
// CHECK-NOT: optimization_barrier
// CHECK: stablehlo.slice %[[S]]#0 [0:2, 0:3]
func.func public @top_k_of_slice(%x: tensor<2x9xf32>) -> (tensor<2x3xf32>, tensor<2x3xi32>) {
  %0 = stablehlo.slice %x [0:2, 0:8] : (tensor<2x9xf32>) -> tensor<2x8xf32>
  %i = stablehlo.iota dim = 1 : tensor<2x8xi32>
  %1:2 = "stablehlo.sort"(%0, %i) <{dimension = 1 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>, %c: tensor<i32>, %d: tensor<i32>):
    %r = stablehlo.compare GT, %a, %b, TOTALORDER : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }) : (tensor<2x8xf32>, tensor<2x8xi32>) -> (tensor<2x8xf32>, tensor<2x8xi32>)
  %2 = stablehlo.slice %1#0 [0:2, 0:3] : (tensor<2x8xf32>) -> tensor<2x3xf32>
  %3 = stablehlo.slice %1#1 [0:2, 0:3] : (tensor<2x8xi32>) -> tensor<2x3xi32>
  return %2, %3 : tensor<2x3xf32>, tensor<2x3xi32>
}
