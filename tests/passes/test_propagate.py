"""rhino-propagate: what it writes, read back with partition.annotations.

Forward and backward through pointwise ops and dot_general; the conflict order of the
module docstring (user-annotated, then more shards, then earlier operand); closed
annotations never change and open (`?`) ones grow; while loops keep the carry's
sharding inside the body; need_replication factors stop propagation; determinism.
"""
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from rhino_mlir import annotate, lower
from rhino_mlir import ir as I
from rhino_mlir.sharding import annotations as A
from rhino_mlir.passes import REGISTRY, PassContext
from rhino_mlir.sharding import Mesh

MESH = 'sdy.mesh @mesh = <["x"=2, "y"=4]>'
X, Y, XY = '"x"', '"y"', '"x", "y"'


def propagate(text):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    with ctx:
        REGISTRY["rhino-propagate"]().apply(PassContext(ctx), m)
    return ctx, m


def dims(s) -> str:
    """'[{"x"}, {}]' of a TensorSharding (mesh name dropped)."""
    return s.to_text().removeprefix("#sdy.sharding<@mesh, ").removesuffix(">")


def spec(*ds) -> str:
    return "[" + ", ".join("{" + d + "}" for d in ds) + "]"


def arg(i, s):
    return "" if s is None else f" {{sdy.sharding = #sdy.sharding<@mesh, {s}>}}"


def program(body, args, result="tensor<8x16xf32>", res_sharding=None):
    """@main with `args` = [(type, sharding or None)]; returns %r."""
    params = ", ".join(f"%a{i}: {t}{arg(i, s)}" for i, (t, s) in enumerate(args))
    res = result + (arg(0, res_sharding) if res_sharding else "")
    return f"{MESH}\nfunc.func @main({params}) -> ({res}) {{\n{body}\n  return %r : {result}\n}}"


def read(m):
    """(argument shardings, {op name: [shardings of each op of that name]}, result shardings)."""
    f = I.main_func(m)
    args = [dims(A.arg_sharding(f, i)) for i in range(len(f.regions[0].blocks[0].arguments))]
    ops = {}
    for op in I.walk_ops(f):
        shs = A.op_shardings(op)
        if shs is not None:
            ops.setdefault(op.name, []).append([dims(s) for s in shs])
    nres = len(I.block_ops(f.regions[0].blocks[0])[-1].operands)
    return args, ops, [dims(A.result_sharding(f, i)) for i in range(nres)]


T = "tensor<8x16xf32>"
ADD = "  %r = stablehlo.add %a0, %a1 : tensor<8x16xf32>"


# ----------------------------------------------------------------------------- directions

def test_forward_through_elementwise_chain():
    body = """  %0 = stablehlo.add %a0, %a1 : tensor<8x16xf32>
  %1 = stablehlo.exponential %0 : tensor<8x16xf32>
  %r = stablehlo.negate %1 : tensor<8x16xf32>"""
    _, m = propagate(program(body, [(T, spec(X, Y)), (T, None)]))
    args, ops, res = read(m)
    assert args == [spec(X, Y), spec(X, Y)]                   # the free argument follows
    for name in ("stablehlo.add", "stablehlo.exponential", "stablehlo.negate"):
        assert ops[name] == [[spec(X, Y)]]
    assert res == [spec(X, Y)]


def test_backward_from_result_through_elementwise():
    body = "  %0 = stablehlo.tanh %a0 : tensor<8x16xf32>\n  %r = stablehlo.abs %0 : tensor<8x16xf32>"
    _, m = propagate(program(body, [(T, None)], res_sharding=spec("", Y)))
    args, ops, res = read(m)
    assert args == [spec("", Y)]
    assert ops["stablehlo.tanh"] == [[spec("", Y)]]
    assert res == [spec("", Y)]


DOT = "  %r = stablehlo.dot_general %a0, %a1, contracting_dims = [1] x [0] : " \
      "(tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>"


def test_forward_through_dot():
    # (8,16)[x, -] @ (16,4)[-, y] -> (8,4)[x, y]; the contraction factor stays unsharded
    _, m = propagate(program(DOT, [(T, spec(X, "")), ("tensor<16x4xf32>", spec("", Y))],
                             result="tensor<8x4xf32>"))
    _, ops, res = read(m)
    assert ops["stablehlo.dot_general"] == [[spec(X, Y)]]
    assert res == [spec(X, Y)]


def test_backward_through_dot_to_both_operands():
    _, m = propagate(program(DOT, [(T, None), ("tensor<16x4xf32>", None)],
                             result="tensor<8x4xf32>", res_sharding=spec(Y, X)))
    args, _, _ = read(m)
    assert args == [spec(Y, ""), spec("", X)]                 # i -> lhs dim 0, j -> rhs dim 1


def test_contracting_sharding_reaches_the_other_operand():
    _, m = propagate(program(DOT, [(T, spec("", X)), ("tensor<16x4xf32>", None)],
                             result="tensor<8x4xf32>"))
    args, ops, _ = read(m)
    assert args[1] == spec(X, "")                             # k shared by both operands
    assert ops["stablehlo.dot_general"] == [[spec("", "")]]   # a reduction factor: not in the result


# ----------------------------------------------------------------------------- conflicts

def test_conflict_user_annotated_beats_more_shards():
    # %a0 closed on x (2 shards), %a1 open on y (4 shards): the closed annotation wins
    _, m = propagate(program(ADD, [(T, spec(X, "")), (T, spec(Y + ", ?", "?"))]))
    args, ops, _ = read(m)
    assert ops["stablehlo.add"] == [[spec(X, "")]]
    assert args == [spec(X, ""), spec(Y, "")]                 # the open one keeps its own dims


@pytest.mark.parametrize("a0, a1", [(X, Y), (Y, X)])
def test_conflict_more_shards_win_in_either_order(a0, a1):
    _, m = propagate(program(ADD, [(T, spec(a0, "")), (T, spec(a1, ""))]))
    assert read(m)[1]["stablehlo.add"] == [[spec(Y, "")]]


@pytest.mark.parametrize("first, second", [('"x"', '"z"'), ('"z"', '"x"')])
def test_conflict_tie_goes_to_the_earlier_operand(first, second):
    text = program(ADD, [(T, spec(first, "")), (T, spec(second, ""))]).replace(
        MESH, 'sdy.mesh @mesh = <["x"=2, "z"=2]>')
    _, m = propagate(text)
    assert read(m)[1]["stablehlo.add"] == [[spec(first, "")]]


def test_compatible_proposals_take_the_longest():
    # [{"x"}] is a prefix of [{"x", "y"}]: no conflict, the longer one wins
    _, m = propagate(program(ADD, [(T, spec(X, "")), (T, spec(XY + ", ?", "?"))]))
    assert read(m)[1]["stablehlo.add"] == [[spec(XY, "")]]


# ----------------------------------------------------------------------------- closed / open

def test_closed_argument_shardings_never_change():
    # %a0 is explicitly replicated (closed); %a1 would push x onto it
    _, m = propagate(program(ADD, [(T, spec("", "")), (T, spec(X, Y))], res_sharding=spec(Y, X)))
    args, ops, res = read(m)
    assert args == [spec("", ""), spec(X, Y)]
    assert res == [spec(Y, X)]                                # annotated result kept too


def test_open_dims_grow():
    _, m = propagate(program(ADD, [(T, spec("?", "?")), (T, spec(X, Y))]))
    args, _, _ = read(m)
    assert args[0] == spec(X, Y)


def test_open_dim_keeps_its_axes_and_grows_only_by_extension():
    # %a0 open with x on dim 0; %a1 brings ["x","y"] on dim 0 -> x extends to x,y
    _, m = propagate(program(ADD, [(T, spec(X + ", ?", "?")), (T, spec(XY, ""))]))
    assert read(m)[0][0] == spec(XY, "")


# ----------------------------------------------------------------------------- while loops

MESH_2x4 = Mesh("mesh", (("x", 2), ("y", 4)))


def lowered(fn, shapes, shardings):
    text, _ = lower(fn, *[np.ones(s, np.float32) for s in shapes])
    text = annotate(text, MESH_2x4, shardings)
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    with ctx:
        pctx = PassContext(ctx)
        for p in ("rhino-inline", "rhino-propagate"):
            REGISTRY[p]().apply(pctx, m)
    return ctx, m


def _body_ops(loop):
    for op in I.block_ops(loop.regions[1].blocks[0]):
        yield op
        yield from I.walk_ops(op)


def test_fori_loop_keeps_the_carry_sharding_inside_the_body():
    def f(x, w):                                              # x (8, 16), w (16, 16)
        return lax.fori_loop(0, 3, lambda i, h: jnp.tanh(h @ w), x)
    ctx, m = lowered(f, [(8, 16), (16, 16)], ['[{"x"}, {}]', '[{}, {"y"}]'])
    with ctx:
        (loop,) = [op for op in I.walk_ops(m.operation) if op.name == "stablehlo.while"]
        carry = {str(r.type): dims(s) for r, s in zip(loop.results, A.op_shardings(loop))}
        # h: x from the input, y from w; w itself is carried too and keeps its own sharding
        assert carry["tensor<8x16xf32>"] == spec(X, Y)
        assert carry["tensor<16x16xf32>"] == spec("", Y)
        tanh = [op for op in _body_ops(loop) if op.name == "stablehlo.tanh"]
        dot = [op for op in _body_ops(loop) if op.name == "stablehlo.dot_general"]
        assert tanh and dot
        assert [dims(A.op_shardings(op)[0]) for op in tanh + dot] == [spec(X, Y)] * 2
        assert read(m)[2] == [spec(X, Y)]


def test_scan_over_layers_keeps_the_carry_sharding():
    def f(ws, h):                                             # ws (3, 16, 16), h (8, 16)
        return lax.scan(lambda c, w: (jnp.tanh(c @ w), None), h, ws)[0]
    ctx, m = lowered(f, [(3, 16, 16), (8, 16)], [None, '[{"x"}, {}]'])
    with ctx:
        (loop,) = [op for op in I.walk_ops(m.operation) if op.name == "stablehlo.while"]
        body = [op for op in _body_ops(loop) if op.name in ("stablehlo.dot_general", "stablehlo.tanh")]
        assert len(body) == 2
        for op in body:
            assert dims(A.op_shardings(op)[0]) == spec(X, ""), op.name
        assert read(m)[2] == [spec(X, "")]


# ----------------------------------------------------------------------------- need_replication

SORT = """  %r = "stablehlo.sort"(%a0) ({
  ^bb0(%p: tensor<f32>, %q: tensor<f32>):
    %c = stablehlo.compare GT, %p, %q : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %c : tensor<i1>
  }) {dimension = 1 : i64} : (tensor<8x16xf32>) -> tensor<8x16xf32>"""


def test_sort_dimension_is_not_propagated_forward():
    _, m = propagate(program(SORT, [(T, spec(X, Y))]))
    _, ops, res = read(m)
    assert ops["stablehlo.sort"] == [[spec(X, "")]]           # batch dim passes, sort dim not
    assert res == [spec(X, "")]


def test_sort_dimension_is_not_propagated_backward():
    _, m = propagate(program(SORT, [(T, None)], res_sharding=spec(X, Y)))
    args, _, _ = read(m)
    assert args == [spec(X, "")]


# ----------------------------------------------------------------------------- determinism

def test_same_input_same_output_text():
    def f(x, w1, w2):
        h = jnp.tanh(x @ w1)
        return jnp.sort(h @ w2, axis=0), lax.fori_loop(0, 2, lambda i, c: c * 2.0, h)
    text, _ = lower(f, np.ones((8, 16), np.float32), np.ones((16, 32), np.float32),
                    np.ones((32, 16), np.float32))
    text = annotate(text, MESH_2x4, ['[{"x"}, {}]', '[{}, {"y"}]', None])
    outs = []
    for _ in range(2):
        ctx = I.new_context()
        m = I.parse_module(text, ctx)
        with ctx:
            pctx = PassContext(ctx)
            for p in ("rhino-inline", "rhino-propagate"):
                REGISTRY[p]().apply(pctx, m)
        outs.append(str(m))
    assert outs[0] == outs[1]
    assert "sdy.sharding_per_value" in outs[0]


def test_gpt_train_step_is_deterministic_and_spreads_the_batch_sharding():
    from rhino_mlir import zoo
    text, info = zoo.get("gpt-tiny").lower("train_step")
    data = [i for i, t in enumerate(info.arg_types) if t.endswith("xi32>")]   # tokens, targets
    assert data
    text = annotate(text, MESH_2x4, {i: '[{"x"}, {}]' for i in data})
    outs = []
    for _ in range(2):
        ctx = I.new_context()
        m = I.parse_module(text, ctx)
        with ctx:
            pctx = PassContext(ctx)
            for p in ("rhino-inline", "rhino-propagate"):
                REGISTRY[p]().apply(pctx, m)
        outs.append(str(m))
    assert outs[0] == outs[1]
    assert outs[0].count('[{"x"}') > 50                       # the batch reaches the activations
