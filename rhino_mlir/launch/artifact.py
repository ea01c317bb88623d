"""The artifact directory of `rhino compile -o DIR` (DESIGN.md, "Artifact directory").

    DIR/manifest.json           schema version, meshes, rank -> stage/device/program,
                                per-value global type, sharding and pytree path, schedule,
                                sha256 of every other file, IREE version, target and flags
    DIR/programs/global.mlir    the original program (for --check), when there is one
    DIR/programs/<prog>.mlir    local StableHLO, one per distinct program (not per device)
    DIR/executables/<prog>.<target>.vmfb
    DIR/plan.json               when a plan was used
    DIR/report.md

Written into a temporary sibling directory and renamed into place, so a reader never
sees half an artifact. Reading checks the schema version and every checksum. Pure
Python: rank processes read manifests.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RhinoError
from ..sharding import Mesh
from .rank.layout import ValueSpec

SCHEMA_VERSION = 1


def package_version() -> str:
    """rhino_mlir's installed version, recorded in every manifest ("dev" in a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("rhino_mlir")
    except PackageNotFoundError:  # pragma: no cover - source checkout without install
        return "dev"


class ArtifactError(RhinoError):
    """A missing, corrupt or incompatible artifact directory."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Program:
    """One distinct local program: its IR, its executable and its import names."""
    name: str
    mlir: str                       # relative path
    vmfb: str                       # relative path
    entry: str = "main"
    imports: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"mlir": self.mlir, "vmfb": self.vmfb, "entry": self.entry,
                "imports": self.imports}


@dataclass
class Artifact:
    root: Path
    manifest: dict

    @property
    def num_devices(self) -> int:
        return int(self.manifest["num_devices"])

    @property
    def meshes(self) -> dict[str, Mesh]:
        return {n: Mesh(n, tuple((a, s) for a, s in m["axes"]),
                        None if m.get("device_ids") is None else tuple(m["device_ids"]))
                for n, m in self.manifest["meshes"].items()}

    @property
    def inputs(self) -> list[ValueSpec]:
        return [ValueSpec.from_json(v) for v in self.manifest["inputs"]]

    @property
    def outputs(self) -> list[ValueSpec]:
        return [ValueSpec.from_json(v) for v in self.manifest["outputs"]]

    @property
    def target(self) -> str:
        return self.manifest["iree"]["target"]

    def program(self, name: str) -> Program:
        p = self.manifest["programs"][name]
        return Program(name, p["mlir"], p["vmfb"], p.get("entry", "main"), p.get("imports", []))

    def rank(self, r: int) -> dict:
        return self.manifest["ranks"][r]

    def path(self, rel: str) -> Path:
        return self.root / rel

    def global_program(self) -> Path | None:
        p = self.root / "programs" / "global.mlir"
        return p if "programs/global.mlir" in self.manifest["files"] else None


def write_artifact(out: str | Path, manifest: dict, files: dict[str, bytes | str]) -> Path:
    """Write `files` (relative path -> content) and the manifest atomically into `out`."""
    out = Path(out).resolve()
    if out.exists() and not (out / "manifest.json").exists() and any(out.iterdir()):
        raise ArtifactError(f"refusing to overwrite '{out}': not empty and not an artifact "
                            "directory (no manifest.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sums = {}
        for rel, data in sorted(files.items()):
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data.encode() if isinstance(data, str) else data)
            sums[rel] = sha256_file(p)
        m = dict(manifest, schema_version=SCHEMA_VERSION, files=sums)
        (tmp / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            # rename the old artifact aside first: a directory rename cannot replace a
            # non-empty directory, and the new one must appear in one step
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "a")
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_artifact(root: str | Path, verify: bool = True) -> Artifact:
    """Open an artifact directory; schema and (if `verify`) every checksum are checked."""
    root = Path(root)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise ArtifactError(f"'{root}' is not an artifact directory (no manifest.json); "
                            "make one with rhino compile -o DIR")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mpath}: corrupt manifest ({e})") from None
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise ArtifactError(f"{mpath}: no schema_version")
    if version > SCHEMA_VERSION:
        raise ArtifactError(f"{root}: artifact schema version {version} is newer than this "
                            f"rhino_mlir reads ({SCHEMA_VERSION}); upgrade rhino_mlir or "
                            "recompile the artifact")
    if version < SCHEMA_VERSION:
        raise ArtifactError(f"{root}: artifact schema version {version} is older than "
                            f"{SCHEMA_VERSION}; recompile it with rhino compile")
    art = Artifact(root, manifest)
    if verify:
        for rel in manifest.get("files", {}):
            check_file(art, rel)
    return art


def check_file(art: Artifact, rel: str) -> Path:
    """Path of one artifact file after checking it exists and matches its sha256."""
    p = art.root / rel
    want = art.manifest["files"].get(rel)
    if want is None:
        raise ArtifactError(f"{art.root}: '{rel}' is not listed in manifest.json")
    if not p.is_file():
        raise ArtifactError(f"{art.root}: missing file '{rel}'")
    if sha256_file(p) != want:
        raise ArtifactError(f"{art.root}: '{rel}' is corrupt (sha256 does not match "
                            "manifest.json); recompile the artifact")
    return p
