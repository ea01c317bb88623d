#!/usr/bin/env bash
# GPU machine, repo root: install the carried runtime wheels (no compiler, no jax from us),
# then run benchmarks/gpu_check.py on the carried, cross-compiled artifacts.
#   bash benchmarks/gpu_check.sh [ARTIFACTS (build/gpu_check)] [gpu_check.py run flags]
# WHEELS (default .whl) holds iree-base-runtime, mpich and mpi4py wheels for this python;
# prepare them here with `benchmarks/gpu_check_wheels.sh` (see docs/benchmarks.md).
set -euo pipefail
WHEELS=${WHEELS:-.whl}
PFX=${PFX:-/tmp/rhino-gpu-pfx}
# --prefix, not --target: mpich's libmpi and mpiexec live in the wheel's data dir
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --prefix "$PFX" "$WHEELS"/*.whl
SITE=$(echo "$PFX"/lib/python3*/site-packages)
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$PFX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$PFX/bin:$PATH" MPIEXEC="$PFX/bin/mpiexec" PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_check.py run "${1:-build/gpu_check}" "${@:2}"
