"""Windowed ops (convolution, reduce_window, select_and_scatter): which of their window
dimensions run exactly on local shards.

Op semantics the factor rules get wrong. Shardy's convolution rule splits an input
spatial dimension into a number-of-windows factor (permutation, shared with the output)
and a window-size factor (reduction, shared with the kernel), clipped to the input size;
it ignores strides, padding and dilations, so sharding the window factor gives a local
conv of the wrong shape or wrong numbers (input 5, kernel 3, stride 2: output 2, but the
rule's window factor j=3 spans input and kernel). Its reduce_window rule passes a
dimension through whole when the window is 1, even under base dilation or padding.
Local execution is exact in two cases only, both without halo exchange:
  pointwise    window 1, stride 1, no padding, no input dilation: output dim == input dim;
  contraction  (convolution) one window covering the whole input (kernel size == input
               size, output size 1), no padding, no dilation, no reversal: a dot product
               over that dim, its factor a plain reduction (uneven padding is masked).
Every factor of any other window dimension is refused (need_replication): the partitioner
gathers that dimension. Halo exchange would keep more of them sharded; correct first.
"""
from __future__ import annotations

import re

_DIMS = re.compile(r"\[([^\]]*)\]x\[([^\]]*)\]->\[([^\]]*)\]")


def _ints(op, key: str, n: int, default: int) -> list[int]:
    if key not in op.attributes:
        return [default] * n
    text = str(op.attributes[key])
    body = text.split(":", 1)[1] if text.startswith("array<") else text.split(" : ")[0]
    if "true" in body or "false" in body:
        vals = [1 if t == "true" else 0 for t in re.findall(r"true|false", body)]
    else:
        vals = [int(x) for x in re.findall(r"-?\d+", body)]
    return vals * n if len(vals) == 1 else vals


def _conv_dims(op):
    """(lhs, rhs, out) spatial dims of a convolution, or None if unreadable."""
    text = str(op.attributes["dimension_numbers"])
    m = _DIMS.search(text)
    if m:
        lists = [[t.strip() for t in g.split(",")] for g in m.groups()]
        n = sum(t.isdigit() for t in lists[0])
        return tuple([lst.index(str(k)) for k in range(n)] for lst in lists)
    keys = ("input_spatial_dimensions", "kernel_spatial_dimensions", "output_spatial_dimensions")
    found = [re.search(k + r"\s*=\s*\[([^\]]*)\]", text) for k in keys]
    if all(found):
        return tuple([int(x) for x in f.group(1).split(",") if x.strip()] for f in found)
    return None


def _factors(rule, tensor: int, dim: int, operand: bool = True) -> set[int]:
    ts = rule.operands if operand else rule.results
    return set(ts[tensor][dim])


def _all_factors(rule) -> set[int]:
    return set(range(rule.num_factors))


def conv_refused(op, rule, shape) -> tuple[set[int], set[int]]:
    """(factors that must not be sharded, permutation factors that may be) of a
    convolution; `shape(v)` gives a value's global shape."""
    dims = _conv_dims(op)
    if dims is None:
        return _all_factors(rule), set()
    lhs_d, rhs_d, out_d = dims
    n = len(lhs_d)
    stride, lhs_dil, rhs_dil = (_ints(op, k, n, 1) for k in ("window_strides", "lhs_dilation", "rhs_dilation"))
    pad = _ints(op, "padding", 2 * n, 0)
    rev = _ints(op, "window_reversal", n, 0)
    lhs, rhs, out = shape(op.operands[0]), shape(op.operands[1]), shape(op.results[0])
    refused, freed = set(), set()
    for k in range(n):
        size, window, windows = lhs[lhs_d[k]], rhs[rhs_d[k]], out[out_d[k]]
        on_dim = _factors(rule, 0, lhs_d[k]) | _factors(rule, 1, rhs_d[k]) | _factors(rule, 0, out_d[k], False)
        no_pad = pad[2 * k] == 0 and pad[2 * k + 1] == 0
        if window == 1 and stride[k] == 1 and no_pad and lhs_dil[k] == 1 and windows == size:
            freed |= _factors(rule, 0, lhs_d[k]) & _factors(rule, 0, out_d[k], False)
        elif not (windows == 1 and window == size and no_pad and lhs_dil[k] == 1 and rhs_dil[k] == 1
                  and not rev[k]):
            refused |= on_dim
    return refused, freed - refused


def reduce_window_refused(op, rule, shape) -> set[int]:
    """Factors of reduce_window / select_and_scatter dims whose window is not pointwise."""
    x = shape(op.operands[0])
    n = len(x)
    window = _ints(op, "window_dimensions", n, 1)
    stride = _ints(op, "window_strides", n, 1)
    base = _ints(op, "base_dilations", n, 1)
    pad = _ints(op, "padding", 2 * n, 0)
    refused = set()
    for d in range(n):
        if (window[d], stride[d], base[d], pad[2 * d], pad[2 * d + 1]) != (1, 1, 1, 0, 0):
            for t in list(rule.operands) + list(rule.results):
                if d < len(t):
                    refused |= set(t[d])
    return refused
