"""Helpers for the pass tests that rewrite zoo train steps (rhino-accumulate, rhino-remat)."""
from __future__ import annotations

import jax
import numpy as np

from rhino_mlir import ir as I

from .xla_oracle import assert_close


def leaves(x) -> list[np.ndarray]:
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(x)]


def rewrite(text: str, *passes):
    """(text after rhino-inline and `passes` [(name, options)], the PassContext)."""
    from rhino_mlir.passes import REGISTRY, PassContext
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    for name, kw in (("rhino-inline", {}),) + passes:
        REGISTRY[name](**kw).apply(pctx, mod)
    return str(mod), pctx


def later_step(m) -> list[np.ndarray]:
    """train_step arguments with the Adam state of a later step (m, v > 0, step 7): with m = v
    = 0 a gradient that is 0 in exact arithmetic (the key bias: softmax ignores a per-query
    constant) leaves f32 noise whose update lr*g/(|g|+eps) is +-lr at random, on any program."""
    params, opt, batch = m.args("train_step")
    rng = np.random.default_rng(5)
    opt = {"m": jax.tree_util.tree_map(lambda x: (1e-3 * rng.standard_normal(x.shape)).astype(x.dtype), opt["m"]),
           "v": jax.tree_util.tree_map(lambda x: rng.uniform(1e-6, 1e-5, x.shape).astype(x.dtype), opt["v"]),
           "step": np.asarray(7, np.int32)}
    return leaves((params, opt, batch))


def same(got, ref, dtype=None) -> None:
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert_close(g, r, dtype, what=f"out{i}")
