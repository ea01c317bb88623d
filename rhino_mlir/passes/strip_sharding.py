"""rhino-strip-sharding: remove every sharding annotation so IREE accepts the module."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..errors import PassError
from .base import ModulePass, PassContext, register

# attribute names that only describe sharding or our own bookkeeping; IREE does not
# know the sdy dialect, and nothing downstream of this pass reads the others
_DROP_PREFIXES = ("sdy.", "rhino.")
# JAX's donation marks too: IREE 3.13 honours them by writing results into the donated
# buffers, which gave wrong numbers (a donated ResNet train step off by 2.5e-4 on one device);
# the rank runtime keeps carried state itself (rhino train reads the marks from the global program)
_DROP_NAMES = frozenset({"mhlo.sharding", "mhlo.frontend_attributes", "tf.aliasing_output",
                         "jax.buffer_donor"})

# ops that forward their single operand unchanged once sharding is gone
_FORWARDING_OPS = frozenset({"sdy.sharding_constraint", "sdy.reshard",
                             "sdy.propagation_barrier", "sdy.data_flow_edge"})
# XLA's pre-Shardy spelling of a sharding constraint
_FORWARDING_CUSTOM_CALLS = frozenset({"Sharding"})


def _drop(name: str) -> bool:
    return name in _DROP_NAMES or name.startswith(_DROP_PREFIXES)


def _strip_op_attrs(op) -> None:
    for key in [k for k in op.attributes if _drop(k)]:
        del op.attributes[key]


def _strip_dict_array(op, key: str) -> None:
    """Filter the per-argument / per-result attribute dictionaries of a function."""
    if key not in op.attributes:
        return
    dicts = []
    for d in op.attributes[key]:
        dicts.append(I.ir.DictAttr.get({na.name: na.attr for na in d if not _drop(na.name)}))
    op.attributes[key] = I.ir.ArrayAttr.get(dicts)


def _forwards(op) -> bool:
    if op.name in _FORWARDING_OPS:
        return True
    return (op.name == "stablehlo.custom_call"
            and op.attributes["call_target_name"].value in _FORWARDING_CUSTOM_CALLS)


@register
@dataclass(frozen=True)
class StripSharding(ModulePass):
    """Drop sdy/mhlo sharding annotations, meshes and constraints for IREE.

    IREE's StableHLO input does not know the `sdy` dialect. After rhino-spmd-partition
    (or on a program that was never partitioned) shardings are only documentation, so
    this pass replaces `sdy.sharding_constraint` / `sdy.reshard` (and XLA's
    `custom_call @Sharding`) by their operand, erases `sdy.mesh`, and removes
    `sdy.*`, `mhlo.sharding`, `mhlo.frontend_attributes` and `rhino.*` attributes on
    ops, function arguments and results. Run it last, just before IREE compilation.
    Ops that still carry sharding semantics (`sdy.manual_computation`, Shardy's own
    collectives) are an error: partition the program first.
    """
    name: ClassVar[str] = "rhino-strip-sharding"

    def apply(self, pctx: PassContext, module) -> None:
        removed = 0
        for op in list(I.walk_ops(module.operation)):
            if _forwards(op):
                op.results[0].replace_all_uses_with(op.operands[0])
                op.erase()
                removed += 1
                continue
            if op.name == "sdy.constant":  # Shardy's import form of stablehlo.constant
                with I.ir.InsertionPoint(op), op.location:
                    new = I.ir.Operation.create(
                        "stablehlo.constant", results=[op.results[0].type],
                        attributes={"value": op.attributes["value"]})
                op.results[0].replace_all_uses_with(new.results[0])
                op.erase()
                continue
            if op.name.startswith("sdy.") and op.name != "sdy.mesh":
                raise PassError(f"{self.name}: '{op.name}' still carries sharding semantics; "
                                f"run rhino-spmd-partition before stripping", op=op)
            if (op.name == "stablehlo.custom_call" and op.attributes["call_target_name"]
                    .value in ("SPMDFullToShardShape", "SPMDShardToFullShape")):
                raise PassError(f"{self.name}: custom_call @"
                                f"{op.attributes['call_target_name'].value} is a manual "
                                f"sharding region; run rhino-spmd-partition first", op=op)
            _strip_op_attrs(op)
            if op.name == "func.func":
                _strip_dict_array(op, "arg_attrs")
                _strip_dict_array(op, "res_attrs")
        for op in I.block_ops(module.body):
            if op.name == "sdy.mesh":
                op.erase()
                removed += 1
        _strip_op_attrs(module.operation)
        if removed:
            pctx.remark(f"{self.name}: removed {removed} sharding ops")
