"""analysis/windows.py: window dimensions of convolution / reduce_window stay sharded only
where the local op is exact; everything else is gathered, and the numbers equal the
single-device run (XLA oracle, every device, input padding NaN).

Shardy's conv rule shares a window-size factor between input and kernel regardless of
strides, padding and dilation: before, these cases gave invalid IR ("inferred shape
'[2, 1, 4, 6]' is incompatible with return type 'tensor<2x2x4x6xf32>'") or wrong numbers.
"""
import jax
import numpy as np
import pytest

from harness.partitioner_cases import conv_program, partition
from harness.xla_oracle import check_local
from rhino_mlir.frontend import annotate, lower
from rhino_mlir.sharding import Mesh


# (devices, input size, kernel, stride, lhs dilation, rhs dilation, padding, NCHW)
CONVS = [
    (4, 7, 3, 2, 2, 2, (1, 1), True),      # strides 2, lhs and rhs dilation 2
    (4, 3, 3, 2, 2, 2, (1, 1), True),      # the same, output 2 < window 3: was invalid IR
    (8, 7, 3, 2, 2, 2, (1, 1), False),
    (4, 5, 3, 1, 1, 2, (0, 0), False),     # was invalid IR (window factor sharded)
    (4, 5, 3, 2, 1, 1, (0, 0), False),     # was invalid IR
    (4, 5, 3, 2, 1, 2, (1, 1), False),     # was silently wrong
    (8, 5, 3, 1, 1, 2, (0, 0), True),      # was silently wrong at 8 devices
    (2, 9, 2, 3, 1, 1, (2, 1), False),
    (4, 10, 3, 1, 2, 1, (1, 2), True),
    (8, 16, 4, 4, 1, 1, (0, 0), False),
]


@pytest.mark.parametrize("case", CONVS, ids=lambda c: "n{}-s{}-k{}-st{}-ld{}-rd{}-p{}{}-{}".format(
    *c[:6], *c[6], "nchw" if c[7] else "nhwc"))
def test_conv_on_uneven_spatial_shards_equals_single_device(case):
    text, args = conv_program(*case)
    check_local(partition(text), text, args)


def test_pointwise_window_stays_sharded_and_full_window_is_a_contraction():
    text, args = conv_program(4, 9, 1, 1, 1, 1, (0, 0))       # 1-wide window: no exchange
    local = partition(text)
    check_local(local, text, args)
    assert "stablehlo.all_" not in local and "tensor<2x3x4x6xf32>" in local  # 9 rows on 4: 3
    text, args = conv_program(4, 7, 7, 1, 1, 1, (0, 0))       # one window over the whole input
    local = partition(text)
    check_local(local, text, args)
    assert "stablehlo.all_reduce" in local and "stablehlo.all_gather" not in local


@pytest.mark.parametrize("how", ["base_dilation", "padding", "strided", "pointwise"])
def test_reduce_window_equals_single_device(how):
    x = np.random.default_rng(0).standard_normal((2, 7, 5)).astype(np.float32)
    win, stride, pad, base = {"base_dilation": ((1, 1, 1), (1, 1, 1), "VALID", (1, 2, 1)),
                              "padding": ((1, 1, 1), (1, 1, 1), [(0, 0), (1, 2), (0, 0)], (1, 1, 1)),
                              "strided": ((1, 3, 1), (1, 2, 1), "VALID", (1, 1, 1)),
                              "pointwise": ((1, 1, 1), (1, 1, 1), "VALID", (1, 1, 1))}[how]
    text, _ = lower(lambda x: jax.lax.reduce_window(x, 0.0, jax.lax.add, win, stride, pad, base), x)
    text = annotate(text, Mesh("mesh", (("x", 4),)), [(None, "x", None)], [(None, "x", None)])
    local = partition(text)
    check_local(local, text, [x])
    assert ("stablehlo.all_" in local) == (how != "pointwise")
