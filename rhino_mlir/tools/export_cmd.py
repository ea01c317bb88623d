"""`rhino export MODEL -o model.mlir [--fn train_step] [--set n_layer=4 ...]`: write a zoo
model's function as global StableHLO, lowered from shapes alone (no weights allocated),
so any size exports on a laptop; `rhino plan model.mlir --cluster ...` takes it from there.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

from ..errors import RhinoError


def register(sub) -> None:
    p = sub.add_parser("export", help="write a zoo model's function (train_step, forward, ...) "
                       "as StableHLO, from shapes only")
    p.add_argument("model", help="zoo model name, e.g. gpt-1.5b, bert-base, t5-tiny "
                   "(an unknown name lists them)")
    p.add_argument("-o", "--output", metavar="FILE.mlir", help="write here (default: stdout)")
    p.add_argument("--fn", default="train_step", help="function to lower (default train_step)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set n_layer=4 --set scan_layers=true")


def parse_sets(items: list[str]) -> dict:
    """['n_layer=4', 'dtype=bfloat16', 'scan_layers=true'] -> {...} (Python literals, else text)."""
    out = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not key.strip():
            raise RhinoError(f"--set expects KEY=VALUE, got '{item}'")
        low = val.strip().lower()
        if low in ("true", "false"):
            out[key.strip()] = low == "true"
            continue
        try:
            out[key.strip()] = ast.literal_eval(val.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = val.strip()
    return out


def model_text(name: str, fn: str, overrides: dict) -> str:
    from .. import zoo
    try:
        m = zoo.get(name, **overrides)
    except KeyError as e:
        raise RhinoError(str(e).strip("'\"")) from None
    except TypeError as e:                        # dataclasses.replace: unknown field
        fields = ", ".join(zoo.get(name).cfg.__dataclass_fields__)
        raise RhinoError(f"model '{name}' has no such config field ({e}); fields: {fields}") from None
    if fn not in m.fns:
        raise RhinoError(f"model '{name}' has no function '{fn}' (has: {', '.join(m.fns)})")
    text, _ = m.lower(fn)
    return text


def run(a) -> int:
    text = model_text(a.model, a.fn, parse_sets(a.set))
    if not a.output:
        sys.stdout.write(text)
        return 0
    out = Path(a.output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(f"wrote {out}: {a.model} {a.fn}, {len(text) / 1e6:.2f} MB", file=sys.stderr)
    return 0
