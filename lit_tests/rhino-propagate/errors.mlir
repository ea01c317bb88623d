// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-propagate)'

// Invalid sdy annotations are rejected by Shardy's verifier when the file is parsed
// (before any pass runs): the error names the op and the line of the annotation.

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{'func.func' op arg 0 - unknown mesh: @other}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@other, [{"x"}, {}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{'func.func' op arg 0 - unknown axis name: "z"}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"z"}, {}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{'func.func' op result 0 - unknown axis name: "w"}}
func.func @main(%arg0: tensor<8x16xf32>) -> (tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"w"}, {}]>}) {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{'func.func' op arg 0 - sharding doesn't match tensor rank: 1 != 2}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'sdy.sharding_constraint' op sharding doesn't match tensor rank: 3 != 2}}
  %0 = sdy.sharding_constraint %arg0 <@mesh, [{"x"}, {}, {}]> : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{'func.func' op arg 0 - duplicate axis ref: "x"}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"x"}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'stablehlo.negate' op result - duplicate axis ref: "y"}}
  %0 = stablehlo.negate %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"y"}, {"y"}]>]>} : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{both sub-axis and full-axis are used for axis name: "y"}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y":(1)2}, {"y"}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{sub-axis next pre-size 4 doesn't divide the size of the full axis 2: "x":(1)4}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x":(1)4}, {}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

// Dynamic shapes: rhino-opt's static-shape check, before any pass.
sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{dynamic shapes are not supported: %arg0 : tensor<?x16xf32>}}
func.func @main(%arg0: tensor<?x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<?x16xf32> {
  return %arg0 : tensor<?x16xf32>
}

// -----

// A call that rhino-inline has not inlined: the pass names the op and the fix.
sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x16xf32> {
  // expected-error @+1 {{rhino-propagate: %0 (func.call) calls a function; run rhino-inline first}}
  %0 = func.call @f(%arg0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
func.func private @f(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}
