"""Frontend: JAX functions and StableHLO files -> global StableHLO text; sdy annotation.

JAX functions are lowered with `keep_unused=True` so that @main's argument i is leaf i
of the flattened arguments, always; each argument gets a `rhino.arg_path` attribute
(e.g. "[0]['w']") so plans, manifests and error messages can name it. Example
arguments may be `jax.ShapeDtypeStruct`, so huge models lower without memory.
Files may be MLIR text, MLIR bytecode or a StableHLO portable artifact.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import ir as I
from .errors import RhinoError, ShardingError
from .sharding import Mesh, TensorSharding, meshes_in, parse_sharding


@dataclass
class LowerInfo:
    arg_paths: list[str]                  # pytree path of every @main argument
    arg_types: list[str]                  # e.g. "tensor<4x8xf32>"
    result_paths: list[str]
    in_tree: Any = None                   # jax PyTreeDefs, to unflatten values again
    out_tree: Any = None
    name: str = "main"
    extra: dict = field(default_factory=dict)


def lower(fn, *args, donate_argnums=(), **kwargs) -> tuple[str, LowerInfo]:
    """Lower a JAX function for example args (arrays or ShapeDtypeStruct) to StableHLO.

    `donate_argnums` (as jax.jit's) marks the leaves of those positional arguments with
    `tf.aliasing_output = <result index>`: `rhino train` carries them from step to step."""
    import jax

    flat, in_tree = jax.tree_util.tree_flatten_with_path((args, kwargs))
    arg_paths = [_path(p) for p, _ in flat]
    lowered = jax.jit(fn, keep_unused=True, donate_argnums=donate_argnums).lower(*args, **kwargs)
    text = lowered.as_text()
    out_info = lowered.out_info
    out_flat, out_tree = jax.tree_util.tree_flatten_with_path(out_info)
    res_paths = [jax.tree_util.keystr(p) or "result" for p, _ in out_flat]
    ctx = I.new_context()
    mod = I.parse_module(text, ctx, filename=getattr(fn, "__name__", "<fn>"))
    with ctx:
        main = I.main_func(mod)
        nargs = len(I.ir.FunctionType(I.ir.TypeAttr(main.attributes["function_type"]).value).inputs)
        if nargs != len(arg_paths):        # tokens or effects would break arg numbering
            raise RhinoError(f"lowered @main has {nargs} arguments but the function has "
                             f"{len(arg_paths)} array leaves; effects are not supported")
        _set_arg_attrs(main, {i: {"rhino.arg_path": I.ir.StringAttr.get(p)}
                              for i, p in enumerate(arg_paths)})
        types = [str(t) for t in I.ir.FunctionType(
            I.ir.TypeAttr(main.attributes["function_type"]).value).inputs]
    info = LowerInfo(arg_paths, types, res_paths, in_tree, out_tree,
                     getattr(fn, "__name__", "fn"))
    return str(mod), info


def _path(p) -> str:
    import jax
    # p[0] picks args or kwargs of the (args, kwargs) pair: "[0]['w']" / "['lr']"
    return jax.tree_util.keystr(tuple(p[1:]))


def load(source: str | bytes | os.PathLike, filename: str | None = None) -> str:
    """MLIR text, bytecode (.mlirbc) or a StableHLO portable artifact -> MLIR text."""
    if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith(("module", "func", "#", "//")) \
            and os.path.exists(source):
        filename = filename or str(source)
        with open(source, "rb") as f:
            source = f.read()
    ctx = I.new_context()
    mod = I.parse_module(source, ctx, filename=filename or "<input>")
    return str(mod)


# ----------------------------------------------------------------------------- annotation

def _sharding(s, mesh: Mesh, rank: int, what: str) -> TensorSharding:
    if s is None:
        return TensorSharding.replicated_of(mesh.name, rank)
    if isinstance(s, str):
        s = parse_sharding(s if "@" in s else f"#sdy.sharding<@{mesh.name}, {s}>")
    elif isinstance(s, (list, tuple)):
        s = from_spec(mesh, s)
    if s.mesh != mesh.name:
        raise ShardingError(f"{what}: sharding names mesh @{s.mesh} but the mesh is @{mesh.name}")
    return s


def from_spec(mesh: Mesh, spec: Sequence) -> TensorSharding:
    """PartitionSpec-like per-dimension spec: (None, "x", ("x", "y")) -> TensorSharding."""
    from .sharding import AxisRef
    dims = []
    for d in spec:
        names = () if d is None else (d,) if isinstance(d, str) else tuple(d)
        dims.append(tuple(a if isinstance(a, AxisRef) else AxisRef(a) for a in names))
    return TensorSharding(mesh.name, tuple(dims))


def _set_arg_attrs(fn, updates: dict[int, dict], key: str = "arg_attrs") -> None:
    ft = I.ir.FunctionType(I.ir.TypeAttr(fn.attributes["function_type"]).value)
    n = len(ft.inputs if key == "arg_attrs" else ft.results)
    old = I.ir.ArrayAttr(fn.attributes[key]) if key in fn.attributes else None
    dicts = []
    for i in range(n):
        entries = {na.name: na.attr for na in I.ir.DictAttr(old[i])} if old is not None else {}
        entries.update(updates.get(i, {}))
        dicts.append(I.ir.DictAttr.get(entries))
    fn.attributes[key] = I.ir.ArrayAttr.get(dicts)


def annotate(text: str, mesh: Mesh, arg_shardings: Sequence | dict,
             result_shardings: Sequence | dict | None = None) -> str:
    """Add `sdy.mesh` and `sdy.sharding` attributes on @main's arguments (and results).

    Shardings are TensorSharding, sdy text (`[{"x"}, {}]` or a full `#sdy.sharding<...>`),
    a PartitionSpec-like tuple (`("x", None)`), or None (replicated; no attribute written).
    A sequence covers arguments in order; a dict maps argument index -> sharding."""
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    with ctx:
        existing = meshes_in(str(mod))
        if mesh.name in existing and existing[mesh.name] != mesh:
            raise ShardingError(f"module already has a different mesh @{mesh.name}")
        if mesh.name not in existing:
            op = I.ir.Operation.parse(f"sdy.mesh @{mesh.name} = {mesh.to_text()}")
            I.ir.InsertionPoint.at_block_begin(mod.body).insert(op)
        main = I.main_func(mod)
        ft = I.ir.FunctionType(I.ir.TypeAttr(main.attributes["function_type"]).value)
        for key, shs, types in (("arg_attrs", arg_shardings, ft.inputs),
                                ("res_attrs", result_shardings, ft.results)):
            if shs is None:
                continue
            items = shs.items() if isinstance(shs, dict) else enumerate(shs)
            upd = {}
            for i, s in items:
                what = f"@main {'argument' if key == 'arg_attrs' else 'result'} {i}"
                if i >= len(types):
                    raise ShardingError(f"{what}: @main has only {len(types)}")
                shape = I.shape_of(types[i])
                sh = _sharding(s, mesh, len(shape), what)
                sh.validate(mesh, shape, what)
                if s is not None:
                    upd[i] = {"sdy.sharding": I.ir.Attribute.parse(sh.to_text())}
            _set_arg_attrs(main, upd, key)
    return str(mod)
