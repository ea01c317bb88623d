"""XLA's memory analysis of a sharded global program: the oracle for analysis/memory.py.

The program annotated by rhino-propagate (a sharding on every op) is compiled by XLA
with SPMD partitioning on N CPU devices (num_partitions=N), so XLA partitions it with
the same shardings and `get_compiled_memory_stats()` reports per-device bytes:
argument, output, alias and temp sizes. The `sdy.sharding_rule` attributes that
rhino's rule pass leaves on ops are removed first: XLA's importer fails on some of
them ("Failed to get shape" at the return). Needs
XLA_FLAGS=--xla_force_host_platform_device_count=8 before jax is imported.
"""
from __future__ import annotations

from dataclasses import dataclass

from rhino_mlir import ir as I


@dataclass(frozen=True)
class XlaMemory:
    arguments: int
    outputs: int
    aliased: int
    temporaries: int

    @property
    def comparable(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.temporaries


def _for_xla(text: str) -> str:
    """The text without the sdy.sharding_rule attributes rhino's rule pass leaves (XLA's
    importer rejects them)."""
    from rhino_mlir import ir as I
    from rhino_mlir.analysis import rules
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    with ctx:
        rules.strip(mod.operation)
    return str(mod)


def xla_memory(annotated_text: str, n: int) -> XlaMemory:
    """Per-device memory XLA assigns to `annotated_text` partitioned over n CPU devices."""
    import jax
    import jax.extend
    from jax._src import compiler                       # private: compile options
    from jax._src.lib import xla_client                 # private: DeviceList

    backend = jax.extend.backend.get_backend("cpu")
    devs = backend.devices()
    if len(devs) < n:
        raise RuntimeError(f"need {n} cpu devices, have {len(devs)}; set XLA_FLAGS="
                           f"--xla_force_host_platform_device_count=8 before importing jax")
    opts = compiler.get_compile_options(num_replicas=1, num_partitions=n)
    opts.executable_build_options.use_spmd_partitioning = True
    exe = backend.compile_and_load(_for_xla(annotated_text), xla_client.DeviceList(tuple(devs[:n])), opts)
    st = exe.get_compiled_memory_stats()
    return XlaMemory(st.argument_size_in_bytes, st.output_size_in_bytes,
                     st.alias_size_in_bytes, st.temp_size_in_bytes)


# ----------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    """A zoo function, a mesh and argument shardings (regex on the pytree path -> spec)."""
    name: str
    model: str
    fn: str
    overrides: tuple                    # zoo config overrides, as (key, value) pairs
    mesh: tuple                         # ((axis, size), ...)
    specs: tuple                        # ((regex, spec), ...), first match wins
    donate: bool = False                # donate params and optimizer state (aliased outputs)


def build(case: Case) -> tuple[str, list[str]]:
    """Lower, annotate and propagate: (global text with a sharding on every op, roles)."""
    import re

    import jax

    from rhino_mlir import zoo
    from rhino_mlir.analysis.memory import roles_from_paths
    from rhino_mlir.frontend import annotate
    from rhino_mlir.passes import REGISTRY, PassContext
    from rhino_mlir.sharding import Mesh

    m = zoo.get(case.model, **dict(case.overrides))
    args = m.args(case.fn, abstract=True)
    sig = m.signature[case.fn]
    # donated params and optimizer state: XLA aliases them with the new ones
    donated = tuple(i for i, k in enumerate(sig) if k in ("params", "opt_state")) if case.donate else ()
    text = jax.jit(m.fns[case.fn], donate_argnums=donated, keep_unused=True).lower(*args).as_text()
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(args)[0]]
    mesh = Mesh("mesh", case.mesh)
    shardings = [next((s for pat, s in case.specs if re.search(pat, p)), None) for p in paths]
    text = annotate(text, mesh, shardings)
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    with ctx:
        for p in ("rhino-inline", "rhino-propagate"):
            REGISTRY[p]().apply(PassContext(ctx), mod)
    return str(mod), roles_from_paths(paths, sig)


_BATCH = (r"^\[2\]", ("x", None))
CASES = [
    Case("mlp_train_dp8", "mlp", "train_step", (("dims", (512, 2048, 2048, 512)), ("batch", 1024)),
         (("x", 8),), (_BATCH,), donate=True),
    Case("block_train_dp2_tp4", "transformer-block", "train_step",
         (("d_model", 256), ("n_head", 8), ("seq", 128), ("batch", 8)), (("x", 2), ("y", 4)),
         ((r"^\[2\]", ("x", None, None)), (r"w_qkv|w_fc", (None, "y")), (r"b_qkv|b_fc", ("y",)),
          (r"w_o'|w_proj", ("y", None)))),
    Case("gpt_tiny_train_dp2_tp4", "gpt-tiny", "train_step",
         (("n_layer", 2), ("d_model", 128), ("n_head", 4), ("seq", 64), ("batch", 8), ("vocab", 512)),
         (("x", 2), ("y", 4)),
         ((r"^\[2\]", ("x", None)), (r"w_qkv|w_fc", (None, "y")), (r"b_qkv|b_fc", ("y",)),
          (r"w_o'|w_proj", ("y", None)))),
    # the vocabulary-sharded embedding: rhino's partitioner replicates the (B, T, V)
    # scatter of the loss gradient where XLA's keeps it sharded (bench only)
    Case("gpt_tiny_train_dp2_tp4_vocab", "gpt-tiny", "train_step",
         (("n_layer", 2), ("d_model", 128), ("n_head", 4), ("seq", 64), ("batch", 8), ("vocab", 512)),
         (("x", 2), ("y", 4)),
         ((r"^\[2\]", ("x", None)), (r"w_qkv|w_fc", (None, "y")), (r"b_qkv|b_fc", ("y",)),
          (r"w_o'|w_proj", ("y", None)), (r"wte", ("y", None)))),
]
