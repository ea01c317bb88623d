"""IREE compile of each distinct local program, with a cache, into an artifact directory.

SPMD: every device of a stage runs the same local program (it learns its index from
`partition_id`), so there is one executable per program, never one per device. Compiles
run in parallel (iree-compile is a subprocess, threads suffice) behind a progress bar on
stderr. The cache key is sha256(program text, target, flags, IREE version), stored under
$RHINO_CACHE or ~/.cache/rhino_mlir/iree.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...errors import RhinoError
from .iree_errors import explain

# target -> (iree-compile flags, runtime driver)
TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "llvm-cpu": (("--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
                  "--iree-llvmcpu-target-cpu=host"), "local-task"),
    # sm_80 PTX is JIT-compiled by the driver on Hopper; sm_90 is broken in IREE 3.13
    "cuda": (("--iree-hal-target-device=cuda", "--iree-cuda-target=sm_80"), "cuda"),
    "rocm": (("--iree-hal-target-device=hip", "--iree-hip-target=gfx942"), "hip"),
    "vulkan-spirv": (("--iree-hal-target-device=vulkan",), "vulkan"),
}


def iree_version() -> str:
    from importlib.metadata import version
    return version("iree-base-compiler")


# IREE demotes f64 to f32 by default: that changes the program's numbers, and an imported
# function with an f64 tensor is then rejected ("types that are being demoted")
# Indirect (reusable) command buffers: IREE 3.13's runtime rejects a loop body that calls
# three or more of our collective imports between dispatches ("indirect buffer reference
# slot 0 is out range of the declared binding capacity"): every accumulated data-parallel
# train step. Direct command buffers run them (tests/launch/test_e2e_loops.py).
COMMON_FLAGS = ("--iree-input-demote-f64-to-f32=false", "--iree-input-demote-i64-to-i32=false",
                "--iree-hal-indirect-command-buffers=false")

# f64 sin, cos, tan, tanh, fmod (remainder), atan2 (and what chlo builds on them: asin,
# lgamma, digamma, ...) become libm calls; IREE's default embedded ELF links no libm
# ("iree-lld: error: undefined symbol: sin"). A system shared library leaves them to the
# dynamic loader, which finds them in the rank process's own libm (Python links it): the
# host libm's results. IREE's bundled lld links it, so no system linker is needed.
_F64 = re.compile(r"[x<]f64\b")


def program_flags(text: str, target: str) -> list[str]:
    """Flags one program needs beyond its target's: system linking for f64 on llvm-cpu."""
    if target != "llvm-cpu" or not _F64.search(text):
        return []
    from iree.compiler.tools.binaries import find_tool
    lld = shlex.quote(os.path.realpath(find_tool("iree-lld")))
    return ["--iree-llvmcpu-link-embedded=false", f"--iree-llvmcpu-system-linker-path={lld} -flavor gnu"]


def target_flags(target: str, extra: Sequence[str] = ()) -> list[str]:
    if target not in TARGETS:
        raise RhinoError(f"unknown target '{target}' (expected {', '.join(TARGETS)})")
    return list(TARGETS[target][0]) + list(COMMON_FLAGS) + list(extra)


def driver_of(target: str) -> str:
    return TARGETS[target][1]


def cache_dir() -> Path:
    root = os.environ.get("RHINO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rhino_mlir")
    return Path(root) / "iree"


def cache_key(text: str, target: str, flags: Sequence[str]) -> str:
    h = hashlib.sha256()
    for part in (text, target, "\0".join(flags), iree_version()):
        h.update(part.encode())
        h.update(b"\x00")
    return h.hexdigest()


@dataclass
class CompileResult:
    name: str
    vmfb: bytes
    seconds: float
    cache_hit: bool
    key: str
    flags: tuple[str, ...] = ()


def compile_one(name: str, text: str, target: str, extra: Sequence[str] = (),
                use_cache: bool = True) -> CompileResult:
    """IREE-compile one StableHLO program (sdy already stripped); cached."""
    import iree.compiler as ic
    flags = target_flags(target, extra) + program_flags(text, target)
    key = cache_key(text, target, flags)
    path = cache_dir() / f"{key}.vmfb"
    t0 = time.perf_counter()
    if use_cache and path.is_file():
        return CompileResult(name, path.read_bytes(), time.perf_counter() - t0, True, key, tuple(flags))
    try:
        vmfb = ic.compile_str(text, input_type="stablehlo", extra_args=flags)
    except ic.CompilerToolError as e:
        raise RhinoError(f"iree-compile failed for program '{name}' (target {target}): "
                         f"{explain(str(e), text)}") from None
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(vmfb)
        os.replace(tmp, path)       # atomic: parallel compilers never see half a file
    return CompileResult(name, vmfb, time.perf_counter() - t0, False, key, tuple(flags))


def compile_many(programs: dict[str, str], target: str, extra: Sequence[str] = (),
                 jobs: int | None = None, use_cache: bool = True,
                 progress: bool | None = None) -> dict[str, CompileResult]:
    """Compile distinct programs in parallel behind a rich progress bar (stderr)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    target_flags(target, extra)                      # unknown target: fail before work
    jobs = jobs or min(len(programs), os.cpu_count() or 1) or 1
    show = sys.stderr.isatty() if progress is None else progress
    out: dict[str, CompileResult] = {}
    with Progress(TextColumn("iree-compile {task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=not show, transient=True) as bar:
        task = bar.add_task(target, total=len(programs))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(compile_one, n, t, target, extra, use_cache): n
                    for n, t in programs.items()}
            for f in futs:
                r = f.result()
                out[r.name] = r
                bar.advance(task)
    return out
