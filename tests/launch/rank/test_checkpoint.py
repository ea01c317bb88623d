"""Checkpoints (launch/rank/checkpoint.py) without MPI: shards written by one plan read back
by another, atomicity, checksums, pruning; and the heartbeat's choice of the hung rank."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rhino_mlir.launch.rank import checkpoint as ckpt
from rhino_mlir.launch.rank.beat import Beat, culprits, read_beats
from rhino_mlir.launch.rank.layout import ValueSpec
from rhino_mlir.launch.rank.train_loop import faults_for
from rhino_mlir.launch.rank.train_state import Place
from rhino_mlir.sharding import Mesh

MESH4 = {"mesh": Mesh("mesh", (("x", 2), ("y", 2)))}
MESH2 = {"mesh": Mesh("mesh", (("x", 2),))}


def _places(name, shape, sharding, meshes, n, dtype="float32"):
    spec = ValueSpec(name, dtype, tuple(shape), sharding)
    return [Place(spec, meshes, n, d) for d in range(n)]


def _write(root, step, arrays: dict, plans: dict, manifest=None):
    """Write `arrays` as the ranks of a plan would: each writer device its own shard."""
    specs = {k: {"shape": list(v.shape), "dtype": v.dtype.name, "chunks": plans[k][0].local_shape}
             for k, v in arrays.items()}
    tmp = ckpt.begin(root, step, f"t{step}")
    names = sorted(specs)
    for share in (names[0::2], names[1::2]):                 # two processes create a share each
        ckpt.create_arrays(tmp, {k: specs[k] for k in share})
    files = ckpt.write_shards(tmp, [(k, p.region, p.take(v)) for k, v in arrays.items()
                                    for p in plans[k] if p.writer])
    man = dict(manifest or {"program_sha256": "p" * 64},
               arrays={k: {"shape": s["shape"], "dtype": s["dtype"], "chunks": s["chunks"]}
                       for k, s in specs.items()})
    return ckpt.commit(tmp, root, step, man, files)


def test_shards_of_one_plan_read_back_by_another(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((10, 6)).astype(np.float32)       # dim 0: 4 ways of 3 (last: 1 row)
    b = rng.standard_normal((2,)).astype(np.float32)          # 4 ways of 1: two all-padding shards
    s = np.array(7, np.int32)
    plans = {"arg0": _places("arg0", w.shape, '#sdy.sharding<@mesh, [{"x", "y"}, {}]>', MESH4, 4),
             "arg1": _places("arg1", b.shape, '#sdy.sharding<@mesh, [{"y", "x"}]>', MESH4, 4),
             "arg2": _places("arg2", (), None, MESH4, 4, "int32")}
    path = _write(tmp_path, 10, {"arg0": w, "arg1": b, "arg2": s}, plans)
    m = ckpt.verify(path)
    assert m["step"] == 10 and m["arrays"]["arg0"]["chunks"] == [3, 6]
    # one chunk file per distinct shard with data; replicas written once
    assert sorted(r for r in m["files"] if "/c" in r) == [
        "arg0/c/0/0", "arg0/c/1/0", "arg0/c/2/0", "arg0/c/3/0", "arg1/c/0", "arg1/c/1", "arg2/c"]
    # another plan: 2 devices, dim 1 split (chunks of 3 columns cross no row chunk boundary)
    for d, p in enumerate(_places("arg0", w.shape, '#sdy.sharding<@mesh, [{}, {"x"}]>', MESH2, 2)):
        got = ckpt.read_region(path, "arg0", "float32", p.region, p.local_shape)
        np.testing.assert_array_equal(got, w[:, 3 * d:3 * d + 3])
    p = _places("arg1", b.shape, '#sdy.sharding<@mesh, [{"x"}]>', MESH2, 2)[1]
    np.testing.assert_array_equal(ckpt.read_region(path, "arg1", "float32", p.region, p.local_shape), b[1:])
    np.testing.assert_array_equal(ckpt.read_global(path, "arg2"), s)


def test_bf16_round_trips_as_its_bits(tmp_path):
    import ml_dtypes
    x = np.arange(12, dtype=np.float32).reshape(3, 4).astype(ml_dtypes.bfloat16)
    path = ckpt.write_global(tmp_path, 1, {"arg0": x}, {"program_sha256": "p"})
    assert json.loads((path / "arg0" / "zarr.json").read_text())["data_type"] == "uint16"
    got = ckpt.read_global(path, "arg0")
    assert got.dtype == x.dtype and np.array_equal(got.astype(np.float32), x.astype(np.float32))


def test_corrupt_newest_is_skipped_for_the_previous(tmp_path):
    x = np.arange(8, dtype=np.float32)
    for step in (10, 20):
        ckpt.write_global(tmp_path, step, {"arg0": x + step}, {"program_sha256": "p"})
    chunk = tmp_path / "step_00000020" / "arg0" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0x40
    chunk.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="'arg0/c/0' is corrupt"):
        ckpt.verify(tmp_path / "step_00000020")
    seen = []
    path, m = ckpt.latest(tmp_path, seen.append)
    assert m["step"] == 10 and path.name == "step_00000010"
    assert len(seen) == 1 and "step_00000020" in seen[0]
    np.testing.assert_array_equal(ckpt.read_global(path, "arg0"), x + 10)


def test_half_written_checkpoints_are_never_taken(tmp_path):
    x = np.ones(4, np.float32)
    ckpt.write_global(tmp_path, 5, {"arg0": x}, {"program_sha256": "p"})
    tmp = ckpt.begin(tmp_path, 9, "dead")
    ckpt.create_arrays(tmp, {"arg0": {"shape": [4], "dtype": "float32", "chunks": [4]}})
    (tmp_path / "step_00000012").mkdir()                       # renamed but no manifest: not ours
    assert [s for s, _ in ckpt.listing(tmp_path)] == [5]
    assert ckpt.latest(tmp_path)[1]["step"] == 5
    assert ckpt.clean_partial(tmp_path) == [tmp] and not tmp.exists()
    (tmp_path / "step_00000005" / "arg0" / "c" / "0").unlink()   # a missing chunk is an error
    assert ckpt.latest(tmp_path) is None


def test_prune_keeps_the_newest(tmp_path):
    for step in (3, 6, 9, 12):
        ckpt.write_global(tmp_path, step, {"arg0": np.zeros(2, np.float32)}, {"program_sha256": "p"})
    ckpt.prune(tmp_path, 2)
    assert [s for s, _ in ckpt.listing(tmp_path)] == [12, 9]


def test_checkpoint_of_another_program_is_refused(tmp_path):
    path = ckpt.write_global(tmp_path, 3, {"arg0": np.zeros(2, np.float32)}, {"program_sha256": "a" * 64})
    m = ckpt.verify(path)
    with pytest.raises(ckpt.CheckpointError, match="written for program aaaaaaaaaaaa but this artifact runs"):
        ckpt.check_compatible(m, path, "b" * 64, {"arg0": {"shape": [2], "dtype": "float32"}})
    with pytest.raises(ckpt.CheckpointError, match=r"arg0 is float32\[2\] but the program expects float32\[3\]"):
        ckpt.check_compatible(m, path, "a" * 64, {"arg0": {"shape": [3], "dtype": "float32"}})


def test_hung_rank_is_the_one_outside_the_collective(tmp_path):
    beats = [Beat(tmp_path, r) for r in range(3)]
    for b in beats:
        b.step(25)
    beats[0].collective(True)
    beats[2].collective(True)
    got = read_beats(tmp_path, 3)
    assert [got[r]["in_collective"] for r in range(3)] == [True, False, True]
    assert culprits(got, 3) == [1]
    beats[1].collective(True)                     # all waiting: the one that entered fewest
    beats[0].collective(False)
    beats[0].collective(True)
    assert culprits(read_beats(tmp_path, 3), 3) == [1, 2]
    assert culprits(read_beats(tmp_path, 4), 4) == [3]      # never started
    for b in beats:
        b.close()


def test_fault_hook_spec():
    assert faults_for("1:25", 0) == ["1:25"] and faults_for("1:25", 1) == []
    assert faults_for("1:5:hang,2:7@1", 1) == ["2:7"]
    with pytest.raises(ValueError, match="RANK:STEP"):
        faults_for("1:x", 0)
    with pytest.raises(ValueError, match="RANK:STEP"):
        faults_for("1:2:segv", 0)
