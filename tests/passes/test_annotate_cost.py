"""rhino-annotate-cost: every op annotated; matmul numbers agree with XLA's own count."""
import jax
import jax.numpy as jnp

from rhino_mlir import ir as I
from rhino_mlir.analysis import cost
from rhino_mlir.passes import PassContext
from rhino_mlir.passes.pass_pipeline import run_pipeline_str


def annotate(text: str):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    run_pipeline_str(m, "rhino-inline,rhino-annotate-cost", pctx)
    return m, pctx


def test_matmul_matches_xla_cost_analysis():
    x, w = jnp.ones((8, 16)), jnp.ones((16, 32))
    lowered = jax.jit(lambda a, b: a @ b).lower(x, w)
    xla = lowered.compile().cost_analysis()
    m, _ = annotate(lowered.as_text())
    (dot,) = [op for op in I.walk_ops(m.operation) if op.name == "stablehlo.dot_general"]
    assert dot.attributes["rhino.flops"].value == xla["flops"] == 2 * 8 * 16 * 32
    assert dot.attributes["rhino.bytes"].value == xla["bytes accessed"]


def test_every_op_annotated_and_totals_add_up():
    def mlp(x, w1, w2):
        return jax.nn.relu(x @ w1) @ w2

    B, D, H = 4, 8, 32
    text = jax.jit(mlp).lower(jnp.ones((B, D)), jnp.ones((D, H)), jnp.ones((H, D))).as_text()
    m, pctx = annotate(text)
    ops = [op for op in I.walk_ops(I.main_func(m).operation) if op.name != "func.return"]
    assert ops and all("rhino.flops" in op.attributes and "rhino.bytes" in op.attributes
                       for op in ops)
    flops = sum(op.attributes["rhino.flops"].value for op in ops)
    # two matmuls + one max per hidden element; constants/broadcasts are free
    assert flops == 2 * B * D * H * 2 + B * H
    assert f"{flops} flops in total" in pctx.remarks[-1]


def test_huge_counts_fall_back_to_f64():
    # 2 * (2^21)^3 = 2^64 flops does not fit an i64 (types only: nothing is allocated)
    t = "tensor<2097152x2097152xf32>"
    text = f"""func.func @main(%a: {t}, %b: {t}) -> {t} {{
      %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : ({t}, {t}) -> {t}
      return %0 : {t}
    }}"""
    m, _ = annotate(text)
    dot = next(op for op in I.walk_ops(m.operation) if op.name == "stablehlo.dot_general")
    assert cost.op_flops(dot) == 2 ** 64
    assert isinstance(dot.attributes["rhino.flops"], I.ir.FloatAttr)
    assert dot.attributes["rhino.flops"].value == 2.0 ** 64
    assert isinstance(dot.attributes["rhino.bytes"], I.ir.IntegerAttr)
