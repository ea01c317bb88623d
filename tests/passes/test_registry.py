"""The pass registry against the files that must go with each pass.

One pass per file, named after the pass (`rhino-spmd-partition` lives in
`rhino_mlir/passes/spmd_partition.py`), lit tests in `lit_tests/<pass>/`, a section in
`docs/passes.md`. A pass added without one of them, a module that forgets to register
(or is not imported by `passes/__init__.py`), or a renamed pass whose file, lit directory
or docs did not follow, fails here with the missing piece named. Whether the docs
section is up to date is tests/tools/test_gen_pass_docs.py's job.
"""
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

import rhino_mlir.passes as passes
from rhino_mlir.passes import REGISTRY, ModulePass

ROOT = Path(__file__).resolve().parents[2]
PASSES_DIR = Path(passes.__file__).resolve().parent
LIT = ROOT / "lit_tests"
DOCS = ROOT / "docs" / "passes.md"
NOT_PASSES = {"__init__.py", "base.py", "pass_pipeline.py"}   # infrastructure, no pass
NAMES = sorted(REGISTRY)


def _stem(name: str) -> str:
    """File stem of a pass: 'rhino-lower-collectives' -> 'lower_collectives'."""
    return name.removeprefix("rhino-").replace("-", "_")


def test_registry_is_populated():
    # the package registers at import: an empty registry means the imports broke
    assert len(REGISTRY) >= 8, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_pass_lives_in_its_named_file(name):
    cls = REGISTRY[name]
    assert issubclass(cls, ModulePass) and cls.name == name
    assert name.startswith("rhino-") and name == name.lower() and "_" not in name, \
        f"pass name '{name}' must be rhino-<lowercase-dashed>"
    where = Path(sys.modules[cls.__module__].__file__).resolve()
    want = PASSES_DIR / f"{_stem(name)}.py"
    assert where == want, f"{name} is defined in {where.relative_to(ROOT)}; " \
                          f"move it to {want.relative_to(ROOT)} (file name = pass name)"
    assert cls.summary(), f"{name} has no docstring summary (first line, shown by --list-passes)"


@pytest.mark.parametrize("name", NAMES)
def test_pass_has_lit_tests_that_run_it(name):
    d = LIT / name
    files = sorted(d.glob("*.mlir"))    # Inputs/ holds data, not tests (lit.cfg.py excludes it)
    assert files, f"{name} has no lit tests: add lit_tests/{name}/<family>.mlir"
    # a RUN line naming the pass (not a prefix of a longer name): a copied directory
    # whose RUN lines still run another pass does not count
    run = re.compile(rf"RUN:.*(?<![\w-]){re.escape(name)}(?![\w-])")
    runs = [f.name for f in files if any(run.search(ln) for ln in f.read_text().splitlines())]
    assert runs, f"no RUN line in lit_tests/{name}/*.mlir runs {name}"


def test_every_pass_has_a_docs_section():
    # sections of the committed page, not of generate(): the page is what readers see
    sections = re.findall(r"^## `([^`]+)`$", DOCS.read_text(), flags=re.M)
    missing = sorted(set(REGISTRY) - set(sections))
    stale = sorted(set(sections) - set(REGISTRY))
    assert not missing and not stale, (
        f"docs/passes.md lacks {missing} and documents unregistered {stale}; regenerate it: "
        "python -m rhino_mlir.tools.gen_pass_docs > docs/passes.md")


def test_every_pass_module_registers_exactly_one_pass():
    per_module = Counter(cls.__module__ for cls in REGISTRY.values())
    modules = sorted(p for p in PASSES_DIR.glob("*.py") if p.name not in NOT_PASSES)
    assert modules
    wrong = {p.name: per_module.get(f"{passes.__name__}.{p.stem}", 0) for p in modules}
    wrong = {k: n for k, n in wrong.items() if n != 1}
    assert not wrong, (f"each module in rhino_mlir/passes/ registers one pass; got {wrong} "
                       "(0: add @register and the module to _MODULES in passes/__init__.py)")
    # and nothing registers from outside rhino_mlir/passes/
    outside = sorted(m for m in per_module if m.rpartition(".")[0] != passes.__name__)
    assert not outside, f"passes registered outside rhino_mlir/passes/: {outside}"
