"""`--check`: run the artifact's original program on one device and compare.

The reference is `programs/global.mlir` stripped of its annotations and compiled for the
host CPU with the same IREE (so both sides share codegen), run on one device with a
one-rank communicator. Tolerances are DESIGN.md's: integers and booleans bit-exact;
f32/f64 rtol 1e-5 with atol 1e-5*max|ref|; f16/bf16 1e-2. Launcher side only.

Rounding noise. An output that is zero in exact arithmetic but computed by cancellation
(the gradient of an attention key bias: softmax ignores a per-row constant; the Adam
moments it feeds) holds only rounding noise, on both sides and at different values, so
no tolerance relative to the output itself can hold. The reference therefore runs twice:
once on the inputs and once on the inputs moved by one ulp each (random direction,
seeded; integer arrays and integral or non-finite float values untouched: masks, step
counters and labels keep their meaning). The second run takes a
different rounding path through every operation, so |ref - ref'| measures how far
rounding alone moves each output. An output passes when its error is within the DESIGN.md
tolerance or within NOISE_FACTOR times that measured noise. A well-conditioned output
moves by ~1 ulp of its size and gets nothing new; a real bug (a shard at the wrong offset,
a missing all_reduce) moves an output by its own size, far above the noise.

The floor applies only to noise that is small against the computation: at most NOISE_CAP
times the program's scale, the largest finite magnitude among the float inputs and the other
outputs. Garbage (a read past a buffer) differs between the two runs too, by its own huge size,
and must not pass as noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import RhinoError

# the partitioned program sums in another order (partial sums per shard, then across
# ranks) than either reference run: same magnitude of rounding error, with a margin
NOISE_FACTOR = 16.0
# rounding noise in f32/f64 is ~1e-7 of the values it comes from; 1e-3 leaves room for
# ill-conditioned sums and none for garbage
NOISE_CAP = 1e-3
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


@dataclass
class CheckResult:
    errors: dict            # out name -> max abs error
    ok: bool
    worst: str              # one-line summary
    noisy: tuple = ()       # outputs accepted only by the rounding-noise floor

    def line(self) -> str:
        return self.worst


class References(list):
    """Reference outputs (a list, in output order) plus `noise`: per output, the max
    |ref - ref'| of a rerun on one-ulp-perturbed inputs (None for integer outputs)."""

    def __init__(self, outputs, noise=None, input_scale: float = 0.0):
        super().__init__(outputs)
        self.noise = noise
        self.input_scale = input_scale      # largest finite |x| over the float inputs


def _is_float(dt: np.dtype) -> bool:
    return dt.kind == "f" or dt.name == "bfloat16"


def perturb(inputs, seed: int = 0) -> list[np.ndarray]:
    """Each finite, non-integral float element moved one ulp up or down in magnitude
    (random direction, seeded); everything else as given."""
    rng = np.random.default_rng(seed)
    out = []
    for x in inputs:
        x = np.asarray(x)
        if not _is_float(x.dtype) or x.size == 0:
            out.append(x)
            continue
        u = _UINT[x.dtype.itemsize]
        bits = np.array(x, order="C").view(u)     # (ascontiguousarray makes 0-d 1-d)
        step = rng.choice(np.array([1, -1], dtype=np.int64), size=x.shape)
        moved = (bits.astype(np.int64) + step).astype(u).view(x.dtype)
        with np.errstate(invalid="ignore"):          # inf moved is nan: kept as inf below
            x64, m64 = x.astype(np.float64), moved.astype(np.float64)
        # integral values stay: they are the ones programs compare, floor or convert to
        # indices (masks, step counters, labels), where one ulp would change the meaning
        keep = ~np.isfinite(x64) | (x64 == np.round(x64)) | ~np.isfinite(m64)
        out.append(np.where(keep, x, moved))
    return out


def magnitude(x) -> float:
    """Largest finite |x| of a float array (0 for integers, empty or all non-finite)."""
    x = np.asarray(x)
    if not _is_float(x.dtype) or x.size == 0:
        return 0.0
    a = np.abs(x.astype(np.float64))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else 0.0


def noise_of(refs, refs2) -> list[float | None]:
    """Per output, the max |ref - ref'| between two reference runs (None for integers)."""
    out = []
    for a, b in zip(refs, refs2):
        a, b = np.asarray(a), np.asarray(b)
        if not _is_float(a.dtype):
            out.append(None)
            continue
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        d = d[np.isfinite(d)]
        out.append(float(d.max()) if d.size else 0.0)
    return out


def reference_outputs(art, inputs: list[np.ndarray], noise: bool = True) -> References:
    """The original program on one device: its outputs and (noise=True) their rounding
    noise from a second run on perturbed inputs."""
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
    # a global program may still call collectives (n = 1): lower them for the 1-rank run;
    # legalize as the partitioned programs are (IREE refuses select_and_scatter, ...)
    run_pipeline_str(module, "rhino-inline,rhino-lower-collectives,rhino-legalize-for-iree,"
                     "rhino-strip-sharding", PassContext(ctx))
    res = compile_one("global", str(module), "llvm-cpu")
    with Executor(res.vmfb, ThreadWorld(1).communicators()[0]) as ex:
        refs = ex(*inputs)
        return References(refs, noise_of(refs, ex(*perturb(inputs))) if noise else None,
                          max((magnitude(x) for x in inputs), default=0.0))


def compare(outputs: dict, refs: list[np.ndarray], specs, noise=None) -> CheckResult:
    """Outputs against references. `noise` (per output, as `References.noise`; taken from
    `refs` when it carries one) adds the rounding-noise floor of the module docstring."""
    noise = noise if noise is not None else getattr(refs, "noise", None)
    mags = [magnitude(r) for r in refs]
    inputs_scale = getattr(refs, "input_scale", 0.0)
    errors, bad, noisy = {}, [], []
    for k, (s, ref) in enumerate(zip(specs, refs)):
        got = outputs[s.name]
        if got.dtype.kind in "biu" or got.dtype == np.bool_:
            err = float(np.count_nonzero(got != ref))
            if err:
                bad.append(f"{s.name}: {int(err)} element(s) differ")
        else:
            g, r = got.astype(np.float64), np.asarray(ref).astype(np.float64)
            d = np.abs(g - r)
            d = d[~np.isnan(d)]                # NaN on both sides is equal (allclose below decides)
            err = float(d.max()) if d.size else 0.0
            tol = 1e-2 if s.dtype in ("float16", "bfloat16") else 1e-5
            scale = mags[k]                   # finite values only: NaN where both are NaN is equal
            # the program's scale without this output (its own values may be the garbage)
            program = max([inputs_scale] + mags[:k] + mags[k + 1:])
            small = noise is not None and (noise[k] or 0.0) <= NOISE_CAP * program
            floor = NOISE_FACTOR * (noise[k] or 0.0) if small else 0.0
            rel_ok = np.allclose(g, r, rtol=tol, atol=tol * max(scale, 1e-30), equal_nan=True)
            if not rel_ok and np.allclose(g, r, rtol=tol, atol=max(tol * scale, floor), equal_nan=True):
                noisy.append(s.name)
            elif not rel_ok:
                why = f"{s.name}: max error {err:.3g} exceeds rtol {tol:g} (max|ref| {scale:.3g}"
                bad.append(why + (f", rounding noise {noise[k]:.3g})" if noise is not None else ")"))
        errors[s.name] = err
    worst = max(errors.values()) if errors else 0.0
    if bad:
        line = f"check: FAILED ({'; '.join(bad)})"
    else:
        line = f"check: ok, max error {worst:.3g} vs single device over {len(errors)} output(s)"
        if noisy:
            line += (f"; {len(noisy)} of them ({', '.join(noisy[:4])}{', ...' if len(noisy) > 4 else ''})"
                     f" rounding noise: within {NOISE_FACTOR:g}x a rerun on inputs moved by one ulp")
    return CheckResult(errors, not bad, line, tuple(noisy))
