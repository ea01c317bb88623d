"""Donated arguments of @main: which result reuses which argument's buffer.

An argument marked `tf.aliasing_output = r` is result r's buffer; one marked
`jax.buffer_donor` is paired, as XLA pairs it, with the first result of its type not
already taken. analysis/liveness.py counts such a pair once, as the argument.
"""
from __future__ import annotations

from .. import ir as I


def donations(f, results: list[int], values: list) -> dict[int, int]:
    """result number -> argument index, for @main `f` whose results are the buffers
    `results` (indices into `values`, the ir.Value of every buffer; arguments first)."""
    if "arg_attrs" not in f.attributes:
        return {}
    out: dict[int, int] = {}
    donors = []
    arr = I.ir.ArrayAttr(f.attributes["arg_attrs"])
    for i in range(len(arr)):
        d = I.ir.DictAttr(arr[i])
        if "tf.aliasing_output" in d:
            out[I.ir.IntegerAttr(d["tf.aliasing_output"]).value] = i
        elif "jax.buffer_donor" in d:
            donors.append(i)
    for i in donors:                   # same type: the first result not yet paired
        for r, v in enumerate(results):
            if r not in out and str(values[v].type) == str(values[i].type):
                out[r] = i
                break
    return out
