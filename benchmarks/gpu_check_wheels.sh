#!/usr/bin/env bash
# Here (with network): fetch the runtime wheels gpu_check.sh installs on the GPU machine.
#   bash benchmarks/gpu_check_wheels.sh [PYTHON_VERSION (3.12)] [DEST (.whl)]
# The GPU image's python3 is 3.12 (/work/.library/device/KINDS.md); versions match the venv.
set -euo pipefail
PYV=${1:-3.12}
DEST=${2:-.whl}
V() { .venv/bin/python -c "from importlib.metadata import version; print(version('$1'))"; }
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" \
  "iree-base-runtime==$(V iree-base-runtime)" "mpich==$(V mpich)" "mpi4py==$(V mpi4py)"
ls -la "$DEST"
