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
from ..sharding import Mesh, TensorSharding, meshes_in, parse_sharding, parse_sharding_per_value, per_value_text


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
    if "mhlo.sharding" in d:
        from ..mhlo_sharding import parse_mhlo_sharding   # read-only support
        return parse_mhlo_sharding(ir.StringAttr(d["mhlo.sharding"]).value)[1]
    return None


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


def check(sh: TensorSharding, mesh: Mesh | None, shape, what: str, who: str, known: set[str]) -> None:
    """Validate one annotation against the mesh and the tensor it is on."""
    if sh.mesh not in known or mesh is None:
        raise ShardingError(f"{who}: {what} names unknown mesh @{sh.mesh}"
                            f" (meshes: {', '.join('@' + k for k in sorted(known)) or 'none'})")
    sh.validate(mesh, shape, f"{who}: {what}")
