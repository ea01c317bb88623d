"""Reading and writing sharding annotations in the IR (sdy form; mhlo.sharding read too).

Where shardings live:
  function arguments/results  {sdy.sharding = #sdy.sharding<@mesh, [...]>}
  op results                  sdy.sharding = #sdy.sharding_per_value<[...]>
  sdy.sharding_constraint     its `sharding` attribute
"""
from __future__ import annotations

from .. import ir as I
from ..errors import ShardingError
from ..ir import ir
from .model import Mesh, TensorSharding, meshes_in, parse_sharding, parse_sharding_per_value, per_value_text


def module_mesh(module, who: str) -> Mesh | None:
    """The module's one mesh (None if it has none)."""
    meshes = {}
    for op in module.body.operations:
        if op.operation.name == "sdy.mesh":
            text = str(op.operation)
            meshes.update(meshes_in(text))
    if not meshes:
        return None
    distinct = {(m.axes, m.device_ids) for m in meshes.values()}
    if len(distinct) > 1:
        raise ShardingError(f"{who}: the module has {len(meshes)} different meshes "
                            f"({', '.join('@' + n for n in meshes)}); use one mesh per program")
    return next(iter(sorted(meshes.items())))[1]


def mesh_names(module) -> set[str]:
    return {op.operation.attributes["sym_name"].value for op in module.body.operations
            if op.operation.name == "sdy.mesh"}


def _dict_attr(f, key: str, i: int):
    if key not in f.attributes:
        return None
    arr = ir.ArrayAttr(f.attributes[key])
    if i >= len(arr):
        return None
    return ir.DictAttr(arr[i])


def arg_sharding(f, i: int) -> TensorSharding | None:
    d = _dict_attr(f, "arg_attrs", i)
    return _from_dict(d)


def result_sharding(f, i: int) -> TensorSharding | None:
    d = _dict_attr(f, "res_attrs", i)
    return _from_dict(d)


def _from_dict(d) -> TensorSharding | None:
    if d is None:
        return None
    if "sdy.sharding" in d:
        return parse_sharding(str(d["sdy.sharding"]))
    return None


def import_mhlo(module, who: str) -> None:
    """Rewrite `mhlo.sharding` on @main's arguments/results as sdy (one common mesh)."""
    from .mhlo import parse_mhlo_sharding
    f = I.main_func(module)
    found = {}
    for key in ("arg_attrs", "res_attrs"):
        if key not in f.attributes:
            continue
        for i, d in enumerate(ir.ArrayAttr(f.attributes[key])):
            d = ir.DictAttr(d)
            if "mhlo.sharding" in d and "sdy.sharding" not in d:
                found[(key, i)] = ir.StringAttr(d["mhlo.sharding"]).value
    if not found:
        return
    if mesh_names(module):
        raise ShardingError(f"{who}: @main mixes mhlo.sharding with sdy.mesh; write every sharding in sdy form")
    ranks = {("arg_attrs", i): len(I.shape_of(a.type)) for i, a in enumerate(f.regions[0].blocks[0].arguments)}
    ret = I.block_ops(f.regions[0].blocks[0])[-1]
    ranks.update({("res_attrs", i): len(I.shape_of(v.type)) for i, v in enumerate(ret.operands)})
    parsed = {k: parse_mhlo_sharding(t, ranks.get(k)) for k, t in found.items()}
    meshes = {(m.axes, m.device_ids) for m, _ in parsed.values() if m.axes}
    if len(meshes) > 1:
        raise ShardingError(f"{who}: the mhlo.sharding annotations use {len(meshes)} different device "
                            f"layouts; write them as sdy shardings on one mesh")
    if not meshes:
        return                                      # all replicated: nothing to partition
    axes, ids = meshes.pop()
    mesh = Mesh("mesh", axes, ids)
    op = ir.Operation.parse(f"sdy.mesh @mesh = {mesh.to_text()}")
    ir.InsertionPoint.at_block_begin(module.body).insert(op)
    for (key, i), (_, sh) in parsed.items():
        upd = {i: {"sdy.sharding": I.attr(sh.to_text()), "mhlo.sharding": None}}
        (update_arg_attrs if key == "arg_attrs" else update_result_attrs)(f, upd)


def op_shardings(op) -> list[TensorSharding] | None:
    if op.name == "sdy.sharding_constraint":
        return [parse_sharding(str(op.attributes["sharding"]))]
    if "sdy.sharding" in op.attributes:
        return parse_sharding_per_value(str(op.attributes["sdy.sharding"]))
    return None


def set_op_shardings(op, shardings: list[TensorSharding]) -> None:
    op.attributes["sdy.sharding"] = I.attr(per_value_text(shardings))


def _update_dicts(f, key: str, n: int, updates: dict[int, dict]) -> None:
    """Set entries of the per-argument (or per-result) attribute dicts in one rewrite."""
    arr = ir.ArrayAttr(f.attributes[key]) if key in f.attributes else None
    entries = []
    for j in range(n):
        d = ir.DictAttr(arr[j]) if arr is not None and j < len(arr) else None
        if j not in updates and d is not None:
            entries.append(d)
            continue
        items = {d[k].name: d[k].attr for k in range(len(d))} if d is not None else {}
        for name, value in updates.get(j, {}).items():
            if value is None:
                items.pop(name, None)
            else:
                items[name] = value
        entries.append(ir.DictAttr.get(items))
    f.attributes[key] = ir.ArrayAttr.get(entries)


def update_arg_attrs(f, updates: dict[int, dict]) -> None:
    """updates: argument index -> {attribute name: value (None removes)}."""
    _update_dicts(f, "arg_attrs", len(f.regions[0].blocks[0].arguments), updates)


def update_result_attrs(f, updates: dict[int, dict]) -> None:
    n = len(ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value).results)
    _update_dicts(f, "res_attrs", n, updates)


def set_arg_attr(f, i: int, name: str, value) -> None:
    update_arg_attrs(f, {i: {name: value}})


def set_result_attr(f, i: int, name: str, value) -> None:
    update_result_attrs(f, {i: {name: value}})


def check(sh: TensorSharding, mesh: Mesh | None, shape, what, who: str, known: set[str]) -> None:
    """Validate one annotation against the mesh and the tensor it is on. `what` names the
    value: a string, or a callable made only on error (value names print the module)."""
    name = what if isinstance(what, str) else None
    if sh.mesh not in known or mesh is None:
        raise ShardingError(f"{who}: {name or what()} names unknown mesh @{sh.mesh}"
                            f" (meshes: {', '.join('@' + k for k in sorted(known)) or 'none'})")
    try:
        sh.validate(mesh, shape, f"{who}: {name or '?'}")
    except ShardingError as e:
        if name is not None:
            raise
        raise ShardingError(str(e).replace(f"{who}: ?", f"{who}: {what()}", 1)) from None
