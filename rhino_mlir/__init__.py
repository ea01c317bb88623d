"""rhino_mlir: automatic parallelization of StableHLO programs (see docs/architecture.md)."""


def __getattr__(name):
    # lazy: `import rhino_mlir` must stay cheap (rank processes never import jax/jaxlib)
    if name in ("lower", "annotate", "load"):
        from . import frontend
        return getattr(frontend, name)
    raise AttributeError(f"module 'rhino_mlir' has no attribute '{name}'")
