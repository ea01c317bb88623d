"""devices.py: datasheet profiles, lookup by alias, dtype fallbacks, cpu sharing and cache."""
import json
from dataclasses import replace

import pytest

from rhino_mlir import devices as D
from rhino_mlir.devices import DeviceError, get_profile


@pytest.mark.parametrize("name, canonical", [
    ("H100", "H100-SXM"), ("h100-sxm", "H100-SXM"), ("H100_SXM5", "H100-SXM"),
    ("h200", "H200"), ("A100", "A100-80GB"), ("a100-80gb", "A100-80GB"),
    ("V100", "V100-32GB"), ("l4", "L4"), ("mi300x", "MI300X"), ("CPU-TEST", "cpu-test"),
])
def test_lookup_by_alias(name, canonical):
    assert get_profile(name).name == canonical


def test_unknown_device_lists_known_names():
    with pytest.raises(DeviceError) as e:
        get_profile("H900")
    msg = str(e.value)
    assert msg.startswith("unknown device 'H900'; known: ")
    assert "H100-SXM" in msg and "MI300X" in msg and "cpu" in msg and "\n" not in msg


def test_datasheet_numbers_are_dense():
    # NVIDIA quotes 1,979 TFLOPS bf16 for H100 SXM *with sparsity*: dense is half
    h100 = get_profile("H100")
    assert h100.peak("bf16") == pytest.approx(989.4e12)
    assert h100.peak("f8E4M3FN") == pytest.approx(1978.9e12)
    assert h100.peak("tf32") == pytest.approx(494.7e12)
    assert h100.link_bandwidth == 450e9 and h100.memory == 80 * 10**9
    assert get_profile("H200").peak("bf16") == h100.peak("bf16")
    assert get_profile("H200").hbm_bandwidth == 4.8e12
    assert get_profile("A100").peak("f16") == 312e12
    assert get_profile("MI300X").memory == 192 * 10**9


@pytest.mark.parametrize("dtype, key", [
    ("float32", "f32"), ("bfloat16", "bf16"), ("f8E5M2", "f8"), ("si8", "i8"),
    ("i32", "f32"), ("i1", "f32"), ("f16", "f16"),
])
def test_dtype_key(dtype, key):
    assert D.dtype_key(dtype) == key


def test_missing_dtype_falls_back():
    v100 = get_profile("V100")
    assert v100.peak("tf32") == v100.peak("f32")       # no TF32 on Volta
    assert v100.peak("f8") == v100.peak("f16")         # no FP8: f16 tensor cores
    a100 = get_profile("A100")
    assert a100.peak("f8") == a100.peak("f16")
    t = get_profile("cpu-test")
    assert t.peak("bf16") == t.peak("f32") == 0.1e12


def test_cpu_ranks_share_cores():
    t = get_profile("cpu-test")                        # 2 cores
    assert t.shared_by(1) == t
    two = t.shared_by(2)                               # one core each: no slowdown
    assert two.peak("f32") == t.peak("f32") and two.memory == t.memory // 2
    four = t.shared_by(4)                              # 4 ranks on 2 cores: half each
    assert four.peak("f32") == t.peak("f32") / 2
    assert four.hbm_bandwidth == t.hbm_bandwidth / 2
    assert four.link_latency == t.link_latency * 2
    assert get_profile("H100").shared_by(8) == get_profile("H100")


def test_cpu_profile_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RHINO_CACHE", str(tmp_path))
    assert get_profile("cpu").source.startswith("defaults")
    prof = replace(get_profile("cpu-test"), name="cpu", source="measured")
    (tmp_path / "cpu_profile.json").write_text(json.dumps(prof.to_json()))
    got = get_profile("CPU")
    assert got.name == "cpu" and got.source == "measured"
    assert got.peak("f32") == prof.peak("f32") and got.cores == 2


def test_corrupt_cache_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RHINO_CACHE", str(tmp_path))
    (tmp_path / "cpu_profile.json").write_text('{"schema": 1, "name": "cpu"}')
    with pytest.raises(DeviceError, match=r"cpu_profile.json'.*rerun 'rhino calibrate'"):
        get_profile("cpu")
    (tmp_path / "cpu_profile.json").write_text("{not json")
    with pytest.raises(DeviceError, match="is unreadable"):
        get_profile("cpu")
