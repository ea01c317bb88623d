"""Pass pipeline strings: `builtin.module(rhino-inline,func.func(canonicalize),cse)`.

MLIR's own pipeline parser cannot see Python passes, so rhino-opt parses the text
itself. A pipeline is a comma list of elements, optionally wrapped in
`builtin.module(...)`; an element is `name`, `name{key=value key2=a,b}` or an anchor
`op-name(nested list)`. Rhino passes (the registry in `passes/`) are module passes and
run at the top level; everything else is an upstream MLIR pass, and consecutive
upstream elements are run together through MLIR's PassManager with their nesting kept
(`builtin.module(func.func(canonicalize),cse)`), so upstream passes keep their own
scheduling and diagnostics.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable, Union

from .. import ir as I
from ..errors import PassError, PipelineError, RhinoError
from . import REGISTRY, ModulePass, PassContext

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class Element:
    """One parsed pipeline element, with its source text for re-emitting upstream."""
    name: str
    options: str | None             # raw text between the braces, None if no braces
    children: tuple["Element", ...] | None  # set for anchors like func.func(...)
    text: str


@dataclass(frozen=True)
class RhinoStep:
    pass_: ModulePass

    @property
    def label(self) -> str:
        return self.pass_.name


@dataclass(frozen=True)
class UpstreamStep:
    elements: tuple[str, ...]       # element texts, run as builtin.module(e1,e2,...)

    @property
    def pipeline(self) -> str:
        return f"builtin.module({','.join(self.elements)})"

    @property
    def label(self) -> str:
        return ",".join(self.elements)


Step = Union[RhinoStep, UpstreamStep]


# ----------------------------------------------------------------------------- syntax

class _Parser:
    def __init__(self, text: str):
        self.s, self.i = text, 0

    def fail(self, what: str) -> PipelineError:
        return PipelineError(f"malformed pipeline at column {self.i + 1}: {what} "
                             f"in '{self.s}'; write e.g. 'builtin.module(rhino-inline,cse)'")

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def elements(self) -> list[Element]:
        out = [self.element()]
        while self.peek() == ",":
            self.i += 1
            out.append(self.element())
        return out

    def element(self) -> Element:
        self.skip_ws()
        start = self.i
        while self.i < len(self.s) and self.s[self.i] in _NAME_CHARS:
            self.i += 1
        name = self.s[start:self.i]
        if not name:
            raise self.fail("expected a pass name")
        options = children = None
        if self.peek() == "{":
            options = self.braced()
        if self.peek() == "(":
            self.i += 1
            children = tuple(self.elements()) if self.peek() != ")" else ()
            if self.peek() != ")":
                raise self.fail("expected ')'")
            self.i += 1
        return Element(name, options, children, self.s[start:self.i].strip())

    def braced(self) -> str:
        """Text inside balanced braces (quotes respected); cursor ends after '}'."""
        assert self.s[self.i] == "{"
        depth, j, quote = 0, self.i, None
        while j < len(self.s):
            c = self.s[j]
            if quote:
                quote = None if c == quote else quote
            elif c in "\"'":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    inner = self.s[self.i + 1:j]
                    self.i = j + 1
                    return inner
            j += 1
        raise self.fail("unbalanced '{'")


def parse_elements(text: str) -> list[Element]:
    """Syntax only: `builtin.module(...)` unwrapped, or a bare comma list."""
    p = _Parser(text)
    if not p.peek():
        return []
    elems = p.elements()
    if p.peek():
        raise p.fail(f"unexpected '{p.peek()}'")
    if len(elems) == 1 and elems[0].name == "builtin.module" and elems[0].children is not None:
        if elems[0].options is not None:
            raise PipelineError("builtin.module takes no options; "
                                "write 'builtin.module(pass1,pass2)'")
        return list(elems[0].children)
    return elems


def split_options(raw: str) -> dict[str, str]:
    """`a=1 b=x,y c="q r" d` -> {a: '1', b: 'x,y', c: 'q r', d: ''} (MLIR's option syntax)."""
    out, i, n = {}, 0, len(raw)
    while i < n:
        while i < n and raw[i].isspace():
            i += 1
        if i >= n:
            break
        j, depth, quote = i, 0, None
        while j < n and (quote or depth or not raw[j].isspace()):
            c = raw[j]
            if quote:
                quote = None if c == quote else quote
            elif c in "\"'":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            j += 1
        token = raw[i:j]
        key, _, value = token.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not key:
            raise PipelineError(f"bad option '{token}'; write key=value")
        out[key] = value
        i = j
    return out


# ----------------------------------------------------------------------------- meaning

def _known() -> str:
    return ", ".join(sorted(REGISTRY))


def _rhino_inside(e: Element) -> str | None:
    for c in e.children or ():
        if c.children is None and c.name in REGISTRY:
            return c.name
        found = _rhino_inside(c)
        if found:
            return found
    return None


def _check_upstream(e: Element, ctx, anchors: tuple[str, ...] = ()) -> None:
    """Raise PipelineError naming the culprit if MLIR rejects element `e`."""
    def wrap(t: str) -> str:
        for a in reversed(anchors):
            t = f"{a}({t})"
        return f"builtin.module({t})"

    if I.pipeline_parse_error(wrap(e.text), ctx) is None:
        return
    if e.children is not None:
        # probe the anchor alone, with a pass that nests anywhere
        if I.pipeline_parse_error(wrap(f"{e.name}(cse)"), ctx) is not None:
            raise PipelineError(f"'{e.name}(...)' is not an op that passes can nest on; "
                                f"use func.func(...) or builtin.module(...)")
        for c in e.children:
            _check_upstream(c, ctx, anchors + (e.name,))
        raise PipelineError(f"mlir rejects '{e.text}': {I.pipeline_parse_error(wrap(e.text), ctx)}")
    if I.pipeline_parse_error(wrap(e.name), ctx) is not None:
        raise PipelineError(f"unknown pass '{e.name}'; known rhino passes: {_known()} "
                            f"(or any upstream mlir pass, e.g. canonicalize, cse)")
    why = I.pipeline_parse_error(wrap(e.text), ctx)
    raise PipelineError(f"bad option for pass '{e.name}': {why.rstrip('!')}; "
                        f"see mlir-opt --help for its options")


def parse_pipeline(text: str, ctx) -> list[Step]:
    """Pipeline text -> steps; upstream elements grouped into maximal consecutive runs."""
    steps: list[Step] = []
    group: list[str] = []
    for e in parse_elements(text):
        if e.children is None and e.name in REGISTRY:
            if group:
                steps.append(UpstreamStep(tuple(group)))
                group = []
            opts = split_options(e.options) if e.options is not None else {}
            try:
                steps.append(RhinoStep(REGISTRY[e.name].from_options(opts)))
            except PipelineError as err:
                raise PipelineError(f"{err}; see rhino-opt --list-passes") from None
            continue
        inner = _rhino_inside(e)
        if inner:
            raise PipelineError(f"rhino pass '{inner}' runs on the whole module; "
                                f"move it out of '{e.name}(...)' to the top level")
        _check_upstream(e, ctx)
        group.append(e.text)
    if group:
        steps.append(UpstreamStep(tuple(group)))
    return steps


PrintFn = Callable[[str, object], None]


def run_steps(module, steps: list[Step], pctx: PassContext,
              print_after_all: PrintFn | None = None) -> None:
    for step in steps:
        if isinstance(step, UpstreamStep):
            # one run per element when printing, so each element's IR is shown
            runs = ([UpstreamStep((t,)) for t in step.elements] if print_after_all else [step])
            for s in runs:
                I.run_pipeline(module, s.pipeline, who=s.label)
                if print_after_all:
                    print_after_all(s.label, module)
            continue
        _run_rhino(module, step.pass_, pctx)
        if print_after_all:
            print_after_all(step.label, module)


def _run_rhino(module, p: ModulePass, pctx: PassContext) -> None:
    try:
        # passes build attributes and ops: give them the context and a default location
        with module.context, I.ir.Location.unknown():
            p.apply(pctx, module)
    except RhinoError:
        raise
    except Exception as e:
        # a bug, not bad input: keep the pass name in the one-line message, and the
        # original traceback chained for --debug
        where = traceback.extract_tb(e.__traceback__)[-1]
        raise PassError(f"{p.name}: internal error: {type(e).__name__}: {e} "
                        f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}); "
                        f"rerun with --debug and report it") from e
    bad = I.verify_error(module)
    if bad:
        raise PassError(f"{p.name}: produced invalid IR: {bad}; this is a bug in the pass")


def run_pipeline_str(module, text: str, pctx: PassContext,
                     print_after_all: PrintFn | None = None) -> None:
    """Parse `text` and run it on `module` in place."""
    run_steps(module, parse_pipeline(text, pctx.ctx), pctx, print_after_all)
