"""`rhino train`'s inputs checked before any rank starts: one line each, nothing written.

What is checked: the carry map against the artifact (result i and argument j exist and
agree in shape and dtype); `--init` (an npz holding exactly `argJ` for every carried
argument, global shapes and dtypes); `--data` (a `DIR/argJ.npy` for every other
argument, shape = (steps, *global shape), at least one step, memory-mappable);
`--resume` (a directory with a complete, uncorrupted checkpoint of this program) and
`--checkpoint-dir` (never one holding another program's checkpoints, never one whose
checkpoints a fresh start would overwrite). Pure numpy: the controller imports this.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import RhinoError
from . import checkpoint as ckpt
from .layout import ValueSpec, open_npz, wire_dtype


class TrainInputError(RhinoError):
    """Bad `rhino train` input: missing or mismatched arrays, a wrong checkpoint."""


@dataclass
class Start:
    kind: str                  # "init" | "checkpoint"
    path: str
    step: int = 0

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "step": self.step}


def program_sha(art) -> str:
    """What a checkpoint must match when the caller has no plan-independent identity of
    the program (tools/train_cmd.py's program_id): the artifact's global program file."""
    for rel in ("programs/global.mlir", "programs/main.mlir"):
        if rel in art.manifest.get("files", {}):
            return art.manifest["files"][rel]
    return hashlib.sha256(json.dumps(art.manifest["inputs"], sort_keys=True).encode()).hexdigest()


def plan_sha(art) -> str:
    if "plan.json" in art.manifest.get("files", {}):
        return art.manifest["files"]["plan.json"]
    layout = [(v["name"], v.get("sharding")) for v in art.manifest["inputs"]]
    return hashlib.sha256(json.dumps([art.num_devices, layout]).encode()).hexdigest()


def _same(a: ValueSpec, b: ValueSpec) -> bool:
    return tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype


def check_carry(art, carry: Sequence[tuple[int, int]]) -> None:
    ins, outs = art.inputs, art.outputs
    seen: set[int] = set()
    for i, j in carry:
        if not 0 <= i < len(outs):
            raise TrainInputError(f"--carry {i}:{j}: the program has {len(outs)} results (out0..out{len(outs) - 1})")
        if not 0 <= j < len(ins):
            raise TrainInputError(f"--carry {i}:{j}: the program has {len(ins)} arguments (arg0..arg{len(ins) - 1})")
        if j in seen:
            raise TrainInputError(f"--carry: arg{j} is carried from two results")
        seen.add(j)
        if not _same(outs[i], ins[j]):
            raise TrainInputError(f"--carry {i}:{j}: out{i} is {outs[i].dtype}{list(outs[i].shape)} but arg{j} "
                                  f"is {ins[j].dtype}{list(ins[j].shape)}")


def _spec_line(s: ValueSpec) -> str:
    return f"{s.dtype}{list(s.shape)}"


def check_init(path: str, art, carried: Sequence[int]) -> None:
    ins = art.inputs
    with open_npz(path, "--init", TrainInputError) as z:
        names = set(z.files)
        want = {f"arg{j}" for j in carried}
        missing = sorted(want - names, key=lambda s: int(s[3:]))
        if missing:
            raise TrainInputError(f"--init '{path}' lacks {', '.join(missing)} (carried arguments: "
                                  f"{', '.join(sorted(want, key=lambda s: int(s[3:])))})")
        extra = sorted(names - want)
        if extra:
            raise TrainInputError(f"--init '{path}' has {', '.join(extra)}, which the program does not "
                                  "carry (data arguments come from --data)")
        for j in carried:
            s = ins[j]
            x = z[f"arg{j}"]
            if tuple(x.shape) != tuple(s.shape) or x.dtype != wire_dtype(s.dtype):
                raise TrainInputError(f"--init arg{j}: {x.dtype}{list(x.shape)} but the program expects "
                                      f"{_spec_line(s)}" + (" (bf16 as uint16 bits)" if s.dtype == "bfloat16" else ""))


def check_data(data_dir: str | None, art, data_args: Sequence[int]) -> dict[int, str]:
    """arg index -> path of its .npy; every data argument present, shaped (steps, *shape)."""
    ins = art.inputs
    if not data_args:
        return {}
    if data_dir is None:
        raise TrainInputError(f"the program reads {len(data_args)} data argument(s) "
                              f"({', '.join(f'arg{j}' for j in data_args)}); pass --data DIR")
    d = Path(data_dir)
    if not d.is_dir():
        raise TrainInputError(f"--data '{data_dir}' is not a directory")
    out = {}
    for j in data_args:
        s = ins[j]
        p = d / f"arg{j}.npy"
        if not p.is_file():
            raise TrainInputError(f"--data: missing {p} ({_spec_line(s)} per step, with a leading step axis)")
        try:
            mm = np.load(p, mmap_mode="r", allow_pickle=False)
        except Exception as e:
            raise TrainInputError(f"--data: cannot memory-map {p} ({e})") from None
        if mm.ndim != len(s.shape) + 1:
            raise TrainInputError(f"--data arg{j}: shape {list(mm.shape)} but expected (steps, "
                                  f"{', '.join(map(str, s.shape))}): a leading step axis on {_spec_line(s)}")
        if tuple(mm.shape[1:]) != tuple(s.shape) or mm.dtype != wire_dtype(s.dtype):
            raise TrainInputError(f"--data arg{j}: {mm.dtype}{list(mm.shape)} but each step must be "
                                  f"{_spec_line(s)}")
        if mm.shape[0] < 1:
            raise TrainInputError(f"--data arg{j}: {p} holds no step (leading axis of length 0)")
        out[j] = str(p.resolve())
    return out


def carried_specs(art, carried: Sequence[int]) -> dict[str, dict]:
    ins = art.inputs
    return {f"arg{j}": {"shape": list(ins[j].shape), "dtype": ins[j].dtype} for j in carried}


def resume_point(resume: str, art, carried: Sequence[int], program: str, warn) -> Start:
    """The newest complete checkpoint of `--resume` that verifies and fits this program."""
    d = Path(resume)
    if not d.is_dir():
        raise TrainInputError(f"--resume '{resume}' is not a directory")
    found = ckpt.latest(d, warn)
    if found is None:
        n = len(ckpt.listing(d))
        raise TrainInputError(f"--resume '{resume}' holds no complete checkpoint"
                              + (f" ({n} found, all corrupt)" if n else " (it is empty)"))
    path, m = found
    ckpt.check_compatible(m, path, program, carried_specs(art, carried))
    return Start("checkpoint", str(path.resolve()), int(m["step"]))


def check_checkpoint_dir(d: str | None, program: str, resuming_from: str | None) -> None:
    """A fresh start never overwrites checkpoints; a resume never mixes programs."""
    if d is None:
        return
    found = ckpt.listing(d)
    if not found:
        return
    newest = found[0][1]
    try:
        m = ckpt.read_manifest(newest)
    except ckpt.CheckpointError:
        return
    if m.get("program_sha256") != program:
        raise TrainInputError(f"--checkpoint-dir '{d}' holds checkpoints of another program "
                              f"({newest.name}); use an empty directory")
    if resuming_from is None or Path(resuming_from).resolve() != Path(d).resolve():
        raise TrainInputError(f"--checkpoint-dir '{d}' already holds checkpoints (newest {newest.name}); "
                              f"pass --resume {d} to continue from them, or use an empty directory")
