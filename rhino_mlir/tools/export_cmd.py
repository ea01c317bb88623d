"""`rhino export MODEL -o model.mlir [--fn train_step] [--set n_layer=4 ...]`: write a zoo
model's function as global StableHLO, lowered from shapes alone (no weights allocated),
so any size exports on a laptop; `rhino plan model.mlir --cluster ...` takes it from there.
`--train-files DIR` (train_step only) lowers the step with its parameters and optimizer state
donated (carried by `rhino train`) and writes DIR/init.npz and DIR/data/argJ.npy for
`rhino train ART --init DIR/init.npz --data DIR/data` (zoo/train_files.py; allocates the
parameters, so keep it to models that fit in memory).
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
    p.add_argument("--train-files", metavar="DIR",
                   help="also write DIR/init.npz (seeded parameters, zero optimizer state) and "
                   "DIR/data/argJ.npy (--batches different batches) for `rhino train`; the step "
                   "is lowered with its state donated so that rhino train carries it")
    p.add_argument("--batches", type=int, default=3, metavar="N",
                   help="batches in DIR/data with --train-files (default 3; step k uses k mod N)")


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


def model_of(name: str, overrides: dict):
    from .. import zoo
    try:
        m = zoo.get(name, **overrides)
    except KeyError as e:
        raise RhinoError(str(e).strip("'\"")) from None
    except TypeError as e:                        # dataclasses.replace: unknown field
        fields = ", ".join(zoo.get(name).cfg.__dataclass_fields__)
        raise RhinoError(f"model '{name}' has no such config field ({e}); fields: {fields}") from None
    return m


def model_text(name: str, fn: str, overrides: dict) -> str:
    m = model_of(name, overrides)
    if fn not in m.fns:
        raise RhinoError(f"model '{name}' has no function '{fn}' (has: {', '.join(m.fns)})")
    text, _ = m.lower(fn)
    return text


def run(a) -> int:
    if a.train_files:
        return _train_files(a)
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


def _train_files(a) -> int:
    from ..zoo.train_files import write_train_files
    if a.fn != "train_step":
        raise RhinoError(f"--train-files writes a train step's state and data; drop --fn {a.fn}")
    if not a.output:
        raise RhinoError("--train-files needs -o FILE.mlir for the step it goes with")
    text, tf = write_train_files(model_of(a.model, parse_sets(a.set)), a.train_files, a.batches)
    out = Path(a.output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(f"wrote {out} ({a.model} train_step, arguments 0..{tf.n_carried - 1} carried), {tf.init} and "
          f"{tf.data}/ ({a.batches} batch(es)); next: rhino compile {out} -o ART --cluster ... && "
          f"rhino train ART -n N --init {tf.init} --data {tf.data} --steps K", file=sys.stderr)
    return 0
