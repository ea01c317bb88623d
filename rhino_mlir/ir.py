"""The only module that imports jaxlib's MLIR bindings.

Everything else reaches MLIR through the names re-exported here, so a jax/jaxlib
upgrade is checked in one place. IR crosses to IREE as text (different native libs).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterable, Sequence

import jaxlib

from .errors import ParseError, PassError, RhinoError

_TESTED = "0.10"
if not jaxlib.__version__.startswith(_TESTED + "."):
    raise RhinoError(
        f"rhino_mlir needs jaxlib {_TESTED}.*, found {jaxlib.__version__}; "
        f"pip install 'jaxlib=={_TESTED}.*' 'jax=={_TESTED}.*'")

from jaxlib.mlir import ir, passmanager  # noqa: E402
from jaxlib.mlir.dialects import chlo, func, mhlo, sdy, stablehlo  # noqa: E402
from jaxlib.mlir._mlir_libs import _jax_mlir_ext  # noqa: E402

__all__ = ["ir", "passmanager", "func", "stablehlo", "sdy", "chlo", "mhlo",
           "new_context", "parse_module", "print_module", "run_pipeline"]

_stablehlo_passes_registered = False


def new_context() -> ir.Context:
    """A context with every dialect JAX emits (func, stablehlo, chlo, sdy, mhlo, ...)."""
    global _stablehlo_passes_registered
    ctx = ir.Context()
    reg = ir.DialectRegistry()
    _jax_mlir_ext.register_dialects(reg)
    ctx.append_dialect_registry(reg)
    stablehlo.register_dialect(ctx)
    sdy.register_dialect(ctx)
    chlo.register_dialect(ctx)
    mhlo.register_mhlo_dialect(ctx)
    ctx.load_all_available_dialects()
    if not _stablehlo_passes_registered:
        stablehlo.register_stablehlo_passes()
        _stablehlo_passes_registered = True
    return ctx


_LOC = re.compile(r'loc\("(?P<file>[^"]*)":(?P<line>\d+):(?P<col>\d+)\)')


def _diag_line(e: ir.MLIRError, filename: str) -> str:
    diags = list(e.error_diagnostics)
    if not diags:
        return str(e).splitlines()[0]
    d = diags[0]
    m = _LOC.search(str(d.location))
    where = f"{filename}:{m['line']}:{m['col']}" if m else filename
    return f"{where}: {d.message.strip()}"


def parse_module(src: str | bytes, ctx: ir.Context, filename: str = "<input>") -> ir.Module:
    """Parse MLIR text, bytecode or a StableHLO portable artifact."""
    with ctx:
        if isinstance(src, bytes) and not src.startswith(b"ML\xefR"):
            src = src.decode("utf-8", errors="replace")
        if isinstance(src, bytes) and b"StableHLO_v" in src[:64]:
            try:
                src = stablehlo.deserialize_portable_artifact(ctx, src)
            except Exception as e:  # pragma: no cover - depends on artifact
                raise ParseError(f"{filename}: cannot read StableHLO portable artifact: {e}")
            return src if isinstance(src, ir.Module) else ir.Module.parse(str(src))
        try:
            return ir.Module.parse(src)
        except ir.MLIRError as e:
            raise ParseError(_diag_line(e, filename)) from None


def print_module(module: ir.Module, generic: bool = False) -> str:
    if generic:
        return module.operation.get_asm(print_generic_op_form=True, enable_debug_info=False)
    return str(module)


def run_pipeline(module: ir.Module, pipeline: str, who: str = "mlir") -> None:
    """Run an upstream textual pipeline (e.g. 'builtin.module(canonicalize)') in place."""
    ctx = module.context
    with ctx:
        try:
            pm = passmanager.PassManager.parse(pipeline)
        except (ValueError, ir.MLIRError) as e:
            raise PassError(f"{who}: bad pipeline '{pipeline}': {str(e).splitlines()[0]}") from None
        try:
            pm.run(module.operation)
        except ir.MLIRError as e:
            raise PassError(f"{who}: {_diag_line(e, '<ir>')}") from None


# ----------------------------------------------------------------------------- types

def isa(obj, cls) -> bool:
    """Whether an attribute/type can be viewed as `cls` (the bindings dropped `isinstance`)."""
    if isinstance(obj, cls):
        return True
    try:
        cls(obj)
        return True
    except (ValueError, TypeError):
        return False


def tensor_type(t: ir.Type) -> ir.RankedTensorType:
    return ir.RankedTensorType(t)


def is_tensor(t: ir.Type) -> bool:
    # LLVM 23 bindings downcast types on access; the old `X.isinstance` is gone
    return isinstance(t, ir.RankedTensorType)


def shape_of(t: ir.Type) -> list[int]:
    return list(ir.RankedTensorType(t).shape)


def is_static(t: ir.Type) -> bool:
    if isinstance(t, ir.RankedTensorType):
        return t.has_static_shape
    return not isinstance(t, ir.ShapedType)  # unranked tensors are dynamic


def make_tensor(shape: Sequence[int], elem: ir.Type) -> ir.RankedTensorType:
    return ir.RankedTensorType.get(list(shape), elem)


def elem_of(t: ir.Type) -> ir.Type:
    return ir.RankedTensorType(t).element_type


def elem_bytes(elem: ir.Type) -> int:
    w = getattr(elem, "width", None)           # integer and float types (downcast on access):
    if w is not None:                           # 10x faster than printing the type
        return max(1, w // 8)
    s = str(elem)
    if s == "i1":
        return 1
    m = re.match(r"[a-z]*?(\d+)", s.replace("complex<", ""))
    bits = int(m.group(1)) if m else 32
    if s.startswith("complex<"):
        bits *= 2
    return max(1, bits // 8)


def nbytes(t: ir.Type) -> int:
    if not isinstance(t, ir.RankedTensorType):
        return 0
    rt = ir.RankedTensorType(t)
    n = 1
    for d in rt.shape:
        n *= d
    return n * elem_bytes(rt.element_type)


# ----------------------------------------------------------------------------- IR walking

def funcs(module: ir.Module) -> list:
    return [op for op in module.body.operations if op.operation.name == "func.func"]


def main_func(module: ir.Module):
    fs = funcs(module)
    for f in fs:
        if f.attributes["sym_name"].value == "main":
            return f
    publics = [f for f in fs if "sym_visibility" not in f.attributes
               or f.attributes["sym_visibility"].value == "public"]
    if len(publics) == 1:
        return publics[0]
    raise RhinoError("module has no public @main function; name the entry function main")


def block_ops(block: ir.Block) -> list:
    return [op.operation for op in block.operations]


def walk_ops(root) -> Iterable:
    """Pre-order walk of every nested op (regions included), in program order."""
    for region in root.regions:
        for block in region.blocks:
            for op in block.operations:
                op = op.operation
                yield op
                yield from walk_ops(op)


def captured_values(op) -> list:
    """Values defined above `op` that its regions read (a loop or branch over outside
    values), each once, in first-use order."""
    if not len(op.regions):
        return []
    inner = set()
    for o in [op] + list(walk_ops(op)):
        inner.update(o.results)
        for region in o.regions:
            for b in region.blocks:
                inner.update(b.arguments)
    return list(dict.fromkeys(x for o in walk_ops(op) for x in o.operands if x not in inner))


def attr(text: str) -> ir.Attribute:
    return ir.Attribute.parse(text)


def i64_array(vals: Sequence[int]) -> ir.Attribute:
    return ir.DenseI64ArrayAttr.get(list(vals))


def str_attr(s: str) -> ir.Attribute:
    return ir.StringAttr.get(s)


def value_name(v: ir.Value) -> str:
    """'%arg0' / '%3' style name of a value, for error messages."""
    try:
        return v.get_name()
    except Exception:  # pragma: no cover
        return "%?"


# ----------------------------------------------------------------------------- driver helpers

@contextlib.contextmanager
def _captured_fd2(sink: list[str]):
    """Collect what native code writes straight to fd 2 (LLVM's option parser does)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", errors="replace"))


def pipeline_parse_error(pipeline: str, ctx: ir.Context) -> str | None:
    """None if MLIR's PassManager accepts `pipeline`, else its error as one line."""
    native: list[str] = []
    with ctx:
        try:
            with _captured_fd2(native):
                passmanager.PassManager.parse(pipeline)
            return None
        except (ValueError, ir.MLIRError) as e:
            text = " ".join(native) + " " + str(e)
    lines = [ln.strip(" :") for ln in text.splitlines() if ln.strip(" :")]
    # keep the lines that say something ("error: ...", "no such option ..."), not the echo
    said = [ln for ln in lines if "error" in ln or "option" in ln or "invalid" in ln]
    return "; ".join(said or lines[:1]) or "rejected by the mlir pass parser"


_LINE = re.compile(r'loc\("[^"]*":(\d+):\d+\)')


def op_line(op) -> int | None:
    """Source line of `op` (first file:line:col found in its location), if any."""
    m = _LINE.search(str(op.location))
    return int(m.group(1)) if m else None


def first_dynamic_value(module: ir.Module):
    """(value name, type, op) of the first value whose type is not static, else None.

    Looks at function signatures, block arguments and op results, in program order.
    """
    for f in funcs(module):
        ftype = f.attributes["function_type"].value
        body = f.regions[0].blocks
        for i, t in enumerate(ftype.inputs):
            if not is_static(t):
                name = value_name(body[0].arguments[i]) if len(body) else \
                    f"argument #{i} of @{f.attributes['sym_name'].value}"
                return name, t, f.operation
        for i, t in enumerate(ftype.results):
            if not is_static(t):
                return f"result #{i} of @{f.attributes['sym_name'].value}", t, f.operation
        for op in walk_ops(f.operation):
            for r in op.regions:
                for b in r.blocks:
                    for a in b.arguments:
                        if not is_static(a.type):
                            return value_name(a), a.type, op
            for v in op.results:
                if not is_static(v.type):
                    return value_name(v), v.type, op
    return None


def verify_error(module: ir.Module) -> str | None:
    """None if the module verifies, else the first diagnostic as one line."""
    with module.context:
        try:
            return None if module.operation.verify() else "verification failed"
        except ir.MLIRError as e:
            return _diag_line(e, "<ir>")


def splat_value(v: ir.Value):
    """The scalar a value is a splat constant of (python number), or None."""
    owner = v.owner
    if not isinstance(owner, ir.Operation) and hasattr(owner, "operation"):
        owner = owner.operation
    if not isinstance(owner, ir.Operation) or owner.name != "stablehlo.constant":
        return None
    a = owner.attributes["value"]
    if not isa(a, ir.DenseElementsAttr) or not ir.DenseElementsAttr(a).is_splat:
        return None
    s = ir.DenseElementsAttr(a).get_splat_value()
    if isa(s, ir.FloatAttr):
        return ir.FloatAttr(s).value
    if isa(s, ir.BoolAttr):
        return ir.BoolAttr(s).value
    if isa(s, ir.IntegerAttr):
        return ir.IntegerAttr(s).value
    return None


def splat_attr(a: ir.Attribute, t: ir.Type) -> ir.Attribute:
    """The splat dense attribute `a` reshaped to tensor type `t`."""
    d = ir.DenseElementsAttr(a)
    return ir.DenseElementsAttr.get_splat(ir.RankedTensorType(t), d.get_splat_value())
