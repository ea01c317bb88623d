// a missing operand after the comma: the error points at line 3, column 28
func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.add %arg0, : tensor<4xf32>
  return %0 : tensor<4xf32>
}
