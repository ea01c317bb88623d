"""partition/stages/microbatch.py: the batch factor found through the factor rules, the kind of
every op (micro / post / const), accumulations, views, and the programs it must refuse."""
import pytest
from linear_train import parse, train_step

from rhino_mlir import ir as I
from rhino_mlir.partition.stages.microbatch import MicroBatchError, analyze, batch_candidates, const_operand_views


def run(m, k, **kw):
    with m.context, I.ir.Location.unknown():
        return analyze(m, k, **kw)


def named(info, names):
    """value -> the name of the op that made it (top-level ops of @main)."""
    return {op.results[0]: n for op, n in zip(info.ops, names)}


def test_train_step_splits_the_batch_and_accumulates_gradients():
    # batch == width == 16: shapes cannot tell x's rows from the weights' rows, the rules can
    text, names = train_step(layers=3, batch=16, width=16)
    m = parse(text)
    info = run(m, 4)
    assert info.arg_views == {3: 0}                       # x (argument 3) on dim 0, no weight
    assert info.batch == 16 and info.microbatches == 4 and info.strict
    kind = dict(zip(names, info.kind))
    assert {n for n, k in kind.items() if k == "const"} == {"zero", "lr"}
    assert {n for n, k in kind.items() if k == "post"} == {f"{p}{l}" for p in "su" for l in range(3)}
    assert all(kind[n] == "micro" for n in ["h0", "h1", "h3", "sq", "loss", "dw2", "g2", "g1", "dw0"])
    name = named(info, names)
    # reductions over the batch accumulate across micro-batches (the loss, x^T dy)
    assert {name[v]: c for v, c in info.acc.items()} == {"loss": "add", "dw0": "add", "dw1": "add", "dw2": "add"}
    assert {name[v] for v, k in info.vkind.items() if k == "acc"} == {"loss", "dw0", "dw1", "dw2"}
    # activations and backpropagated gradients are per micro-batch along dim 0
    views = {name.get(v): d for v, d in info.view.items()}
    assert all(views[n] == 0 for n in ["h0", "h1", "h2", "h3", "sq", "g2", "g1"])
    assert info.shrunk([16, 16], 0) == [4, 16] and info.shrunk([16, 16], None) == [16, 16]
    # dw_l = h_l^T g: both operands are read on their batch dim 0
    i = names.index("dw1")
    assert info.operand_views[i] == [0, 0]


def test_batch_args_name_the_batch():
    text, _ = train_step()
    m = parse(text)
    assert batch_candidates(m, [3]) == [{3: 0}]
    assert run(m, 2, batch_args=[3]).arg_views == {3: 0}


def test_micro_batches_must_divide_the_batch():
    m = parse(train_step(batch=8)[0])
    with pytest.raises(MicroBatchError, match=r"batch size 8 does not divide into 3 micro-batches; "
                                              r"choose one of 1, 2, 4, 8"):
        run(m, 3)
    with pytest.raises(MicroBatchError, match="at least 1, got 0"):
        run(m, 0)


W = "tensor<16x16xf32>"
NO_BATCH = f"""func.func @main(%w: {W}) -> {W} {{
  %0 = stablehlo.dot_general %w, %w, contracting_dims = [1] x [0] : ({W}, {W}) -> {W}
  %1 = stablehlo.subtract %w, %0 : {W}
  return %1 : {W}
}}"""


def test_program_without_a_batch_is_refused():
    # w - w @ w: the only argument is state, and its two dims meet in the contraction
    m = parse(NO_BATCH)
    assert batch_candidates(m, None) == []
    with pytest.raises(MicroBatchError, match="found no batch argument to split into micro-batches; "
                                              "name it with --batch-args"):
        run(m, 2)
    info = run(m, 1)                                      # one micro-batch: nothing to split
    assert info.kind == ["const", "const"] and info.arg_views == {}


STAT = """func.func @main(%x: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %s = stablehlo.reduce(%x init: %z) applies stablehlo.add across dimensions = [0] : (tensor<8x4xf32>, tensor<f32>) -> tensor<4xf32>
  %b = stablehlo.broadcast_in_dim %s, dims = [1] : (tensor<4xf32>) -> tensor<8x4xf32>
  %y = stablehlo.subtract %x, %b : tensor<8x4xf32>
  return %y : tensor<8x4xf32>
}"""


def test_batch_statistic_fed_back_is_refused_naming_the_op():
    m = parse(STAT)                                       # x - sum over the batch (batch-norm like)
    with pytest.raises(MicroBatchError, match=r"^%2 \(stablehlo.subtract\) mixes a value reduced over the "
                                              r"whole batch .* \(use --microbatches 1\)$"):
        run(m, 2, batch_args=[0])
    info = run(m, 1, batch_args=[0])                      # one micro-batch: runs, nothing accumulates
    assert not info.strict and info.kind == ["const", "micro", "micro", "micro"] and info.acc == {}


def test_non_splat_constant_cannot_be_split_along_the_batch():
    m = parse("""func.func @main(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %c = stablehlo.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %y = stablehlo.add %x, %c : tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}""")
    with pytest.raises(MicroBatchError, match=r"\(stablehlo.constant\) cannot produce its result .* split along dim 0"):
        run(m, 2, batch_args=[0])


CONST_CHAIN = """func.func @main(%x: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %v = stablehlo.constant dense<1.5> : tensor<4xf32>
  %b = stablehlo.broadcast_in_dim %v, dims = [0] : (tensor<4xf32>) -> tensor<4x8xf32>
  %t = stablehlo.transpose %b, dims = [1, 0] : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %y = stablehlo.add %x, %t : tensor<8x4xf32>
  return %y : tensor<8x4xf32>
}"""


def test_constants_are_demanded_at_the_view_their_users_need():
    m = parse(CONST_CHAIN)
    info = run(m, 2, batch_args=[0])
    assert info.kind == ["const", "const", "const", "micro"]
    v, b, t = (op.results[0] for op in info.ops[:3])
    # t is read at its batch dim 0, which is b's dim 1 (through the transpose); v has no batch
    assert info.demand == {t: {0}, b: {1}}
    assert info.operand_views[3] == [0, 0]
    with m.context:
        assert const_operand_views(info.ops[2], 0, 0) == [1]
        assert const_operand_views(info.ops[1], 0, 1) == [None]
        assert const_operand_views(info.ops[1], 0, 0) == [0]
        assert const_operand_views(info.ops[1], 0, None) == [None]
