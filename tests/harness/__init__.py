"""Test harness: XLA CPU oracle, layout (slice/assemble), collective counting."""
from .layout import assemble, shard_bounds, shard_index, slice_global  # noqa: F401
from .signature import signature  # noqa: F401
from .xla_oracle import (assert_close, check_local, reference, run_global,  # noqa: F401
                         run_local)
