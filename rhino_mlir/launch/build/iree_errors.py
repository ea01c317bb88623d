"""iree-compile's diagnostics -> one line that names the op, its line and the cause.

iree-compile reports against the text it was given (`<stdin>:LINE:COL`), or, for a link
failure, against no line at all; the program text tells which op sits there. Known
refusals get their cause and the way out; anything else keeps IREE's own message,
shortened to its first sentence (IREE appends the whole op after a colon).
"""
from __future__ import annotations

import re

_LOC = re.compile(r'<stdin>"?:(\d+):\d+')
_OP = re.compile(r'"?\b((?:stablehlo|chlo|mhlo|func)\.[a-z_]+)')
_ILLEGAL = re.compile(r"failed to legalize operation '([\w.]+)'")
_SYMBOL = re.compile(r"undefined symbol: (\w+)")
_CODE = re.compile(r"Error code: (-?\d+)")

# libm symbol -> the StableHLO ops on f64 that call it
_LIBM = {"sin": "sine", "cos": "cosine", "tan": "tan", "tanh": "tanh", "fmod": "remainder",
         "atan2": "atan2", "cbrt": "cbrt", "pow": "power", "exp": "exponential", "log": "log"}


def _op_at(text: str, line: int) -> str | None:
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return None
    names = [n for n in _OP.findall(lines[line - 1]) if n != "stablehlo.return"]
    return names[0] if names else None


def _where(text: str, line: int | None) -> str:
    if line is None:
        return ""
    op = _op_at(text, line)
    return f"{op} (line {line})" if op else f"line {line}"


def _lines_with(text: str, op: str) -> list[int]:
    pat = re.compile(rf'\b{re.escape(op)}\b.*f64')
    return [k + 1 for k, ln in enumerate(text.splitlines()) if pat.search(ln)]


def explain(stderr: str, text: str) -> str:
    """One line for a CompilerToolError's text `stderr` on program `text`."""
    errors = [ln.strip() for ln in stderr.splitlines() if "error:" in ln]
    first = errors[0] if errors else ""
    m = _LOC.search(first)
    line = int(m.group(1)) if m else None
    where = _where(text, line)
    illegal = _ILLEGAL.search(first)
    if illegal and illegal.group(1) == "math.cbrt":
        return (f"{where}: IREE's llvm-cpu backend has no f64 cbrt (math.cbrt is not expanded "
                f"for f64); compute it in f32 or as sign(x) * pow(|x|, 1/3)")
    if illegal:
        return (f"{where}: IREE has no lowering for {illegal.group(1)}; rhino-legalize-for-iree "
                f"rewrites the ops it can (see docs/launch.md, What IREE itself gets wrong)")
    if "iree_linalg_ext.scatter" in first:
        msg = first.split("error:", 1)[1].strip()
        return (f"{where}: IREE cannot convert this scatter ({msg}); run rhino-legalize-for-iree "
                f"before IREE")
    sym = _SYMBOL.search(stderr)
    if sym:
        op = _LIBM.get(sym.group(1))
        lines = _lines_with(text, f"stablehlo.{op}") if op else []
        which = f"stablehlo.{op} on f64 (line {', '.join(map(str, lines[:3]))})" if lines else "f64 math"
        return (f"{which} calls libm's {sym.group(1)}, which the executable could not link "
                f"(IREE's embedded llvm-cpu executables carry no libm; link as a system library: "
                f"--iree-llvmcpu-link-embedded=false)")
    if first:
        msg = first.split("error:", 1)[1].strip()
        msg = re.split(r":\s+%|\s+loc\(", msg)[0]
        return f"{where}: {msg}" if where else msg
    code = _CODE.search(stderr)
    if code:
        return f"iree-compile crashed (exit code {code.group(1)}) without a diagnostic"
    return (stderr.strip().splitlines() or ["no diagnostic"])[0]
