"""rhino-spmd-partition on the cases the product corpus (tests/product) found wrong.

Each program runs partitioned on XLA CPU devices (input padding NaN) against the
single-device result (tests/harness/xla_oracle.py).
"""
import numpy as np
import pytest

from harness.xla_oracle import check_local
from harness.partitioner_cases import partition

RNG = np.random.default_rng(10)


def _sh(axes):
    return "[" + ", ".join("{" + (f'"{a}"' if a else "") + "}" for a in axes) + "]"


# ------------------------------------------------------------------ pad

PAD = """
sdy.mesh @mesh = <MESH>
func.func @main(%arg0: tensor<INxf32> {sdy.sharding = #sdy.sharding<@mesh, SH>}) -> (tensor<OUTxf32> {sdy.sharding = #sdy.sharding<@mesh, RSH>}) {
  %c = stablehlo.constant dense<1.5> : tensor<f32>
  %0 = stablehlo.pad %arg0, %c, low = [LO], high = [HI], interior = [IT] : (tensor<INxf32>, tensor<f32>) -> tensor<OUTxf32>
  return %0 : tensor<OUTxf32>
}"""


def pad_program(shape, lo, hi, it, sharded, mesh='["x"=2]', result=None):
    out = [n + a + b + max(n - 1, 0) * c for n, a, b, c in zip(shape, lo, hi, it)]
    t = PAD
    for k, v in (("MESH", mesh), ("RSH", _sh(result or sharded)), ("SH", _sh(sharded)),
                 ("IN", "x".join(map(str, shape))), ("OUT", "x".join(map(str, out))),
                 ("LO", ", ".join(map(str, lo))), ("HI", ", ".join(map(str, hi))),
                 ("IT", ", ".join(map(str, it)))):
        t = t.replace(k, v)
    return t


@pytest.mark.parametrize("shape,lo,hi,it,sharded", [
    ([6], [-1], [1], [0], ["x"]),            # the corpus bug: same size, every element moves
    ([6], [2], [-2], [0], ["x"]),            # s1-095-pad: negative high padding
    ([5], [1], [-1], [0], ["x"]),            # uneven shards (3 + 2)
    ([7], [-2], [-1], [1], ["x"]),           # interior padding with negative edges
    ([4, 6], [0, -1], [0, 1], [0, 0], ["x", "y"]),
])
def test_pad_that_moves_a_sharded_dim_matches_one_device(shape, lo, hi, it, sharded):
    mesh = '["x"=2, "y"=2]' if len(shape) == 2 else '["x"=2]'
    text = pad_program(shape, lo, hi, it, [a if a else None for a in sharded], mesh)
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    check_local(partition(text), text, [x])


def test_pad_of_an_unmoved_dim_stays_local():
    # only the replicated dim is padded: the sharded rows pass through without a collective
    text = pad_program([8, 3], [0, -1], [0, 2], [0, 1], ["x", None], '["x"=4]')
    local = partition(text)
    assert "stablehlo.all_gather" not in local
    check_local(local, text, [RNG.standard_normal((8, 3)).astype(np.float32)])


# ------------------------------------------------------------------ reshape

RESHAPE = """
sdy.mesh @mesh = <MESH>
func.func @main(%arg0: tensor<INxTY> {sdy.sharding = #sdy.sharding<@mesh, SH>}) -> (tensor<OUTxTY> {sdy.sharding = #sdy.sharding<@mesh, RSH>}) {
  %0 = stablehlo.reshape %arg0 : (tensor<INxTY>) -> tensor<OUTxTY>
  return %0 : tensor<OUTxTY>
}"""


@pytest.mark.parametrize("ins,outs,sh,rsh,mesh,ty", [
    ([2, 7], [7, 2], [None, None], [None, "x"], '["x"=2]', "f32"),     # the repro
    ([2, 7], [7, 2], ["x", None], [None, "x"], '["x"=2]', "i1"),       # 133-reshape-n2
    ([2, 7], [7, 2], ["x", None], [None, "x"], '["x"=4]', "i1"),       # 133-reshape-n4
    ([2, 3, 8], [8, 2, 3], [None, None, None], ["y", "x", None], '["x"=2, "y"=2]', "i32"),
    ([6, 4], [4, 6], [None, "x"], ["x", None], '["x"=2]', "f32"),
])
def test_reshape_without_a_shared_factor_matches_one_device(ins, outs, sh, rsh, mesh, ty):
    t = RESHAPE
    for k, v in (("MESH", mesh), ("RSH", _sh(rsh)), ("SH", _sh(sh)), ("IN", "x".join(map(str, ins))),
                 ("OUT", "x".join(map(str, outs))), ("TY", ty)):
        t = t.replace(k, v)
    x = RNG.integers(0, 2, ins).astype(bool) if ty == "i1" else \
        np.arange(np.prod(ins)).reshape(ins).astype(np.float32 if ty == "f32" else np.int32)
    outs_ = check_local(partition(t), t, [x])
    assert outs_[0].shape == tuple(outs)
