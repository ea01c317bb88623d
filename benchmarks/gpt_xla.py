"""The GPT train step shared by the `memory` and `measured` suites: planned for 1x8xcpu,
the auto plan and each baseline compiled by XLA for 8 CPU devices (once per process).

full: 4 layers, d 256, 8 heads, 128 tokens, batch 16, vocab 2048 (3.7M parameters);
quick: the same with 2 layers (2.1M).
"""
from __future__ import annotations

import time

import xla_spmd as X

CLUSTER = "1x8xcpu"
N = 8
_CACHE: dict = {}


def config(quick: bool) -> dict:
    return dict(n_layer=2 if quick else 4, d_model=256, n_head=8, seq=128, batch=16, vocab=2048)


def variants(ctx) -> dict:
    """{cfg, text, args, variants: [Variant with .exe and .compile_s], plan_s}; cached."""
    key = ctx.quick
    if key in _CACHE:
        return _CACHE[key]
    import jax
    import numpy as np

    from rhino_mlir import zoo
    cfg = config(ctx.quick)
    m = zoo.get("gpt-tiny", **cfg)
    text, _ = m.lower("train_step")
    args = [np.asarray(a) for a in jax.tree_util.tree_leaves(m.args("train_step"))]
    t0 = time.perf_counter()
    names = ("auto", "dp", "zero3", "megatron", "dp-tp") if ctx.quick else ("auto",) + X.BASELINES
    vs, res = X.plan_variants(text, CLUSTER, names)
    plan_s = time.perf_counter() - t0
    for v in vs:
        ctx.log(f"xla: compile {v.name} on mesh {v.mesh}")
        t0 = time.perf_counter()
        v.exe = X.compile_spmd(v.text, N)
        v.stats["compile_s"] = round(time.perf_counter() - t0, 2)
        v.stats["xla_memory"] = X.memory(v.exe)
    out = {"cfg": cfg, "params": m.n_params(), "text": text, "args": args, "variants": vs,
           "plan_s": round(plan_s, 2), "result": res}
    _CACHE[key] = out
    return out
