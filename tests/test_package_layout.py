"""The package's shape, checked from its source (docs/architecture.md walks it):
no module imports one that imports it back (function-level imports included), modules
stay short, and rank processes never reach jax (the run-time check is in
tests/launch/rank/test_launch.py: `res.jax_imported` is False)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rhino_mlir"
MAX_LINES = 400
# what a rank process runs: the launcher (controller side of mpiexec), the rank entry points
# and the artifact reader; none may reach these, at module level or inside functions
RANK_ROOTS = ("rhino_mlir.launch.rank", "rhino_mlir.launch.artifact")
RANK_FORBIDDEN = ("jax", "jaxlib", "rhino_mlir.ir", "rhino_mlir.frontend", "rhino_mlir.passes",
                  "rhino_mlir.launch.build", "rhino_mlir.analysis", "iree.compiler")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports anywhere in its file, as absolute names. `from pkg import
    sub` imports pkg.sub (pkg's __init__ runs for any submodule, so it is not an edge of its
    own); a package's PEP 562 `__getattr__` is a lazy attribute, not an import of the package."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    lazy = {id(x) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for x in ast.walk(f)} if is_pkg else set()
    out: set[str] = set()
    for n in ast.walk(tree):
        if id(n) in lazy:
            continue
        if isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - n.level + 1]
                mod = ".".join(base + ([n.module] if n.module else []))
            else:
                mod = n.module or ""
            subs = {f"{mod}.{a.name}" for a in n.names if f"{mod}.{a.name}" in MODULES}
            out.update(subs if len(subs) == len(n.names) else subs | {mod})
    out.discard(name)
    return out


EDGES = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import cycle among the package's modules, or None (iterative DFS)."""
    state: dict[str, int] = {}
    for root in sorted(EDGES):
        if root in state:
            continue
        stack = [(root, iter(sorted(e for e in EDGES[root] if e in MODULES)))]
        path = [root]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(e for e in EDGES[nxt] if e in MODULES))))
    return None


def test_no_module_imports_one_that_imports_it_back():
    cyc = _cycle()
    assert cyc is None, "import cycle: " + " -> ".join(cyc)


def test_the_cycle_check_sees_function_level_imports(tmp_path):
    # the check must not be blind to `def f(): from .b import x` (the back-edges it exists for)
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from .b import x\n")
    assert "pkg.b" in _imports("pkg.a", a)


def test_modules_stay_short():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _reach(roots) -> dict[str, str]:
    """Every module reachable from `roots` (package modules followed, others recorded), with
    the module that first imported it."""
    seen: dict[str, str] = {}
    todo = [m for m in MODULES if any(m == r or m.startswith(r + ".") for r in roots)]
    for m in todo:
        seen[m] = "(root)"
    while todo:
        m = todo.pop()
        for dep in EDGES.get(m, ()):
            parts = dep.split(".")
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            for k in range(1, len(parts) + 1):
                d = ".".join(parts[:k])
                if d not in seen:
                    seen[d] = m
                    if d in MODULES:
                        todo.append(d)
    return seen


@pytest.mark.parametrize("forbidden", RANK_FORBIDDEN)
def test_rank_processes_never_reach_jax(forbidden):
    seen = _reach(RANK_ROOTS)
    hit = sorted(m for m in seen if m == forbidden or m.startswith(forbidden + "."))
    assert not hit, f"rank-side code reaches {hit[0]} (imported by {seen[hit[0]]})"


def test_build_side_is_where_jax_is():
    # the boundary is not vacuous: the build side does reach the MLIR bindings
    assert "rhino_mlir.ir" in _reach(("rhino_mlir.launch.build",))


# layers, lowest first: a module imports only from its own layer or lower ones
LAYERS = (("rhino_mlir.errors", "rhino_mlir.devices", "rhino_mlir.cluster", "rhino_mlir.ir",
           "rhino_mlir.collective_imports"),
          ("rhino_mlir.sharding",), ("rhino_mlir.frontend",), ("rhino_mlir.analysis",),
          ("rhino_mlir.partition",), ("rhino_mlir.passes",), ("rhino_mlir.launch",),
          ("rhino_mlir.zoo",), ("rhino_mlir.tools",))


def _layer(mod: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(mod == n or mod.startswith(n + ".") for n in names):
            return i
    return None


def test_layers_import_downwards_only():
    up = sorted(f"{m} -> {d}" for m, deps in EDGES.items() for d in deps
                if d in MODULES and _layer(m) is not None and _layer(d) is not None
                and _layer(d) > _layer(m))
    assert not up, "imports against the data flow: " + "; ".join(up)
