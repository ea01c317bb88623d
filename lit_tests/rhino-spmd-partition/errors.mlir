// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)'
// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-spmd-partition)'

// Errors without a source line (module-level) cannot be matched by
// --verify-diagnostics: they are checked as the one-line CLI message instead.
// RUN: not rhino-opt %S/Inputs/no-mesh.mlir --pass-pipeline='builtin.module(rhino-propagate,rhino-spmd-partition)' 2>&1 | filecheck %s --check-prefix=NOMESH
// NOMESH: rhino-opt: rhino-spmd-partition: the module has no sdy.mesh; add `sdy.mesh @mesh = <["x"=N]>` and shardings (or run rhino-auto-shard) before partitioning
// NOMESH-NOT: Traceback
// RUN: not rhino-opt %S/Inputs/two-meshes.mlir --pass-pipeline='builtin.module(rhino-spmd-partition)' 2>&1 | filecheck %s --check-prefix=MESHES
// MESHES: rhino-opt: rhino-spmd-partition: the module has 2 different meshes (@mesh, @mesh2); use one mesh per program

// Invalid sdy annotations fail when the file is parsed (Shardy's verifier).

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
// expected-error @+1 {{'func.func' op arg 0 - sharding doesn't match tensor rank: 3 != 2}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}, {}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{'func.func' op arg 0 - duplicate axis ref: "y"}}
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"y", "x"}, {"y"}]>}) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'stablehlo.negate' op result shardings don't match number of values: 2 shardings vs 1 values}}
  %0 = stablehlo.negate %arg0 {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>, <@mesh, [{"x"}, {}]>]>} : tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
// expected-error @+1 {{dynamic shapes are not supported: %arg0 : tensor<8x?xf32>}}
func.func @main(%arg0: tensor<8x?xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x?xf32> {
  return %arg0 : tensor<8x?xf32>
}

// -----

sdy.mesh @mesh = <["x"=2, "y"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) -> tensor<8x16xf32> {
  // expected-error @+1 {{(func.call) calls a function; run rhino-inline first}}
  %0 = func.call @f(%arg0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
func.func private @f(%arg0: tensor<8x16xf32>) -> tensor<8x16xf32> {
  return %arg0 : tensor<8x16xf32>
}
