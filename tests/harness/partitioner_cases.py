"""Programs for the partitioner's product-path regressions (issue 10), shared by the XLA
oracle tests (tests/partition/spmd, tests/analysis, tests/passes) and the IREE-rank tests
(tests/launch/test_e2e_partitioner.py).

  index_program    table (10, 8) row-sharded (uneven on 4), indices with two batch dims
                   (3, 4); some fall outside the local shard, some outside the table
                   (-7, -1, 10, 14): scatter add / max / overwrite, a gather, and a
                   scatter addressing rows and columns (only rows sharded).
  conv_program     a convolution sharded on a spatial dim of a size the devices do not
                   divide, with strides, padding and lhs/rhs dilation.
  passthrough_program  results that are the argument itself or an identity of it, under
                   another sharding than the argument's.
"""
from __future__ import annotations

import numpy as np

# 12 indices as (3, 4): in range and unique (overwrite is then deterministic), plus four
# outside the table, which XLA skips (scatter) or clamps (gather)
ROWS = [3, -1, 7, 0, 10, 9, 5, 2, 14, 8, 1, -7]
COLS = [0, 5, 2, 6, 1, 3, -1, 4, 2, 0, 5, 1]      # columns of a (10, 6) table; 6 and -1 outside


def _body(op: str) -> str:
    if op == "set":
        return "stablehlo.return %b : tensor<f32>"
    return f"%s = stablehlo.{op} %a, %b : tensor<f32>\n    stablehlo.return %s : tensor<f32>"


def _scatter(name, op, ix, ixt, ivd) -> str:
    return f"""
  %{name} = "stablehlo.scatter"(%t, {ix}, %u) ({{
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    {_body(op)}
  }}) {{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [0],
      scatter_dims_to_operand_dims = [0], index_vector_dim = {ivd}>, unique_indices = {str(op == "set").lower()}}}
      : (tensor<10x8xf32>, {ixt}, tensor<3x4x8xf32>) -> tensor<10x8xf32>"""


def index_program(n: int, implicit: bool = False) -> tuple[str, list[np.ndarray]]:
    """(global annotated text, inputs); `implicit`: indices (3, 4) with index_vector_dim 2
    (one implicit component) instead of (3, 4, 1)."""
    ixt = "tensor<3x4xi32>" if implicit else "tensor<3x4x1xi32>"
    row = '#sdy.sharding<@mesh, [{"x"}, {}]>'
    body = "".join(_scatter(k, k, "%ix", ixt, 2) for k in ("add", "maximum", "set"))
    text = f"""sdy.mesh @mesh = <["x"={n}]>
func.func @main(%t: tensor<10x8xf32> {{sdy.sharding = {row}}}, %ix: {ixt}, %u: tensor<3x4x8xf32>,
                %m: tensor<10x6xf32> {{sdy.sharding = {row}}}, %rc: tensor<3x4x2xi32>, %v: tensor<3x4xf32>)
    -> (tensor<10x8xf32> {{sdy.sharding = {row}}}, tensor<10x8xf32> {{sdy.sharding = {row}}},
        tensor<10x8xf32> {{sdy.sharding = {row}}}, tensor<3x4x8xf32>, tensor<10x6xf32> {{sdy.sharding = {row}}}) {{
{body}
  %gather = "stablehlo.gather"(%t, %ix) {{dimension_numbers = #stablehlo.gather<offset_dims = [2],
      collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 2>, slice_sizes = array<i64: 1, 8>}}
      : (tensor<10x8xf32>, {ixt}) -> tensor<3x4x8xf32>
  %cell = "stablehlo.scatter"(%m, %rc, %v) ({{
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }}) {{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0, 1],
      scatter_dims_to_operand_dims = [0, 1], index_vector_dim = 2>}}
      : (tensor<10x6xf32>, tensor<3x4x2xi32>, tensor<3x4xf32>) -> tensor<10x6xf32>
  return %add, %maximum, %set, %gather, %cell
      : tensor<10x8xf32>, tensor<10x8xf32>, tensor<10x8xf32>, tensor<3x4x8xf32>, tensor<10x6xf32>
}}
"""
    rng = np.random.default_rng(7)
    rows = np.array(ROWS, np.int32).reshape(3, 4)
    ix = rows if implicit else rows[..., None]
    rc = np.stack([rows, np.array(COLS, np.int32).reshape(3, 4)], -1)
    return text, [rng.standard_normal((10, 8)).astype(np.float32), ix,
                  rng.standard_normal((3, 4, 8)).astype(np.float32),
                  rng.standard_normal((10, 6)).astype(np.float32), rc,
                  rng.standard_normal((3, 4)).astype(np.float32)]


def conv_program(n: int, size: int, kernel: int, stride: int, lhs_dil: int, rhs_dil: int,
                 pad: tuple[int, int], nchw: bool = False) -> tuple[str, list[np.ndarray]]:
    """x (2, size, 5, 3) NHWC (or (2, 3, size, 5) NCHW), kernel (kernel, 2, 3, 6) HWIO,
    input and output sharded on the first spatial dim over n devices."""
    from rhino_mlir.frontend import annotate, lower
    from rhino_mlir.sharding import Mesh
    import jax
    rng = np.random.default_rng(size * 100 + kernel)
    x = rng.standard_normal((2, 3, size, 5) if nchw else (2, size, 5, 3)).astype(np.float32)
    w = rng.standard_normal((kernel, 2, 3, 6)).astype(np.float32)
    dn = ("NCHW", "HWIO", "NCHW") if nchw else ("NHWC", "HWIO", "NHWC")

    def f(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride, 1), [pad, (0, 0)], (lhs_dil, 1), (rhs_dil, 1),
                                            dimension_numbers=dn)
    text, _ = lower(f, x, w)
    spec = (None, None, "x", None) if nchw else (None, "x", None, None)
    return annotate(text, Mesh("mesh", (("x", n),)), [spec, None], [spec]), [x, w]


def passthrough_program(n: int) -> tuple[str, list[np.ndarray]]:
    """x (3, 4) sharded on columns; results: x itself (unannotated, row-sharded, and
    column-sharded), x through an optimization_barrier, and x through a sharding constraint."""
    col = '#sdy.sharding<@mesh, [{}, {"x"}]>'
    row = '#sdy.sharding<@mesh, [{"x"}, {}]>'
    text = f"""sdy.mesh @mesh = <["x"={n}]>
func.func @main(%x: tensor<3x4xf32> {{sdy.sharding = {col}}})
    -> (tensor<3x4xf32>, tensor<3x4xf32> {{sdy.sharding = {row}}}, tensor<3x4xf32> {{sdy.sharding = {col}}},
        tensor<3x4xf32>, tensor<3x4xf32>) {{
  %b = stablehlo.optimization_barrier %x : tensor<3x4xf32>
  %c = sdy.sharding_constraint %x <@mesh, [{{"x"}}, {{}}]> : tensor<3x4xf32>
  return %x, %x, %x, %b, %c : tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>
}}
"""
    return text, [np.arange(12, dtype=np.float32).reshape(3, 4)]


def partition(text: str) -> str:
    """Global annotated program -> local program (rhino-inline, rhino-propagate,
    rhino-spmd-partition), as text."""
    from rhino_mlir import ir as I
    from rhino_mlir.passes import REGISTRY, PassContext
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    for p in ("rhino-inline", "rhino-propagate", "rhino-spmd-partition"):
        REGISTRY[p]().apply(pctx, m)
    return str(m)
