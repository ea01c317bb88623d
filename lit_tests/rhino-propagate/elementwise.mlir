// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate)' | filecheck %s

// Pointwise ops share every factor: the argument's sharding reaches every value,
// the unannotated argument and the result, and a splat constant follows its user.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}
// CHECK-SAME: -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>})
// CHECK: stablehlo.add %arg0, %arg1 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
// CHECK: stablehlo.exponential {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
// CHECK: stablehlo.constant {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>}
// CHECK: stablehlo.multiply {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}, %arg1: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %0 = stablehlo.add %arg0, %arg1 : tensor<8x16xf32>
  %1 = stablehlo.exponential %0 : tensor<8x16xf32>
  %c = stablehlo.constant dense<1.0> : tensor<8x16xf32>
  %2 = stablehlo.multiply %1, %c : tensor<8x16xf32>
  return %2 : tensor<8x16xf32>
}

// -----

// A conflict between two annotated operands (both fixed, same shard count): the
// earlier operand wins; the annotated arguments keep their own shardings.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// CHECK-SAME: %arg1: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}
// CHECK-SAME: -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
// CHECK: stablehlo.add %arg0, %arg1 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.add %arg0, %arg1 : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// Shardings of different dimensions combine: [{"x"}, {}] and [{}, {"y"}] give [{"x"}, {"y"}].
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.subtract %arg0, %arg1 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {"y"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.subtract %arg0, %arg1 : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// A conflict on one dimension: more shards win, "y" (4) over "x" (2), whatever the
// operand order.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.subtract %arg0, %arg1 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"y"}, {}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}, %arg1: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y"}, {}]>}) -> tensor<8x16xf32> {
  %0 = stablehlo.subtract %arg0, %arg1 : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

// broadcast_in_dim maps operand dim 0 to result dim 0; convert, compare and select
// are pointwise; i1 and i32 values take the same sharding as f32 ones.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg1: tensor<8x16xi32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}
// CHECK: stablehlo.broadcast_in_dim {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
// CHECK: stablehlo.convert {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
// CHECK: stablehlo.compare {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
// CHECK: stablehlo.select {{.*}}sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}, %arg1: tensor<8x16xi32>) -> tensor<8x16xf32> {
  %0 = stablehlo.broadcast_in_dim %arg0, dims = [0] : (tensor<8xf32>) -> tensor<8x16xf32>
  %1 = stablehlo.convert %arg1 : (tensor<8x16xi32>) -> tensor<8x16xf32>
  %2 = stablehlo.compare GT, %0, %1 : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xi1>
  %3 = stablehlo.select %2, %0, %1 : tensor<8x16xi1>, tensor<8x16xf32>
  return %3 : tensor<8x16xf32>
}

// -----

// Backwards: a result annotation reaches the unannotated argument.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %arg0: tensor<8x16xbf16> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y", "x"}]>}
// CHECK: stablehlo.tanh %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}, {"y", "x"}]>]>
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xbf16>) -> (tensor<8x16xbf16> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y", "x"}]>}) {
  %0 = stablehlo.tanh %arg0 : tensor<8x16xbf16>
  return %0 : tensor<8x16xbf16>
}

// -----

// Nothing annotated and no mesh: the pass leaves the module unchanged.
// CHECK-LABEL: func.func @main
// CHECK-NOT: sdy.sharding
// CHECK: stablehlo.abs %arg0 : tensor<4xf32>
func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.abs %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
