"""`--check`: run the artifact's original program on one device and compare.

The reference is `programs/global.mlir` stripped of its annotations and compiled for the
host CPU with the same IREE (so both sides share codegen), run on one device with a
one-rank communicator. Tolerances are DESIGN.md's: integers and booleans bit-exact;
f32/f64 rtol 1e-5 with atol 1e-5*max|ref|; f16/bf16 1e-2. Launcher side only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import RhinoError


@dataclass
class CheckResult:
    errors: dict            # out name -> max abs error
    ok: bool
    worst: str              # one-line summary

    def line(self) -> str:
        return self.worst


def reference_outputs(art, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ... import ir as rir
    from ...passes import PassContext
    from ...passes.pass_pipeline import run_pipeline_str
    from ..rank.comm import ThreadWorld
    from .iree_compile import compile_one
    from ..rank.runtime import Executor
    gp = art.global_program()
    if gp is None:
        raise RhinoError(f"{art.root}: no programs/global.mlir to check against (the artifact "
                         "was compiled from a local program; pass --global-program to rhino compile)")
    ctx = rir.new_context()
    module = rir.parse_module(gp.read_text(), ctx, str(gp))
    # a global program may still call collectives (n = 1): lower them for the 1-rank run
    run_pipeline_str(module, "rhino-inline,rhino-lower-collectives,rhino-strip-sharding",
                     PassContext(ctx))
    res = compile_one("global", str(module), "llvm-cpu")
    with Executor(res.vmfb, ThreadWorld(1).communicators()[0]) as ex:
        return ex(*inputs)


def compare(outputs: dict, refs: list[np.ndarray], specs) -> CheckResult:
    errors, bad = {}, []
    for s, ref in zip(specs, refs):
        got = outputs[s.name]
        if got.dtype.kind in "biu" or got.dtype == np.bool_:
            err = float(np.count_nonzero(got != ref))
            if err:
                bad.append(f"{s.name}: {int(err)} element(s) differ")
        else:
            g, r = got.astype(np.float64), ref.astype(np.float64)
            err = float(np.max(np.abs(g - r))) if g.size else 0.0
            tol = 1e-2 if s.dtype in ("float16", "bfloat16") else 1e-5
            scale = float(np.max(np.abs(r))) if r.size else 0.0
            if not np.allclose(g, r, rtol=tol, atol=tol * max(scale, 1e-30), equal_nan=True):
                bad.append(f"{s.name}: max error {err:.3g} exceeds rtol {tol:g}")
        errors[s.name] = err
    worst = max(errors.values()) if errors else 0.0
    line = (f"check: FAILED ({'; '.join(bad)})" if bad
            else f"check: ok, max error {worst:.3g} vs single device over {len(errors)} output(s)")
    return CheckResult(errors, not bad, line)
