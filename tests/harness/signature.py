"""@main's signature as plain data: types, dtypes, sdy shardings, global types, meshes.

The harness needs this to slice inputs and crop outputs without trusting the
program under test for anything but its declared interface.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from rhino_mlir import ir as I
from rhino_mlir.sharding import Mesh, TensorSharding, meshes_in, parse_sharding

_DTYPES = {
    "f64": np.float64, "f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16,
    "i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
    "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32, "ui64": np.uint64,
}
_MLIR_OF = {np.dtype(v): k for k, v in _DTYPES.items()}


def np_dtype(elem: str) -> np.dtype:
    if elem not in _DTYPES:
        raise ValueError(f"element type '{elem}' has no numpy equivalent here")
    return np.dtype(_DTYPES[elem])


def mlir_elem(dtype) -> str:
    return _MLIR_OF[np.dtype(dtype)]


def tensor_text(shape, dtype) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + mlir_elem(dtype) + ">"


_TENSOR = re.compile(r"tensor<((?:\d+x)*)([a-z0-9]+)>")


def parse_tensor(text: str) -> tuple[list[int], np.dtype]:
    m = _TENSOR.search(text)
    if not m:
        raise ValueError(f"not a static tensor type: {text}")
    return [int(d) for d in m.group(1).split("x") if d], np_dtype(m.group(2))


@dataclass
class Value:
    type: str                       # local (as declared) type, e.g. tensor<4x8xf32>
    shape: list[int]
    dtype: np.dtype
    sharding: TensorSharding | None
    global_shape: list[int] | None  # from rhino.global_type, when present


@dataclass
class Signature:
    meshes: dict[str, Mesh]
    args: list[Value]
    results: list[Value]

    def mesh(self) -> Mesh:
        if len(self.meshes) != 1:
            raise ValueError(f"expected one sdy.mesh, found {len(self.meshes)}")
        return next(iter(self.meshes.values()))


def _values(types, attrs) -> list[Value]:
    out = []
    for i, t in enumerate(types):
        d = I.ir.DictAttr(attrs[i]) if attrs is not None else None
        sh = parse_sharding(str(d["sdy.sharding"])) if d and "sdy.sharding" in d else None
        gs = parse_tensor(str(d["rhino.global_type"]))[0] if d and "rhino.global_type" in d else None
        shape, dtype = parse_tensor(str(t))
        out.append(Value(str(t), shape, dtype, sh, gs))
    return out


def signature(text: str) -> Signature:
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    with ctx:
        f = I.main_func(mod)
        ft = I.ir.FunctionType(I.ir.TypeAttr(f.attributes["function_type"]).value)
        get = lambda k: f.attributes[k] if k in f.attributes else None  # noqa: E731
        return Signature(meshes_in(str(mod)), _values(ft.inputs, get("arg_attrs")),
                         _values(ft.results, get("res_attrs")))
