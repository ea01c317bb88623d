// RUN: rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' | filecheck %s

// Fixed bug (was invalid IR: "inferred shape '[2, 1, 4, 6]' is incompatible with return
// type 'tensor<2x2x4x6xf32>'"): input 5 sharded on 4 devices, kernel 3, stride 2, output 2.
// Shardy's rule shares a window factor j=3 between input and kernel whatever the stride;
// the local conv of a 2-row shard is not a part of the global one. analysis/windows.py
// refuses the factor: the spatial dim is gathered, the conv runs whole, the output is sliced.
// CHECK-LABEL: func.func @main
// CHECK: stablehlo.all_gather
// CHECK: stablehlo.convolution
// CHECK-SAME: (tensor<2x5x5x3xf32>, tensor<3x2x3x6xf32>) -> tensor<2x2x4x6xf32>
// CHECK: stablehlo.dynamic_slice
sdy.mesh @mesh = <["x"=4]>
func.func @main(%x: tensor<2x5x5x3xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}, {}, {}]>}, %w: tensor<3x2x3x6xf32>)
    -> (tensor<2x2x4x6xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}, {}, {}]>}) {
  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f],
      window = {stride = [2, 1]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64}
      : (tensor<2x5x5x3xf32>, tensor<3x2x3x6xf32>) -> tensor<2x2x4x6xf32>
  return %0 : tensor<2x2x4x6xf32>
}

// -----

// A 1-wide window with stride 1 is pointwise along that dim: the shards stay local.
// CHECK-LABEL: func.func @main
// CHECK-NOT: stablehlo.all_gather
// CHECK: stablehlo.convolution
// CHECK-SAME: (tensor<2x3x5x3xf32>, tensor<1x2x3x6xf32>) -> tensor<2x3x4x6xf32>
// CHECK-NOT: stablehlo.all_gather
sdy.mesh @mesh = <["x"=4]>
func.func @main(%x: tensor<2x9x5x3xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}, {}, {}]>}, %w: tensor<1x2x3x6xf32>)
    -> (tensor<2x9x4x6xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}, {}, {}]>}) {
  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f],
      window = {stride = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64}
      : (tensor<2x9x5x3xf32>, tensor<1x2x3x6xf32>) -> tensor<2x9x4x6xf32>
  return %0 : tensor<2x9x4x6xf32>
}
