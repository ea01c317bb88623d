"""rhino-inline: inline every call to a private function, then legalize chlo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ir as I
from ..analysis import dataflow
from ..errors import PassError
from .base import ModulePass, PassContext, register


def _sym(f) -> str:
    return f.attributes["sym_name"].value


def _is_private(f) -> bool:
    return ("sym_visibility" in f.attributes
            and f.attributes["sym_visibility"].value == "private")


def _has_body(f) -> bool:
    return len(f.regions[0].blocks) > 0


def _callee(call) -> str:
    return call.attributes["callee"].value


def _calls(root, seen: set) -> list:
    """The call ops nested in `root`, in program order; every op name goes into `seen`.
    One walk in C++ (a Python generator over 100k ops costs twice as much)."""
    out = []

    def visit(op):
        name = op.name
        seen.add(name)
        if name in dataflow.CALL_OPS:
            out.append(op)
        return I.ir.WalkResult.ADVANCE
    root.walk(visit, I.ir.WalkOrder.PRE_ORDER)
    return out


def _check_acyclic(calls: dict) -> None:
    """Recursion cannot be inlined: fail on the first call that closes a cycle
    (`calls`: private function -> the calls in its body)."""
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done

    def visit(name: str) -> None:
        state[name] = 1
        for call in calls[name]:
            c = _callee(call)
            if c not in calls:
                continue
            if state.get(c) == 1:
                raise PassError(f"rhino-inline: @{c} is recursive (called from @{name}); "
                                f"recursion cannot be inlined, rewrite it as a loop", op=call)
            if c not in state:
                visit(c)
        state[name] = 2

    for name in calls:
        if name not in state:
            visit(name)


def _inline_call(call, callee) -> None:
    """Splice a fresh copy of `callee`'s body in place of `call`.

    Cloning the whole function gives a body whose ops refer to the clone's own block
    arguments; those are rewired to the call's operands, the ops moved before the call,
    and the call's results replaced by the returned values. Ops nested in regions
    (while/case bodies) come along with their parent op.
    """
    clone = callee.operation.clone(ip=I.ir.InsertionPoint(callee.operation))
    block = clone.regions[0].blocks[0]
    for arg, v in zip(block.arguments, call.operands):
        arg.replace_all_uses_with(v)
    ops = I.block_ops(block)
    ret = ops[-1]
    for op in ops[:-1]:
        op.move_before(call)
    for r, v in zip(call.results, ret.operands):
        r.replace_all_uses_with(v)
    call.erase()
    clone.erase()


def _referenced_symbols(root) -> set[str]:
    """Every flat symbol named by an attribute of an op nested in `root`."""
    names: set[str] = set()

    def scan(a) -> None:
        if isinstance(a, I.ir.FlatSymbolRefAttr):
            names.add(a.value)
        elif isinstance(a, I.ir.ArrayAttr):
            for x in a:
                scan(x)
        elif isinstance(a, I.ir.DictAttr):
            for na in a:
                scan(na.attr)

    for op in I.walk_ops(root):
        for key in op.attributes:
            scan(op.attributes[key])
    return names


def _erase_dead(module, candidates: dict) -> None:
    """Erase the candidate functions that nothing live refers to (even transitively).

    Upstream `symbol-dce` finds the references in C++ (this Python scan of every attribute
    of a 100k-op @main costs 0.15 s); the other private functions are public while it runs,
    so only candidates can go. A declaration cannot be public, nor is anything but
    functions expected at the top: with those the scan runs instead."""
    if not candidates:
        return
    top = [op.operation for op in module.body.operations]
    if all(op.name == "func.func" and (len(op.regions[0].blocks) or _sym(op) in candidates) for op in top):
        shown = [op for op in top if _sym(op) not in candidates and _is_private(op)]
        for op in shown:
            op.attributes["sym_visibility"] = I.ir.StringAttr.get("public", op.context)
        try:
            I.run_pipeline(module, "builtin.module(symbol-dce)", who="rhino-inline")
        finally:
            for op in shown:
                op.attributes["sym_visibility"] = I.ir.StringAttr.get("private", op.context)
        return
    live: set[str] = set()
    for f in I.funcs(module):
        if _sym(f) not in candidates:
            live |= _referenced_symbols(f.operation)
    todo = [n for n in live if n in candidates]
    while todo:
        for n in _referenced_symbols(candidates[todo.pop()]):
            if n in candidates and n not in live:
                live.add(n)
                todo.append(n)
    for name in sorted(set(candidates) - live):
        candidates[name].erase()


@register
@dataclass(frozen=True)
class Inline(ModulePass):
    """Inline private functions into their callers, then legalize chlo to StableHLO.

    JAX wraps helpers such as `jax.nn.relu` and scan bodies in private functions
    (`call @relu`, `call @closed_call`), and MLIR's upstream `inline` pass leaves them
    alone. Every later rhino pass assumes one flat @main where each op has a factor
    rule, so this pass runs first: it inlines calls to private functions with a body
    (recursively, including calls inside while/case regions; each callee is made flat
    before it is copied), erases the inlined functions once nothing references them, and
    rewrites `chlo` ops (square, erfc, top_k, ...), which Shardy has no rules for, with
    `chlo-legalize-to-stablehlo` (when there are any).
    Private declarations without a body (runtime imports) are kept.
    """
    name: ClassVar[str] = "rhino-inline"
    legalize_chlo: bool = True

    def apply(self, pctx: PassContext, module) -> None:
        fs = {_sym(f): f for f in I.funcs(module)}
        bodies = {n: f.operation for n, f in fs.items() if _is_private(f) and _has_body(f)}
        names: set[str] = set()                  # every op name of the module
        calls = {n: _calls(b, names) for n, b in bodies.items()}
        _check_acyclic(calls)
        sites = [c for f in fs.values() if not _is_private(f) for c in _calls(f.operation, names)
                 if _callee(c) in bodies]
        # callees first (post-order of the call graph, acyclic): each is flat before it is
        # copied, so one walk of the public functions finds every call to inline
        order: list[str] = []

        def flatten(name: str) -> None:
            if name in order:
                return
            for c in calls[name]:
                if _callee(c) in bodies:
                    flatten(_callee(c))
            order.append(name)
        for c in sites:
            flatten(_callee(c))
        count = 0
        for call in [c for n in order for c in calls[n] if _callee(c) in bodies] + sites:
            _inline_call(call, bodies[_callee(call)])
            count += 1
        _erase_dead(module, {n: bodies[n] for n in order})
        if count:
            pctx.remark(f"rhino-inline: inlined {count} calls of {len(order)} functions")
        if self.legalize_chlo and any(n.startswith("chlo.") for n in names):
            I.run_pipeline(module, "builtin.module(func.func(chlo-legalize-to-stablehlo))",
                           who=self.name)
