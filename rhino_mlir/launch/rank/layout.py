"""Global <-> per-device arrays, from the manifest's value specs (pure numpy).

A dimension of global size G split k ways has local size c = ceil(G/k); shard i holds
elements [i*c, min((i+1)*c, G)) and is padded at its end (DESIGN.md, local programs).
The shard index along a dimension sharded on axes (a, b, ...) (major -> minor) is the
mixed-radix number of the device's mesh coordinates on those axes (sub-axes included).
The device whose partition_id is d sits at mesh position d, or at the position of d in
the mesh's device_ids. Rank 0 of a launch uses this to slice inputs and assemble
outputs; tests use it to build expectations. Rank processes import it (no jax).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...errors import RhinoError
from ...sharding import Mesh, TensorSharding, parse_sharding

# MLIR element type -> numpy dtype name (bf16 via ml_dtypes; it travels as uint16 bits)
MLIR_DTYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
               "i1": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
               "ui8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64"}


def np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def wire_dtype(name: str) -> np.dtype:
    """dtype in npz files: bf16 as its uint16 bits (npz cannot name bfloat16)."""
    return np.dtype(np.uint16) if name == "bfloat16" else np.dtype(name)


@dataclass(frozen=True)
class ValueSpec:
    """One argument or result of the entry function, as the manifest records it."""
    name: str                       # arg0 / out0
    dtype: str                      # numpy name ("bfloat16" for bf16)
    shape: tuple[int, ...]          # global
    sharding: str | None            # '#sdy.sharding<@mesh, [...]>' or None (replicated)
    path: str = ""                  # pytree path, when the frontend gave one

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                "sharding": self.sharding, "path": self.path}

    @staticmethod
    def from_json(d: dict) -> "ValueSpec":
        return ValueSpec(d["name"], d["dtype"], tuple(d["shape"]), d.get("sharding"),
                         d.get("path", ""))

    def parsed(self, meshes: dict[str, Mesh], num_devices: int) -> tuple[TensorSharding, Mesh]:
        if not self.sharding:
            mesh = Mesh("_replicated", (("_all", num_devices),))
            return TensorSharding.replicated_of(mesh.name, len(self.shape)), mesh
        s = parse_sharding(self.sharding)
        if s.mesh not in meshes:
            raise RhinoError(f"{self.name}: sharding names mesh @{s.mesh} but the manifest "
                             f"has {', '.join('@' + m for m in meshes) or 'no mesh'}")
        return s, meshes[s.mesh]

    def local_shape(self, meshes: dict[str, Mesh], num_devices: int) -> list[int]:
        s, mesh = self.parsed(meshes, num_devices)
        return s.local_shape(self.shape, mesh)


def device_position(mesh: Mesh, device: int) -> int:
    if mesh.device_ids is None:
        return device
    return list(mesh.device_ids).index(device)


def shard_index(sharding: TensorSharding, mesh: Mesh, device: int) -> tuple[int, ...]:
    pos = device_position(mesh, device)
    out = []
    for axes in sharding.dims:
        i = 0
        for a in axes:
            i = i * a.length(mesh) + a.coord(mesh, pos)
        out.append(i)
    return tuple(out)


def bounds(shape: Sequence[int], sharding: TensorSharding, mesh: Mesh,
           device: int) -> list[tuple[int, int]]:
    """[start, stop) of the real elements of one device's shard, per dimension."""
    loc = sharding.local_shape(shape, mesh)
    idx = shard_index(sharding, mesh, device)
    return [(min(i * c, g), min((i + 1) * c, g)) for i, c, g in zip(idx, loc, shape)]


def slice_value(x: np.ndarray, spec: ValueSpec, meshes: dict[str, Mesh],
                num_devices: int) -> list[np.ndarray]:
    """Local shard of `x` for every device 0..num_devices-1 (padding = zeros)."""
    s, mesh = spec.parsed(meshes, num_devices)
    if mesh.size != num_devices:
        raise RhinoError(f"{spec.name}: mesh @{mesh.name} has {mesh.size} devices but the "
                         f"program runs on {num_devices}")
    loc = s.local_shape(spec.shape, mesh)
    out = []
    for d in range(num_devices):
        b = bounds(spec.shape, s, mesh, d)
        src = tuple(slice(lo, hi) for lo, hi in b)
        if [hi - lo for lo, hi in b] == loc:
            # np.array, not np.ascontiguousarray: that one makes a scalar (1,)-shaped
            out.append(np.array(x[src], order="C"))
            continue
        shard = np.zeros(loc, dtype=x.dtype)
        shard[tuple(slice(0, hi - lo) for lo, hi in b)] = x[src]
        out.append(shard)
    return out


def assemble_value(shards: Sequence[np.ndarray], spec: ValueSpec, meshes: dict[str, Mesh],
                   num_devices: int) -> np.ndarray:
    """Global value from per-device results; padding cropped, replicas read once."""
    s, mesh = spec.parsed(meshes, num_devices)
    loc = s.local_shape(spec.shape, mesh)
    out = np.empty(spec.shape, dtype=shards[0].dtype)
    seen: set[tuple[int, ...]] = set()
    for d in range(num_devices):
        key = shard_index(s, mesh, d)
        if key in seen:
            continue
        seen.add(key)
        part = np.asarray(shards[d])
        if list(part.shape) != loc:
            raise RhinoError(f"{spec.name}: device {d} returned shape {list(part.shape)} "
                             f"but {s.to_text()} of {list(spec.shape)} expects {loc}")
        b = bounds(spec.shape, s, mesh, d)
        out[tuple(slice(lo, hi) for lo, hi in b)] = part[tuple(slice(0, hi - lo) for lo, hi in b)]
    if len(seen) != math.prod(s.shards(mesh)):
        raise RhinoError(f"{spec.name}: devices cover {len(seen)} of "
                         f"{math.prod(s.shards(mesh))} shards")
    return out


def check_input(name: str, x: np.ndarray, spec: ValueSpec) -> np.ndarray:
    """Validate one npz array against its spec; returns it in its logical dtype."""
    want = wire_dtype(spec.dtype)
    if tuple(x.shape) != tuple(spec.shape):
        raise RhinoError(f"input {name}: shape {list(x.shape)} but the program expects "
                         f"{list(spec.shape)}")
    if x.dtype != want and not (spec.dtype == "bfloat16" and x.dtype.name == "bfloat16"):
        extra = " (bf16 travels as uint16 bits)" if spec.dtype == "bfloat16" else ""
        raise RhinoError(f"input {name}: dtype {x.dtype} but the program expects "
                         f"{want}{extra}")
    return x.view(np_dtype(spec.dtype)) if spec.dtype == "bfloat16" else x


def to_wire(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint16) if x.dtype.name == "bfloat16" else x


def random_input(spec: ValueSpec, rng: np.random.Generator) -> np.ndarray:
    """Random values of the right shape and (wire) dtype, for launches without --inputs."""
    dt = np_dtype(spec.dtype)
    if dt == np.bool_:
        return rng.random(spec.shape) < 0.5
    if np.issubdtype(dt, np.integer):
        # small non-negative values: integer inputs are mostly indices (token ids,
        # positions), and an index past its table is undefined behaviour in IREE
        return rng.integers(0, 8, spec.shape, dtype=dt)
    return to_wire(rng.standard_normal(spec.shape).astype(dt))


def load_inputs(art, path: str | None, seed: int):
    """Rank 0: inputs as a list of logical-dtype arrays, checked against the manifest."""
    specs = art.inputs
    if path is None:
        rng = np.random.default_rng(seed)
        arrays = {s.name: random_input(s, rng) for s in specs}
    else:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    want = [s.name for s in specs]
    extra = sorted(set(arrays) - set(want), key=lambda k: (len(k), k))
    missing = [k for k in want if k not in arrays]
    if missing or extra:
        raise RhinoError(f"inputs: expected {len(want)} arrays ({', '.join(want) or 'none'}); "
                         + (f"missing {', '.join(missing)}" if missing else "")
                         + ("; " if missing and extra else "")
                         + (f"unexpected {', '.join(extra)}" if extra else ""))
    return [check_input(s.name, arrays[s.name], s) for s in specs]


def open_npz(path: str, what: str, error=RhinoError):
    """An npz opened without pickles, or one `error` line naming `what` ("inputs file",
    "--init") and the path; use it as a context manager."""
    from pathlib import Path
    if not Path(path).is_file():
        raise error(f"{what} '{path}' does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise error(f"{what} '{path}' is not a readable npz ({e})") from None
