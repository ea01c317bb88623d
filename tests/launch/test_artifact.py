"""Artifact directory: atomic write, schema version and checksums."""
import json

import pytest

from rhino_mlir.launch.artifact import (SCHEMA_VERSION, ArtifactError, read_artifact,
                                        write_artifact)

MANIFEST = {"num_devices": 2, "meshes": {"m": {"axes": [["x", 2]], "device_ids": None}},
            "inputs": [], "outputs": [], "ranks": [], "programs": {},
            "iree": {"target": "llvm-cpu"}}
FILES = {"programs/main.mlir": "module {}\n", "executables/main.llvm_cpu.vmfb": b"\x00vmfb",
         "report.md": "# r\n"}


def test_write_read_round_trip(tmp_path):
    out = write_artifact(tmp_path / "art", MANIFEST, FILES)
    art = read_artifact(out)
    assert art.manifest["schema_version"] == SCHEMA_VERSION
    assert set(art.manifest["files"]) == set(FILES)
    assert art.meshes["m"].axes == (("x", 2),)
    # rewriting replaces the old artifact and leaves no temporary directories behind
    write_artifact(out, MANIFEST, {"report.md": "# again\n"})
    assert set(read_artifact(out).manifest["files"]) == {"report.md"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_corrupt_file_is_named(tmp_path):
    out = write_artifact(tmp_path / "art", MANIFEST, FILES)
    (out / "executables/main.llvm_cpu.vmfb").write_bytes(b"\x01vmfb")
    with pytest.raises(ArtifactError, match="'executables/main.llvm_cpu.vmfb' is corrupt"):
        read_artifact(out)


def test_missing_file_is_named(tmp_path):
    out = write_artifact(tmp_path / "art", MANIFEST, FILES)
    (out / "programs/main.mlir").unlink()
    with pytest.raises(ArtifactError, match="missing file 'programs/main.mlir'"):
        read_artifact(out)


def test_newer_schema_is_refused(tmp_path):
    out = write_artifact(tmp_path / "art", MANIFEST, FILES)
    m = json.loads((out / "manifest.json").read_text())
    m["schema_version"] = SCHEMA_VERSION + 1
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        read_artifact(out)


def test_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="is not an artifact directory"):
        read_artifact(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(ArtifactError, match="refusing to overwrite"):
        write_artifact(tmp_path, MANIFEST, FILES)
    assert (tmp_path / "keep.txt").exists()
