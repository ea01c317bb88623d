// A valid program for the option errors in ../errors.mlir.
func.func @main(%a: tensor<128x512xf32>, %b: tensor<512x2048xf32>) -> tensor<128x2048xf32> {
  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<128x512xf32>, tensor<512x2048xf32>) -> tensor<128x2048xf32>
  return %0 : tensor<128x2048xf32>
}
