"""tools/calibrate.py: the fit, the cache round trip, and (slow) a real measurement."""
import argparse

import pytest

from rhino_mlir.devices import get_profile
from rhino_mlir.tools import calibrate as C


def _args(argv):
    ap = argparse.ArgumentParser(prog="rhino")
    C.register(ap.add_subparsers(dest="cmd"))
    return ap.parse_args(["calibrate", *argv])


def test_fit_mpi_cancels_the_fixed_cost():
    small, bw, fixed = 10e-6, 2e9, 50e-6
    t = {str(C.SMALL_ELEMS * 4): small,
         str(C.BIG[0]): fixed + C.BIG[0] / bw, str(C.BIG[1]): fixed + C.BIG[1] / bw,
         "runtime_small": small + 30e-6}
    f = C.fit_mpi(t)
    assert f["link_bandwidth"] == pytest.approx(bw)
    assert f["link_latency"] == pytest.approx(small / 2)    # 2 ring steps on 2 ranks
    assert f["collective_overhead"] == pytest.approx(30e-6)


def test_run_writes_the_cache_that_cpu_lookup_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RHINO_CACHE", str(tmp_path))
    monkeypatch.setattr(C, "measure_matmul", lambda: {"f32": 50e9, "f64": 25e9})
    monkeypatch.setattr(C, "measure_memcpy", lambda: 8e9)
    assert C.run(_args(["--no-mpi"])) == 0
    assert "cpu_profile.json" in capsys.readouterr().out
    p = get_profile("cpu")
    assert p.peak("f32") == 50e9 and p.peak("f64") == 25e9 and p.hbm_bandwidth == 8e9
    assert p.source.startswith("rhino calibrate on ")


@pytest.mark.slow
def test_real_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("RHINO_CACHE", str(tmp_path))
    out = tmp_path / "p.json"
    assert C.run(_args(["-o", str(out)])) == 0
    assert out.is_file()
