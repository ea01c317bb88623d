// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-remat{policy=full})'
// RUN: not rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-remat{policy=full})' 2>&1 | filecheck %s
// CHECK: rhino-opt: rhino-remat: {{.*}}:{{[0-9]+}}: @main has no backward pass: it returns no scalar loss
// CHECK-NOT: Traceback
// RUN: not rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-remat{policy=half})' 2>&1 | filecheck %s --check-prefix=POLICY
// POLICY: rhino-opt: rhino-remat: unknown policy 'half'; use one of none, selective, full
// RUN: not rhino-opt %S/Inputs/train_step.mlir --pass-pipeline='builtin.module(rhino-remat{policy=full groups=4})' 2>&1 | filecheck %s --check-prefix=GROUP
// GROUP: rhino-opt: rhino-remat: {{.*}}train_step.mlir:{{[0-9]+}}: no layer group 4; the program has group(s) 0

// An inference program: nothing is differentiated, so there is nothing to recompute.
// expected-error @+1 {{rhino-remat: @main has no backward pass: it returns no scalar loss computed from the batch; recomputation needs a training step}}
func.func @main(%w: tensor<4x4xf32>, %x: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %1 = stablehlo.tanh %0 : tensor<8x4xf32>
  return %1 : tensor<8x4xf32>
}

// -----

// A loss without its gradient: no forward value is read after the loss.
// expected-error @+1 {{rhino-remat: @main has no backward pass: no forward value of the loss (%2) is read after it; nothing to recompute}}
func.func @main(%w: tensor<4x4xf32>, %x: tensor<8x4xf32>) -> tensor<f32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %1 = stablehlo.tanh %0 : tensor<8x4xf32>
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %2 = stablehlo.reduce(%1 init: %z) applies stablehlo.add across dimensions = [0, 1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<f32>
  return %2 : tensor<f32>
}
