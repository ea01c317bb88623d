// RUN: rhino-opt %s --pass-pipeline='builtin.module(rhino-strip-sharding)' | filecheck %s

// The mesh, every sdy/mhlo sharding attribute and every rhino.* attribute go;
// other argument/result attributes stay.
// CHECK-NOT: sdy.mesh
// CHECK-LABEL: func.func public @main
// CHECK-SAME: (%arg0: tensor<2x8xf32>, %arg1: tensor<8x8xf32>)
// CHECK-SAME: -> (tensor<2x8xf32> {jax.result_info = "result"})
// CHECK-NOT: sdy
// CHECK-NOT: rhino.
// CHECK-NOT: mhlo.sharding
// CHECK: %[[D:.*]] = stablehlo.dot_general %arg0, %arg1
// CHECK-NEXT: %[[R:.*]] = "stablehlo.all_reduce"(%[[D]])
// CHECK: return %[[R]]
sdy.mesh @mesh = <["x"=2, "y"=2]>
func.func public @main(%arg0: tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>, rhino.global_type = tensor<4x8xf32>, mhlo.sharding = "{devices=[2,1,2]<=[4] last_tile_dim_replicate}"}, %arg1: tensor<8x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"y"}]>}) -> (tensor<2x8xf32> {jax.result_info = "result", sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {"y"}]>}) {
  %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>, sdy.sharding_rule = #sdy.op_sharding_rule<([i, k], [k, j])->([i, j]) {i=4, j=8, k=8} reduction={k}>, rhino.flops = 3 : i64} : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %1 = sdy.sharding_constraint %0 <@mesh, [{"x"}, {}]> : tensor<2x8xf32>
  %2 = "stablehlo.all_reduce"(%1) ({
    ^bb0(%a: tensor<f32>, %b: tensor<f32>):
      %s = stablehlo.add %a, %b : tensor<f32>
      stablehlo.return %s : tensor<f32>
  }) {replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %3 = sdy.reshard %2 <@mesh, [{"x"}, {}]> : tensor<2x8xf32>
  return %3 : tensor<2x8xf32>
}

// Shardy's import forms: sdy.constant becomes stablehlo.constant, data-flow edges go.
// CHECK-LABEL: func.func public @imported
// CHECK-NEXT: %[[C:.*]] = stablehlo.constant dense<1.000000e+00> : tensor<4xf32>
// CHECK-NEXT: %[[A:.*]] = stablehlo.add %arg0, %[[C]]
// CHECK-NEXT: return %[[A]]
func.func public @imported(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = sdy.constant dense<1.0> : tensor<4xf32>
  %1 = sdy.propagation_barrier %0 allowed_direction=NONE : tensor<4xf32>
  %2 = stablehlo.add %arg0, %1 : tensor<4xf32>
  return %2 : tensor<4xf32>
}
