// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-annotate-cost)' | filecheck %s

// flops = 2 * out_elems * kernel_spatial * in_features / feature_groups
// CHECK-LABEL: func.func @conv3x3
// out 1x6x6x16 = 576, kernel 3x3, 3 input features: 2*576*9*3 = 31104
// bytes: (192 + 432 + 576) * 4 = 4800
// CHECK: stablehlo.convolution{{.*}}rhino.bytes = 4800 : i64, rhino.flops = 31104 : i64
func.func @conv3x3(%img: tensor<1x8x8x3xf32>, %k: tensor<3x3x3x16xf32>) -> tensor<1x6x6x16xf32> {
  %0 = stablehlo.convolution(%img, %k) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x8x8x3xf32>, tensor<3x3x3x16xf32>) -> tensor<1x6x6x16xf32>
  return %0 : tensor<1x6x6x16xf32>
}

// Depthwise: 8 features in 8 groups, each output sees one input feature.
// CHECK-LABEL: func.func @depthwise
// out 1x6x6x8 = 288: 2*288*9*1 = 5184
// CHECK: stablehlo.convolution{{.*}}rhino.flops = 5184 : i64
func.func @depthwise(%img: tensor<1x8x8x8xf32>, %k: tensor<3x3x1x8xf32>) -> tensor<1x6x6x8xf32> {
  %0 = stablehlo.convolution(%img, %k) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 8 : i64} : (tensor<1x8x8x8xf32>, tensor<3x3x1x8xf32>) -> tensor<1x6x6x8xf32>
  return %0 : tensor<1x6x6x8xf32>
}
