"""Test session set-up: 8 XLA CPU devices for the differential oracle.

XLA reads XLA_FLAGS once, when the first backend starts, so this must run before any
test module imports jax (conftest.py is imported first by pytest)."""
import os
import sys

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# tests/ on sys.path so `from harness import ...` and `import programs` work under xdist
sys.path.insert(0, os.path.dirname(__file__))

# Plans must not depend on this machine's `rhino calibrate` result: every session gets
# its own cache root (cpu profile defaults, cold IREE compile cache) unless one is given.
if "RHINO_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile
    os.environ["RHINO_CACHE"] = tempfile.mkdtemp(prefix="rhino-test-cache-")
    atexit.register(shutil.rmtree, os.environ["RHINO_CACHE"], True)
