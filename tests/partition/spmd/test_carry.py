"""partition/spmd/carry.py: which while carries are accumulators that may stay partial, and
the layout such a carry keeps for a given contribution."""
from rhino_mlir import ir as I
from rhino_mlir.partition.spmd.carry import accumulators, carry_layout
from rhino_mlir.partition.spmd.strategy import Layout
from rhino_mlir.sharding import AxisRef, TensorSharding

# carries: 1 sums %r from 0 (an accumulator); 2 sums from 1 (not the identity); 3 is also
# read by another body op; 4 is read by the condition; 5 keeps a max from -inf (an
# accumulator); 6 multiplies by itself
LOOP = """
func.func @main(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %z = stablehlo.constant dense<0.0> : tensor<4xf32>
  %o = stablehlo.constant dense<1.0> : tensor<4xf32>
  %n = stablehlo.constant dense<0xFF800000> : tensor<4xf32>
  %0:7 = stablehlo.while(%i = %c0, %a = %z, %b = %o, %c = %z, %d = %z, %e = %n, %f = %o) : tensor<i32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      %s = stablehlo.slice %d [0:1] : (tensor<4xf32>) -> tensor<1xf32>
      stablehlo.return %p : tensor<i1>
    } do {
      %r = stablehlo.sine %x : tensor<4xf32>
      %a2 = stablehlo.add %a, %r : tensor<4xf32>
      %b2 = stablehlo.add %r, %b : tensor<4xf32>
      %c2 = stablehlo.add %c, %r : tensor<4xf32>
      %c3 = stablehlo.multiply %c2, %c : tensor<4xf32>
      %d2 = stablehlo.add %d, %r : tensor<4xf32>
      %e2 = stablehlo.maximum %r, %e : tensor<4xf32>
      %f2 = stablehlo.multiply %f, %f : tensor<4xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %a2, %b2, %c3, %d2, %e2, %f2 : tensor<i32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
    }
  return %0#1, %0#2, %0#3, %0#4, %0#5, %0#6 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
"""


def test_accumulator_carries():
    ctx = I.new_context()
    mod = I.parse_module(LOOP, ctx)
    loop = next(op for op in I.walk_ops(I.main_func(mod)) if op.name == "stablehlo.while")
    accs = accumulators(loop)
    assert sorted(accs) == [1, 5]
    assert (accs[1].kind, accs[1].other) == ("add", 1)
    assert (accs[5].kind, accs[5].other) == ("max", 0)


def test_carry_layout_follows_a_partial_contribution():
    rep = TensorSharding.replicated_of("m", 1)
    x = AxisRef("x")
    assert carry_layout(Layout(rep, (x,), "add"), "add") == Layout(rep, (x,), "add")
    assert carry_layout(Layout(rep, (x,), "max"), "add") is None       # another combiner
    assert carry_layout(Layout(rep), "add") is None                    # already complete


# a sum over "x"-sharded columns, accumulated in a loop and returned sharded over "x" (a
# ZeRO-2 gradient shard): the carry is kept partial and whole (8 floats), not the planned shard
ZERO2 = """
sdy.mesh @mesh = <["x"=4]>
func.func @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) -> (tensor<8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}]>}) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %z = stablehlo.constant dense<0.0> : tensor<8xf32>
  %0:2 = stablehlo.while(%i = %c0, %acc = %z) : tensor<i32>, tensor<8xf32>
    cond {
      %c3 = stablehlo.constant dense<3> : tensor<i32>
      %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %c = stablehlo.constant dense<0.0> : tensor<f32>
      %r = stablehlo.reduce(%arg0 init: %c) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
      %a = stablehlo.add %acc, %r : tensor<8xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i2, %a : tensor<i32>, tensor<8xf32>
    }
  return %0#1 : tensor<8xf32>
}
"""


def test_memory_counts_a_whole_carry_kept_partial():
    from rhino_mlir.analysis import rules
    from rhino_mlir.analysis.liveness import liveness
    from rhino_mlir.analysis.memory import shardings_from_ir
    from rhino_mlir.partition.spmd.memory import reshards
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    ctx = I.new_context()
    mod = I.parse_module(ZERO2, ctx)
    run_pipeline_str(mod, "builtin.module(rhino-propagate)", PassContext(ctx))
    with ctx:
        rules.populate(mod)
        lv = liveness(mod)
        sh, mesh = shardings_from_ir(mod, lv)
        starts, ends, nbytes = reshards(lv, sh, mesh)
    carry = lv.keys.index(next(k for k in lv.keys if k[0] == "carry" and k[2] == 1))
    # 8 floats whole minus the planned shard of 2, over the carry's whole interval
    rows = {(int(s), int(e), int(b)) for s, e, b in zip(starts, ends, nbytes)}
    assert (int(lv.start[carry]), int(lv.end[carry]), 24) in rows
