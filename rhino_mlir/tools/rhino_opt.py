"""rhino-opt: an mlir-opt-style driver for rhino and upstream passes.

    rhino-opt FILE|- [--pass-pipeline=PIPE] [-o OUT] [--print-ir-after-all]
              [--split-input-file] [--verify-diagnostics] [--list-passes] [--debug]

Every failure is one line on stderr, `rhino-opt: <pass or stage>: <what>; <fix>`,
and a non-zero exit; `--debug` adds the traceback.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass

from .. import ir as I
from ..errors import ParseError, PassError, PipelineError, RhinoError, UnsupportedError, one_line_warnings
from ..passes import REGISTRY, PassContext
from ..passes.pass_pipeline import Step, parse_pipeline, run_steps

SPLIT_MARKER = "// -----"
_SPLIT = re.compile(r"^// -----.*$", re.M)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other failure
        print(f"rhino-opt: usage: {message}; see rhino-opt --help", file=sys.stderr)
        sys.exit(2)


def _args(argv) -> argparse.Namespace:
    p = _Parser(prog="rhino-opt", description="Run rhino and upstream MLIR passes on a file.")
    p.add_argument("input", nargs="?", help="input .mlir file, or - for stdin")
    p.add_argument("--pass-pipeline", "-p", default="",
                   help="e.g. 'builtin.module(rhino-inline,func.func(canonicalize))'")
    p.add_argument("-o", dest="output", help="output file (default: stdout)")
    p.add_argument("--print-ir-after-all", action="store_true",
                   help="print the IR to stderr after every pass")
    p.add_argument("--list-passes", action="store_true", help="list rhino passes and exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks and remarks")
    p.add_argument("--split-input-file", action="store_true",
                   help=f"process each '{SPLIT_MARKER}'-separated chunk on its own")
    p.add_argument("--verify-diagnostics", action="store_true",
                   help="check errors against '// expected-error @+1 {{...}}' comments")
    return p.parse_args(argv)


def list_passes() -> str:
    lines = []
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        lines.append(f"{name:24s} {cls.summary()}")
        for f in cls.options():
            default = f.default if f.default is not f.default_factory else f.default_factory()
            tname = getattr(f.type, "__name__", str(f.type))
            lines.append(f"    {f.name.replace('_', '-')}: {tname} = {default!r}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- input

@dataclass
class Chunk:
    text: str       # padded with blank lines so line numbers match the whole file
    first_line: int


def split_chunks(text: str, split: bool) -> list[Chunk]:
    if not split:
        return [Chunk(text, 1)]
    chunks, start, line = [], 0, 1
    for m in _SPLIT.finditer(text):
        chunks.append(Chunk("\n" * (line - 1) + text[start:m.start()], line))
        line += text.count("\n", start, m.end())
        start = m.end()
    chunks.append(Chunk("\n" * (line - 1) + text[start:], line))
    return chunks


def check_static(module) -> None:
    found = I.first_dynamic_value(module)
    if found:
        name, typ, op = found
        err = UnsupportedError(f"dynamic shapes are not supported: {name} : {typ}; "
                               f"lower with static shapes (concrete example arguments)")
        err.op = op
        raise err


def process(text: str | bytes, filename: str, steps: list[Step], args, ctx) -> str:
    """Parse, check and transform one chunk; returns the printed module."""
    module = I.parse_module(text, ctx, filename)
    check_static(module)
    pctx = PassContext(ctx, debug=args.debug)

    def dump(label: str, m) -> None:
        print(f"// -----// IR Dump After {label} //----- //\n{m}", file=sys.stderr)

    run_steps(module, steps, pctx, dump if args.print_ir_after_all else None)
    return I.print_module(module)


# ----------------------------------------------------------------------------- diagnostics

_EXPECT = re.compile(r"//\s*expected-(error|warning|remark|note)\s*"
                     r"(?:@(above|below|[+-]\d+))?\s*\{\{(.*?)\}\}")
_MSG_LINE = re.compile(r":(\d+):\d+: ")


@dataclass
class Expected:
    line: int
    kind: str
    text: str
    seen: bool = False


def expectations(text: str) -> list[Expected]:
    lines = text.split("\n")
    plain = [i for i, ln in enumerate(lines, 1) if "expected-" not in ln]
    out = []
    for i, ln in enumerate(lines, 1):
        for m in _EXPECT.finditer(ln):
            kind, at, msg = m.groups()
            if at is None:
                target = i
            elif at == "above":  # nearest line above that is not itself a designator
                target = max((p for p in plain if p < i), default=i - 1)
            elif at == "below":
                target = min((p for p in plain if p > i), default=i + 1)
            else:
                target = i + int(at)
            out.append(Expected(target, kind, msg))
    return out


def error_line(e: RhinoError) -> int | None:
    op = getattr(e, "op", None)
    if op is not None:
        line = I.op_line(op)
        if line is not None:
            return line
    m = _MSG_LINE.search(str(e))
    return int(m.group(1)) if m else None


def verify_chunk(chunk: Chunk, filename: str, steps: list[Step], args,
                 ctx) -> tuple[str | None, list[str]]:
    """Run one chunk; returns (output or None, problems as one-line messages)."""
    expected = expectations(chunk.text)
    problems, output = [], None
    try:
        output = process(chunk.text, filename, steps, args, ctx)
    except RhinoError as e:
        line = error_line(e)
        hit = [x for x in expected if x.kind == "error" and x.line == line and x.text in str(e)]
        for x in hit:
            x.seen = True
        if not hit:
            where = f"{filename}:{line}" if line else filename
            problems.append(f"verify-diagnostics: {where}: unexpected error: {e}; "
                            f"add '// expected-error @+1 {{{{...}}}}' above the line or fix it")
    for x in expected:
        if not x.seen:
            problems.append(f"verify-diagnostics: {filename}:{x.line}: expected {x.kind} "
                            f"\"{x.text}\" was not produced; check the pass or the expectation")
    return output, problems


# ----------------------------------------------------------------------------- output

def write_atomic(path: str, data: str) -> None:
    """Temp file in the target directory, then rename: never a half-written output."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rhino-opt-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_input(path: str) -> tuple[str | bytes, str]:
    if path == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        with open(path, "rb") as f:
            return f.read(), path
    except OSError as e:
        raise RhinoError(f"input: cannot read '{path}': {e.strerror}; check the path") from None


def run(args) -> int:
    if args.list_passes:
        sys.stdout.write(list_passes())
        return 0
    if not args.input:
        raise RhinoError("input: no input file; pass a .mlir file or - for stdin")
    data, filename = read_input(args.input)
    args.filename = filename
    ctx = I.new_context()
    steps = parse_pipeline(args.pass_pipeline, ctx)  # a bad pipeline fails before any input
    if isinstance(data, bytes) and (args.split_input_file or args.verify_diagnostics
                                     or not data.startswith(b"ML\xefR")):
        data = data.decode("utf-8", errors="replace")
    chunks = split_chunks(data, args.split_input_file) if isinstance(data, str) \
        else [Chunk(data, 1)]
    outputs, problems = [], []
    for chunk in chunks:
        if args.verify_diagnostics:
            out, probs = verify_chunk(chunk, filename, steps, args, ctx)
            problems += probs
        else:
            out = process(chunk.text, filename, steps, args, ctx)
        if out is not None:
            outputs.append(out)
    if problems:
        for p in problems:
            print(f"rhino-opt: {p}", file=sys.stderr)
        return 1
    text = f"\n{SPLIT_MARKER}\n".join(o.rstrip("\n") for o in outputs) + "\n"
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def one_line(e: RhinoError, filename: str | None) -> str:
    """`<pass or stage>: [file:line: ]<what>; <fix>` for one error."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if filename:  # upstream diagnostics name the buffer '<ir>'; say which file it was
        msg = msg.replace("<ir>:", f"{filename}:")
    if isinstance(e, ParseError):
        return f"parse: {msg}; fix the input at that position"
    if isinstance(e, PipelineError):
        return f"pipeline: {msg}"
    line = error_line(e) if isinstance(e, PassError) and e.op is not None else None
    who, sep, what = msg.partition(": ")
    if line and filename and sep and not _MSG_LINE.search(msg):
        return f"{who}: {filename}:{line}: {what}"  # where the offending op is
    return msg


def main(argv=None) -> int:
    one_line_warnings()
    args = _args(argv)
    try:
        return run(args)
    except RhinoError as e:
        if args.debug:
            traceback.print_exc()
        print(f"rhino-opt: {one_line(e, getattr(args, 'filename', None))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rhino-opt: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"rhino-opt: internal error: {type(e).__name__}: {e}; "
              f"rerun with --debug and report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
