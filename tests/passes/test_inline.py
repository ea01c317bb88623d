"""rhino-inline on JAX programs: one flat @main, no chlo, same numbers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.xla_oracle import run_global
from rhino_mlir import ir as I
from rhino_mlir.errors import PassError
from rhino_mlir.passes import PassContext
from rhino_mlir.passes.pass_pipeline import run_pipeline_str


def layer(x, w):
    h = jax.nn.relu(x @ w)                              # call @relu
    mu = h.mean(-1, keepdims=True)
    var = jnp.square(h - mu).mean(-1, keepdims=True)    # chlo.square
    return jax.nn.gelu((h - mu) / jnp.sqrt(var + 1e-5), approximate=False)


def scanned(x, ws):
    y, _ = jax.lax.scan(lambda c, w: (layer(c, w), None), x, ws)   # call inside while
    return y, jax.nn.relu(y).sum()


def lowered(fn, *args) -> str:
    return jax.jit(fn, keep_unused=True).lower(*args).as_text()


def inline(text: str, pipeline: str = "rhino-inline"):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    run_pipeline_str(m, pipeline, pctx)
    return m, pctx


def test_scan_of_layers_is_flat_and_equal():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8), dtype=np.float32)
    ws = rng.standard_normal((3, 8, 8), dtype=np.float32)
    text = lowered(scanned, x, ws)
    assert "call @" in text and "chlo." in text          # the premise of the pass
    m, pctx = inline(text)
    out = str(m)
    assert len(I.funcs(m)) == 1
    assert "call" not in out and "chlo." not in out
    assert "stablehlo.while" in out
    assert any("inlined" in r for r in pctx.remarks)
    ref = scanned(x, ws)
    got = run_global(out, [x, ws])
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, np.asarray(r), rtol=1e-5, atol=1e-5)


def test_helper_called_twice_gets_two_copies():
    def f(x):
        return jax.nn.relu(x) + jax.nn.relu(2 * x)
    m, _ = inline(lowered(f, jnp.ones((4,))))
    ops = [op.name for op in I.walk_ops(m.operation)]
    assert ops.count("stablehlo.maximum") == 2 and "func.call" not in ops


def test_keep_chlo_option():
    m, _ = inline(lowered(lambda x: jnp.square(jax.nn.relu(x)), jnp.ones((4,))),
                  "rhino-inline{legalize-chlo=false}")
    assert "chlo.square" in str(m) and "call" not in str(m)


def test_recursion_is_an_error_naming_the_call():
    text = """
    func.func @main(%a: tensor<f32>) -> tensor<f32> {
      %0 = call @f(%a) : (tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }
    func.func private @f(%a: tensor<f32>) -> tensor<f32> {
      %0 = call @g(%a) : (tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }
    func.func private @g(%a: tensor<f32>) -> tensor<f32> {
      %0 = call @f(%a) : (tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }"""
    with pytest.raises(PassError) as e:
        inline(text)
    assert str(e.value).startswith("rhino-inline: @f is recursive (called from @g)")
    assert I.op_line(e.value.op) == 11


@pytest.mark.parametrize("decl", [False, True])      # without: symbol-dce; with: the scan
def test_only_inlined_functions_are_erased(decl):
    # @f and @g are inlined into @main; @unused (private, never called from @main) still
    # calls @g, so @g stays, and @unused keeps its call and its private visibility
    text = """
    func.func @main(%a: tensor<f32>) -> tensor<f32> {
      %0 = call @f(%a) : (tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }
    func.func private @f(%a: tensor<f32>) -> tensor<f32> {
      %0 = call @g(%a) : (tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }
    func.func private @g(%a: tensor<f32>) -> tensor<f32> {
      %0 = stablehlo.negate %a : tensor<f32>
      return %0 : tensor<f32>
    }
    func.func private @unused(%a: tensor<f32>) -> tensor<f32> {
      %0 = call @g(%a) : (tensor<f32>) -> tensor<f32>
      return %0 : tensor<f32>
    }
    """ + ("func.func private @ext(tensor<f32>) -> tensor<f32>" if decl else "")
    m, _ = inline(text)
    fs = {f.attributes["sym_name"].value: f for f in I.funcs(m)}
    assert sorted(fs) == ["ext"] * decl + ["g", "main", "unused"]
    main = [op.name for op in I.walk_ops(fs["main"].operation)]
    assert "func.call" not in main and "stablehlo.negate" in main
    assert [op.name for op in I.walk_ops(fs["unused"].operation)][0] == "func.call"
    assert all(fs[n].attributes["sym_visibility"].value == "private" for n in fs if n != "main")
