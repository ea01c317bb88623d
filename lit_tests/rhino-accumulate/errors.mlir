// RUN: rhino-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(rhino-accumulate{microbatches=2 batch-args=0})'
// RUN: not rhino-opt %s --split-input-file --pass-pipeline='builtin.module(rhino-accumulate{microbatches=2 batch-args=0})' 2>&1 | filecheck %s
// CHECK: rhino-opt: rhino-accumulate: {{.*}}:{{[0-9]+}}: %3 (stablehlo.subtract) mixes a value reduced over the whole batch
// CHECK-NOT: Traceback

// A batch statistic (the column sum over all rows) subtracted from every row: no
// micro-batch sees the whole batch, so the op that mixes it back is named.
func.func @main(%x: tensor<8x4xf32>, %w: tensor<4x4xf32>) -> tensor<8x4xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %1 = stablehlo.reduce(%0 init: %z) applies stablehlo.add across dimensions = [0] : (tensor<8x4xf32>, tensor<f32>) -> tensor<4xf32>
  %2 = stablehlo.broadcast_in_dim %1, dims = [1] : (tensor<4xf32>) -> tensor<8x4xf32>
  // expected-error @+1 {{rhino-accumulate: %3 (stablehlo.subtract) mixes a value reduced over the whole batch (e.g. a batch-norm statistic) back into per-micro-batch values}}
  %3 = stablehlo.subtract %0, %2 : tensor<8x4xf32>
  return %3 : tensor<8x4xf32>
}

// -----

// 2 micro-batches of a batch of 5 rows: the error names the size and what would divide it.
// expected-error @+1 {{rhino-accumulate: batch size 5 does not divide into 2 micro-batches; choose one of 1, 5}}
func.func @main(%x: tensor<5x4xf32>, %w: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<5x4xf32>, tensor<4x4xf32>) -> tensor<5x4xf32>
  %1 = stablehlo.dot_general %x, %0, contracting_dims = [0] x [0] : (tensor<5x4xf32>, tensor<5x4xf32>) -> tensor<4x4xf32>
  return %1 : tensor<4x4xf32>
}

// -----

// A random number per batch row cannot be drawn per micro-batch (the rows would get
// other numbers than in the one-batch program).
func.func @main(%x: tensor<8x4xf32>, %s: tensor<2xui64>) -> tensor<4x4xf32> {
  // expected-error @+1 {{rhino-accumulate: %output_state (stablehlo.rng_bit_generator) cannot produce its result %output split along dim 0}}
  %st, %r = stablehlo.rng_bit_generator %s, algorithm = DEFAULT : (tensor<2xui64>) -> (tensor<2xui64>, tensor<8x4xui32>)
  %f = stablehlo.convert %r : (tensor<8x4xui32>) -> tensor<8x4xf32>
  %0 = stablehlo.multiply %x, %f : tensor<8x4xf32>
  %1 = stablehlo.dot_general %x, %0, contracting_dims = [0] x [0] : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  return %1 : tensor<4x4xf32>
}
