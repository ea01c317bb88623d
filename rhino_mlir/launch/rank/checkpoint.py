"""Training checkpoints: global arrays as zarr v3, written shard by shard by the ranks.

    D/step_00000020/manifest.json         step, program and plan sha256, data position,
                                          array specs, sha256 of every other file
    D/step_00000020/zarr.json             the zarr group
    D/step_00000020/arg3/zarr.json        one chunked array per carried argument
    D/step_00000020/arg3/c/1/0            chunk (1, 0) = the shard of the device(s) at
                                          shard index (1, 0) in the writing plan

Why zarr with the writer's shard as the chunk: DESIGN.md's local layout splits a
dimension of size G k ways into chunks of ceil(G/k) starting at i*ceil(G/k), which is
exactly zarr's regular chunk grid, so every rank writes whole chunks of its own and no
two ranks touch one file; a reader with another plan asks zarr for the slice it needs
and zarr reads the chunks that overlap it. Each chunk carries a crc32c (zarr's codec)
and the manifest the sha256 of every file.

Atomic: the checkpoint is assembled under `D/.step_<k>.tmp-<tag>` and renamed to
`D/step_<k>` once the manifest is written, so a listing never sees half of one; a
directory without a manifest or with a file that fails its checksum is never resumed.
bf16 is stored as its uint16 bits (the manifest keeps the logical dtype).
Rank processes import this module: pure numpy + zarr, never jax.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import RhinoError
from .layout import np_dtype, wire_dtype

FORMAT = "rhino-checkpoint"
VERSION = 1
_STEP = re.compile(r"^step_(\d+)$")


class CheckpointError(RhinoError):
    """A checkpoint that is missing, incomplete, corrupt or made for another program."""


def _zarr():
    import zarr
    import zarr.api.asynchronous  # noqa: F401 - loaded here, not inside a timed write or read
    import zarr.codecs  # noqa: F401
    # a chunk equal to the fill value would otherwise not be written at all: every shard
    # gets its file, so a missing file is always an error, never silently zeros
    zarr.config.set({"array.write_empty_chunks": True})
    return zarr


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step_{step:08d}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- writing
# zarr's synchronous API costs ~1 ms of event-loop round trip per call, which is most of
# the time for a train step's hundred-odd small arrays; each process therefore issues
# all its creations, writes or reads as one batch on its own asyncio loop.

def _batch(coros) -> list:
    import asyncio

    async def run():
        return await asyncio.gather(*coros)
    return asyncio.run(run())


def begin(root: str | Path, step: int, tag: str) -> Path:
    """Create the temporary checkpoint directory holding the zarr group (one process)."""
    zarr = _zarr()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".step_{step:08d}.tmp-{tag}"
    if tmp.exists():
        shutil.rmtree(tmp)
    zarr.open_group(str(tmp), mode="w", zarr_format=3)
    return tmp


def create_arrays(tmp: str | Path, arrays: dict[str, dict]) -> None:
    """Empty arrays in the group: name -> {"shape", "dtype" (logical), "chunks"} (chunks =
    the writer's local shard shape). Processes may each create a share of them."""
    import asyncio
    from zarr.codecs import Crc32cCodec
    import zarr.api.asynchronous as za
    _zarr()

    async def all_():
        g = await za.open_group(str(tmp), mode="r+", zarr_format=3)
        await asyncio.gather(*[
            g.create_array(name, shape=tuple(int(x) for x in a["shape"]),
                           chunks=tuple(max(1, int(c)) for c in a["chunks"]),
                           dtype=wire_dtype(a["dtype"]), fill_value=0, compressors=[Crc32cCodec()])
            for name, a in sorted(arrays.items())])
    asyncio.run(all_())


def write_shards(tmp: str | Path, shards: Sequence[tuple[str, Sequence[tuple[int, int]], np.ndarray]]) -> dict[str, str]:
    """Write the real part (padding cropped) of local shards (name, bounds, array); the
    sha256 of every file written. `bounds` are a shard's [start, stop) per dimension in the
    writing plan, exactly one chunk of its array; an all-padding shard writes nothing."""
    import zarr.api.asynchronous as za
    _zarr()

    async def one(name, bounds, shard):
        arr = await za.open_array(store=str(Path(tmp) / name), mode="r+")
        # x[()] of a 0-d array is a numpy scalar and ascontiguousarray makes that 1-d:
        # slice only when there is a dimension, copy only when not contiguous
        real = np.asarray(shard[tuple(slice(0, hi - lo) for lo, hi in bounds)] if bounds else shard)
        real = real if real.flags.c_contiguous else real.copy()
        real = real.view(np.uint16) if real.dtype.name == "bfloat16" else real
        await arr.setitem(tuple(slice(lo, hi) for lo, hi in bounds) or ..., real)
        chunks = arr.metadata.chunk_grid.chunk_shape
        return f"{name}/{arr.metadata.encode_chunk_key(tuple(lo // c for (lo, _), c in zip(bounds, chunks)))}"
    todo = [(n, b, x) for n, b, x in shards if not any(hi <= lo for lo, hi in b)]
    rels = _batch([one(*t) for t in todo])
    return {rel: sha256(Path(tmp) / rel) for rel in rels}


def commit(tmp: Path, root: str | Path, step: int, manifest: dict,
           files: dict[str, str]) -> Path:
    """Hash the metadata, write the manifest, rename into place (replacing a same step)."""
    tmp, root = Path(tmp), Path(root)
    sums = dict(files)
    for p in sorted(tmp.rglob("zarr.json")):
        sums[str(p.relative_to(tmp))] = sha256(p)
    m = dict(manifest, format=FORMAT, version=VERSION, step=step, files=dict(sorted(sums.items())),
             bytes=sum((tmp / r).stat().st_size for r in sums), written=time.time())
    (tmp / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
    final = step_dir(root, step)
    if final.exists():   # the same step written again after a restart: swap it in
        old = root / f".{final.name}.old-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(root)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prune(root: str | Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest complete checkpoints; returns what was deleted."""
    if keep <= 0:
        return []
    gone = []
    for _, p in listing(root)[keep:]:
        shutil.rmtree(p, ignore_errors=True)
        gone.append(p)
    return gone


def clean_partial(root: str | Path) -> list[Path]:
    """Remove temporary directories left by a writer that died (never a complete one)."""
    root = Path(root)
    out = []
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".step_") and (".tmp-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)
                out.append(p)
    return out


# ----------------------------------------------------------------------------- finding

def listing(root: str | Path) -> list[tuple[int, Path]]:
    """(step, dir) of every checkpoint with a manifest, newest first (not yet verified)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _STEP.match(p.name)
        if m and (p / "manifest.json").is_file():
            out.append((int(m[1]), p))
    return sorted(out, reverse=True)


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    mp = path / "manifest.json"
    if not mp.is_file():
        raise CheckpointError(f"'{path}' is not a checkpoint (no manifest.json)")
    try:
        m = json.loads(mp.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{mp}: unreadable manifest ({e})") from None
    if m.get("format") != FORMAT or not isinstance(m.get("files"), dict):
        raise CheckpointError(f"{mp}: not a rhino checkpoint manifest")
    if m.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {m['version']} is newer than this "
                              f"rhino_mlir reads ({VERSION})")
    return m


def verify(path: str | Path) -> dict:
    """The manifest after checking every listed file exists and matches its sha256."""
    path = Path(path)
    m = read_manifest(path)
    for rel, want in m["files"].items():
        p = path / rel
        if not p.is_file():
            raise CheckpointError(f"{path}: missing file '{rel}'")
        if sha256(p) != want:
            raise CheckpointError(f"{path}: '{rel}' is corrupt (sha256 does not match its manifest)")
    return m


def latest(root: str | Path, warn=None) -> tuple[Path, dict] | None:
    """Newest checkpoint that verifies; corrupt ones are reported through `warn` and skipped."""
    for _, p in listing(root):
        try:
            return p, verify(p)
        except CheckpointError as e:
            if warn is not None:
                warn(f"skipping checkpoint {p.name}: {e}")
    return None


def check_compatible(m: dict, path: str | Path, program_sha: str,
                     arrays: dict[str, dict]) -> None:
    """The checkpoint was made for this program and holds every carried array as expected."""
    got = m.get("program_sha256")
    if got != program_sha:
        raise CheckpointError(f"checkpoint {path} was written for program {str(got)[:12]} but this "
                              f"artifact runs program {program_sha[:12]}; resume with an artifact "
                              "compiled from the same program")
    have = m.get("arrays", {})
    for name, a in arrays.items():
        if name not in have:
            raise CheckpointError(f"checkpoint {path} has no array {name} (it holds "
                                  f"{', '.join(sorted(have)) or 'none'})")
        h = have[name]
        if list(h["shape"]) != list(a["shape"]) or h["dtype"] != a["dtype"]:
            raise CheckpointError(f"checkpoint {path}: {name} is {h['dtype']}{list(h['shape'])} "
                                  f"but the program expects {a['dtype']}{list(a['shape'])}")


# ----------------------------------------------------------------------------- reading

def read_regions(path: str | Path, regions: Sequence[tuple[str, str, Sequence[tuple[int, int]], Sequence[int]]]) -> list[np.ndarray]:
    """Local shards (name, logical dtype, bounds, local shape): each the region `bounds` of
    the global array, zero-padded to the local shape; read as one batch."""
    import zarr.api.asynchronous as za
    _zarr()

    async def one(name, dtype, bounds, local_shape):
        out = np.zeros(tuple(local_shape), dtype=np_dtype(dtype))
        if any(hi <= lo for lo, hi in bounds):
            return out
        arr = await za.open_array(store=str(Path(path) / name), mode="r")
        try:
            got = np.asarray(await arr.getitem(tuple(slice(lo, hi) for lo, hi in bounds) or ...))
        except ValueError as e:     # crc32c mismatch: a chunk changed after the manifest check
            raise CheckpointError(f"checkpoint {path}: {name}: {e}") from None
        out[tuple(slice(0, hi - lo) for lo, hi in bounds)] = got.view(out.dtype) if dtype == "bfloat16" else got
        return out
    return _batch([one(*r) for r in regions])


def read_region(path: str | Path, name: str, dtype: str,
                bounds: Sequence[tuple[int, int]], local_shape: Sequence[int]) -> np.ndarray:
    """One device's local shard: the region `bounds` of the global array, zero-padded."""
    return read_regions(path, [(name, dtype, bounds, local_shape)])[0]


def read_global(path: str | Path, name: str) -> np.ndarray:
    """A whole array in its logical dtype (tests, `--outputs` from a checkpoint)."""
    m = read_manifest(path)
    a = m["arrays"][name]
    shape = a["shape"]
    return read_region(path, name, a["dtype"], [(0, s) for s in shape], shape)


def write_global(root: str | Path, step: int, arrays: dict[str, np.ndarray],
                 manifest: dict, tag: str = "global") -> Path:
    """One process writes whole arrays as a checkpoint (one chunk each): the controller's
    conversion of `--init` when needed, and tests."""
    specs = {k: {"shape": list(v.shape), "dtype": v.dtype.name, "chunks": list(v.shape)}
             for k, v in arrays.items()}
    tmp = begin(root, step, tag)
    create_arrays(tmp, specs)
    files = write_shards(tmp, [(k, [(0, s) for s in v.shape], v) for k, v in arrays.items()])
    m = dict(manifest, arrays={k: {"shape": s["shape"], "dtype": s["dtype"]} for k, s in specs.items()})
    return commit(tmp, root, step, m, files)
