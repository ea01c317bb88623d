"""`rhino bench` (tools/bench_cmd.py): what it checks before the first suite starts.

The checks are pure functions of a root directory and of how modules and mpiexec are looked
up, so a missing checkout or a missing matplotlib is simulated with a fake root and a fake
module finder; the CLI tests run `rhino bench` against a stub checkout whose bench.py
records that it ran, to show that a failed check starts nothing and writes nothing."""
import ast
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rhino_mlir.errors import RhinoError
from rhino_mlir.tools import bench_cmd as B
from rhino_mlir.tools.rhino import main as rhino_main

ROOT = Path(__file__).resolve().parents[2]
STUB = """\
import importlib.util, json, sys
from pathlib import Path
def main(argv, command=None):
    pkg = importlib.util.find_spec("rhino_mlir").origin
    Path(__file__).with_name("ran.json").write_text(json.dumps({"argv": argv, "package": pkg}))
    return 0
"""


def fake_checkout(d: Path, files=("benchmarks/bench.py",)) -> Path:
    for f in files:
        (d / f).parent.mkdir(parents=True, exist_ok=True)
        (d / f).write_text(STUB if f.endswith("bench.py") else "")
    return d


def complete_checkout(d: Path) -> Path:
    files = ["benchmarks/bench.py", "README.md"] + [f"benchmarks/suite_{s}.py" for s in B.SUITES]
    files += [f for fs in (*B.SCRIPTS.values(), *B.FULL_DOC_SCRIPTS.values()) for f in fs]
    return fake_checkout(d, files)


def every_module(name):
    return True


def without(*gone):
    return lambda name: name not in gone


def test_find_root_explicit_editable_and_cwd(tmp_path):
    co = fake_checkout(tmp_path / "co")
    (co / "docs" / "img").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site = tmp_path / "site-packages" / "rhino_mlir"                  # a non-editable install
    site.mkdir(parents=True)
    assert B.find_root(str(co), cwd=elsewhere, package_dir=site) == co.resolve()
    assert B.find_root(str(elsewhere), cwd=co, package_dir=site) is None   # --root wins, and is wrong
    assert B.find_root(None, cwd=co / "docs" / "img", package_dir=site) == co.resolve()
    assert B.find_root(None, cwd=elsewhere, package_dir=co / "rhino_mlir") == co.resolve()   # editable
    assert B.find_root(None, cwd=elsewhere, package_dir=site) is None
    assert B.find_root() == ROOT                          # this checkout (editable install or cwd)


def test_no_checkout_is_one_phrase_naming_the_fix():
    out = B.missing(None, B.QUICK, True, True, has_module=every_module)
    assert len(out) == 1 and "source checkout" in out[0] and "--root DIR" in out[0]
    out = B.missing(None, B.QUICK, True, True, has_module=every_module, explicit="/nowhere")
    assert "'/nowhere' has no benchmarks/bench.py" in out[0]


def test_matplotlib_missing_names_the_extra_and_only_where_plots_are_drawn(tmp_path):
    co = complete_checkout(tmp_path)
    nompl = without("matplotlib")
    assert B.missing(co, B.QUICK, True, True, has_module=every_module) == []
    out = B.missing(co, B.QUICK, True, True, has_module=nompl)
    assert len(out) == 1 and "pip install 'rhino_mlir[bench]'" in out[0]
    assert "search, fidelity, memory" in out[0] and "--no-doc" in out[0]
    assert B.missing(co, B.QUICK, True, False, has_module=nompl) == []      # --no-doc: no plots
    assert B.missing(co, ["quality", "measured"], True, True, has_module=nompl) == []


def test_core_modules_mpiexec_and_files_are_checked(tmp_path):
    co = complete_checkout(tmp_path)
    out = B.missing(co, ["fidelity"], True, False, has_module=without("mpi4py", "iree.runtime"))
    assert len(out) == 1 and "iree.runtime, mpi4py" in out[0]
    out = B.missing(co, ["runtime", "search"], False, False, has_module=every_module, has_mpiexec=lambda: False)
    assert out == ["suite(s) runtime need mpiexec (next to this python or on PATH): pip install mpich mpi4py"]
    assert B.missing(co, ["search"], False, False, has_module=every_module, has_mpiexec=lambda: False) == []
    (co / "tests" / "harness" / "xla_memory.py").unlink()
    assert B.missing(co, ["memory"], True, True, has_module=every_module) == []    # quick: no bench_memory.py
    out = B.missing(co, ["memory"], False, True, has_module=every_module)
    assert len(out) == 1 and out[0].endswith("lacks tests/harness/xla_memory.py")
    assert B.missing(co, ["memory"], False, False, has_module=every_module) == []  # --no-doc: no rerun


def test_this_checkout_and_environment_pass_without_plots():
    assert B.missing(ROOT, B.SUITES, False, False) == []


def _args(**kw):
    return SimpleNamespace(**{"quick": True, "suite": None, "out": None, "no_doc": False, "json": False,
                              "root": None, **kw})


def test_failed_check_starts_nothing(tmp_path, monkeypatch, capsys):
    co = complete_checkout(tmp_path / "co")
    before = sorted(p for p in tmp_path.rglob("*"))
    monkeypatch.setattr(B, "_has_module", without("matplotlib"))
    assert rhino_main(["bench", "--quick", "--root", str(co)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rhino bench: error: matplotlib is not installed")
    assert rhino_main(["bench", "--quick", "--root", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source checkout" in err[0] and "--root DIR" in err[0]
    assert sorted(p for p in tmp_path.rglob("*")) == before and not (co / "benchmarks" / "ran.json").exists()
    with pytest.raises(RhinoError, match="source checkout"):
        B.run(_args(root=str(tmp_path / "none")))


def test_passing_check_runs_the_checkouts_bench_with_the_flags(tmp_path, monkeypatch):
    co = complete_checkout(tmp_path / "co")
    fake_checkout(co, ["rhino_mlir/__init__.py"])     # run from the checkout: not its sources
    monkeypatch.chdir(co)
    monkeypatch.setattr(B, "_has_module", every_module)
    assert B.run(_args(suite=["quality"], out=str(tmp_path / "o"), no_doc=True, root=str(co))) == 0
    ran = json.loads((co / "benchmarks" / "ran.json").read_text())
    assert ran["argv"] == ["--quick", "--suite", "quality", "--out", str((tmp_path / "o").resolve()), "--no-doc"]
    assert Path(ran["package"]) == Path(B.__file__).resolve().parents[1] / "__init__.py"


def _literal(tree, name):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def _local(name: str) -> list[Path]:
    """benchmarks/X.py or tests/X[/...] files an import name resolves to (the scripts put
    benchmarks/ and tests/ on sys.path)."""
    parts = name.split(".")
    cands = [ROOT / "benchmarks" / f"{parts[0]}.py", ROOT / "tests" / f"{parts[0]}.py",
             ROOT / "tests" / parts[0] / "__init__.py", ROOT / "tests" / Path(*parts).with_suffix(".py")]
    return [c for c in cands if c.is_file()]


def test_module_table_covers_what_the_suites_import():
    tree = ast.parse((ROOT / "benchmarks" / "bench.py").read_text())
    assert _literal(tree, "SUITES") == B.SUITES and _literal(tree, "QUICK") == B.QUICK
    for s in B.SUITES:
        todo = [ROOT / "benchmarks" / f"suite_{s}.py", ROOT / "benchmarks" / "bench.py",
                *(ROOT / f for f in B.SCRIPTS.get(s, ()) + B.FULL_DOC_SCRIPTS.get(s, ()))]
        seen, third = set(), set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            for name in _imports(p):
                top = name.split(".")[0]
                if _local(name):
                    todo += _local(name)
                elif top not in sys.stdlib_module_names and top != "rhino_mlir" and not _local(top):
                    third.add(top)
        covered = {m.split(".")[0] for m in B.MODULES[s]}
        unchecked = third - covered - {"matplotlib"}
        assert not unchecked, f"suite {s} imports {sorted(unchecked)}, not in bench_cmd.MODULES"
        assert ("matplotlib" in third) == (s in B.PLOTS), f"suite {s}: PLOTS out of date"
