"""Pass registry: importing this package registers every rhino pass by name."""
import importlib

from .base import REGISTRY, ModulePass, PassContext, register  # noqa: F401

# one pass per module, in pipeline order; importing a module registers its pass
_MODULES = ("inline", "annotate_cost", "auto_shard", "propagate", "accumulate", "remat", "pipeline_split",
            "spmd_partition", "lower_collectives", "legalize_for_iree", "strip_sharding")
for _m in _MODULES:
    importlib.import_module(f"{__name__}.{_m}")


def get(name: str) -> type[ModulePass]:
    return REGISTRY[name]
