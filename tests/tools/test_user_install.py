"""Installed as users install it: a wheel of this checkout (not the editable install), run
from a directory outside the checkout. The dependencies are the ones of this venv (the
wheel goes in with `pip install --no-deps --target` and PYTHONPATH), so the test needs no
download beyond pip's build backend; it proves the package needs nothing of the checkout
(package data, tests/, benchmarks/, paths relative to the source tree)."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MM = """\
sdy.mesh @mesh = <["x"=2]>
func.func @main(%a: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>},
                %b: tensor<16x4xf32>) -> tensor<8x4xf32> {
  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
"""


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


def build_wheel(tmp: Path) -> Path:
    """A wheel of the working tree, built from a copy (no build/ left in the checkout)."""
    src = tmp / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "rhino_mlir", src / "rhino_mlir",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    p = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "wheels", src], cwd=tmp)
    if p.returncode and ("No matching distribution" in p.stderr or "Could not find a version" in p.stderr):
        pytest.skip("pip cannot fetch the build backend (setuptools) from a package index: "
                    + p.stderr.strip().splitlines()[-1])
    assert p.returncode == 0, p.stderr
    (whl,) = (tmp / "wheels").glob("rhino_mlir-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_outside_the_checkout_runs_demo_opt_and_refuses_bench(tmp_path):
    whl = build_wheel(tmp_path)
    names = zipfile.ZipFile(whl).namelist()
    assert all(n.startswith(("rhino_mlir/", "rhino_mlir-")) for n in names), \
        [n for n in names if not n.startswith("rhino_mlir")]
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    points = zipfile.ZipFile(whl).read(entry).decode()
    assert "rhino = rhino_mlir.tools.rhino:main" in points and "rhino-opt = rhino_mlir.tools.rhino_opt:main" in points

    site = tmp_path / "site"
    p = _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, whl])
    assert p.returncode == 0, p.stderr
    work = tmp_path / "work"                         # the user's directory: not the checkout
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    p = _run([sys.executable, "-c", "import rhino_mlir; print(rhino_mlir.__file__)"], cwd=work, env=env)
    where = Path(p.stdout.strip()).resolve()
    assert where.is_relative_to(site.resolve()) and not where.is_relative_to(ROOT), where

    rhino, opt = site / "bin" / "rhino", site / "bin" / "rhino-opt"
    p = _run([rhino, "demo", "--repeat", "1"], cwd=work, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "vs the single-device JAX/XLA result" in p.stdout and p.stdout.rstrip().endswith(": ok"), p.stdout

    p = _run([opt, "--list-passes"], cwd=work, env=env)
    assert p.returncode == 0 and "rhino-spmd-partition" in p.stdout, p.stderr
    (work / "mm.mlir").write_text(MM)
    p = _run([opt, "mm.mlir", "--pass-pipeline=builtin.module(rhino-inline,rhino-propagate,rhino-spmd-partition)"],
             cwd=work, env=env)
    assert p.returncode == 0 and "tensor<4x16xf32>" in p.stdout, p.stderr   # the local shard of %a

    before = sorted(work.rglob("*"))
    p = _run([rhino, "bench", "--quick"], cwd=work, env=env)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(err) == 1 and "source checkout" in err[0] and "--root DIR" in err[0], p.stderr
    assert sorted(work.rglob("*")) == before
