// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-inline)'
// Errors are matched to the line of the op (or the line:column of a parse error).

func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{not found for custom op 'foo.bar'}}
  %0 = foo.bar %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @below {{dynamic shapes are not supported: %arg0 : tensor<?xf32>}}
func.func @main(%arg0: tensor<?xf32>) -> tensor<?xf32> {
  return %arg0 : tensor<?xf32>
}

// -----

// A chunk without expectations passes through untouched.
func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
}
