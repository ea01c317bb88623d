"""The differential suite's programs: global StableHLO with sdy annotations + inputs.

Each program is `fn(variant) -> (annotated global text, inputs)`; `CASES` lists every
(program, variant). Variants pick a mesh (4, 2x2, 2x4 of the 8 CPU devices) and
argument shardings; together they cover a sharded contracting dimension, a
tensor-parallel weight, one tensor on both mesh axes, sub-axes, device_ids and
dimensions that do not divide (10 rows on 4 devices, ...). Shardings map argument
pytree paths (regex, first match wins) to PartitionSpec-like tuples; unmatched
arguments are replicated. Results are left to the partitioner unless a variant says.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rhino_mlir import zoo
from rhino_mlir.frontend import annotate, lower
from rhino_mlir.sharding import AxisRef, Mesh

M4 = Mesh("mesh", (("x", 4),))
M22 = Mesh("mesh", (("x", 2), ("y", 2)))
M24 = Mesh("mesh", (("x", 2), ("y", 4)))
M22_IDS = Mesh("mesh", (("x", 2), ("y", 2)), device_ids=(3, 1, 2, 0))
Y1, Y2 = AxisRef("y", 1, 2), AxisRef("y", 2, 2)        # "y":(1)2 and "y":(2)2 of y=4

PROGRAMS: dict[str, tuple] = {}                      # name -> (fn, variants)
SLOW: set[tuple[str, str]] = set()


def program(*variants, slow=()):
    def deco(fn):
        PROGRAMS[fn.__name__] = (fn, variants)
        SLOW.update((fn.__name__, v) for v in slow)
        return fn
    return deco


def build(fn, args, mesh, specs: dict, results=None):
    """Lower fn(*args), annotate args whose pytree path matches a spec regex."""
    text, info = lower(fn, *args)
    shardings = [next((s for pat, s in specs.items() if re.search(pat, p)), None)
                 for p in info.arg_paths]
    flat = [np.asarray(x) for x in jax.tree_util.tree_leaves(args)]
    return annotate(text, mesh, shardings, results), flat


def rand(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- models

@program("dp4", "megatron_2x2", "both_axes_2x4", "megatron_2x2_ids")
def mlp_forward(variant):
    m = zoo.get("mlp")                                          # (8,16) -> 32 -> 8
    specs = {"dp4": {r"^\[1\]$": ("x", None)},
             "megatron_2x2": {r"^\[1\]$": ("x", None), r"\[0\]\['w'\]": (None, "y"),
                              r"\[0\]\['b'\]": ("y",), r"\[1\]\['w'\]": ("y", None)},
             "both_axes_2x4": {r"\[0\]\['w'\]": ("x", "y"), r"^\[1\]$": (None, "x")}}
    mesh = {"dp4": M4, "megatron_2x2": M22, "both_axes_2x4": M24, "megatron_2x2_ids": M22_IDS}
    return build(m.fns["forward"], m.args("forward"), mesh[variant],
                 specs[variant.replace("_ids", "")])


@program("dp4", "zero_2x4")
def mlp_train_sgd(variant):
    m = zoo.get("mlp")
    batch = {r"^\[1\]\[\d\]$": ("x", None)}
    if variant == "dp4":
        return build(m.fns["train_step_sgd"], m.args("train_step_sgd"), M4, batch)
    # parameters sharded over "y" on their first dim (ZeRO-3 style), batch over "x"
    return build(m.fns["train_step_sgd"], m.args("train_step_sgd"), M24,
                 {**batch, r"\['w'\]": ("y", None), r"\['b'\]": ("y",)})


@program("dp_tp_2x2")
def mlp_train_adam(variant):
    m = zoo.get("mlp")
    return build(m.fns["train_step"], m.args("train_step"), M22,
                 {r"^\[2\]": ("x", None), r"\[0\]\['w'\]": (None, "y"),
                  r"\[0\]\['b'\]": ("y",), r"\[1\]\['w'\]": ("y", None)})


@program("dp_tp_2x2", "seq_4")
def transformer_block(variant):
    m = zoo.get("transformer-block", seq=8, d_model=16, n_head=4)
    if variant == "seq_4":
        return build(m.fns["forward"], m.args("forward"), M4, {r"^\[1\]$": (None, "x", None)})
    return build(m.fns["forward"], m.args("forward"), M22,
                 {r"^\[1\]$": ("x", None, None), r"w_qkv|w_fc": (None, "y"),
                  r"b_qkv|b_fc": ("y",), r"w_o|w_proj": ("y", None)})


@program("dp_tp_2x2", slow=("dp_tp_2x2",))
def gpt_train_step(variant):
    from rhino_mlir.zoo import optim, transformer
    m = zoo.get("gpt-tiny", n_layer=2, seq=8, vocab=48)
    _, loss, _, _ = transformer.make(m.cfg)

    def train_step(params, opt_state, batch):                   # forward + backward + Adam
        value, grads = jax.value_and_grad(loss)(params, batch)
        # eps 1e-5, not 1e-8: the key bias's gradient is exactly 0 in exact arithmetic
        # (softmax ignores a per-query constant), so f32 noise (~1e-10) divided by
        # sqrt(v)+1e-8 would make its update +-lr at random, on one device or many
        params, opt_state = optim.adam(params, grads, opt_state, eps=1e-5)
        return params, opt_state, value

    params, state, batch = m.args("train_step")
    rng = np.random.default_rng(19)                             # no all-zero / all-one leaves
    params = jax.tree_util.tree_map(
        lambda x: (x + 0.02 * rng.standard_normal(x.shape)).astype(x.dtype), params)
    return build(train_step, (params, state, batch), M22,
                 {r"^\[2\]": ("x", None), r"w_qkv|w_fc": (None, "y"), r"b_qkv|b_fc": ("y",),
                  r"w_o'|w_proj": ("y", None), r"wte": ("y", None)})


@program("batch_4", "spatial_2x2")
def conv_net(variant):
    m = zoo.get("cnn")                                          # x (4, 8, 8, 3) NHWC
    if variant == "batch_4":
        return build(m.fns["forward"], m.args("forward"), M4, {r"^\[1\]$": ("x", None, None, None)})
    return build(m.fns["forward"], m.args("forward"), M22,
                 {r"^\[1\]$": ("x", "y", None, None), r"\['head'\]\['w'\]": ("y", None)})


@program("tokens_4", "experts_2x2")
def moe_topk(variant):
    m = zoo.get("moe")                                          # x (32, 16), 4 experts, top-2
    if variant == "tokens_4":
        return build(m.fns["forward"], m.args("forward"), M4, {r"^\[1\]$": ("x", None)})
    return build(m.fns["forward"], m.args("forward"), M22,
                 {r"^\[1\]$": ("x", None), r"w1|w2": ("y", None, None)})


# ----------------------------------------------------------------------------- op families

@program("dp_4", "tp_2x2", "layers_uneven_4")
def scan_layers(variant):
    def f(ws, h):                                               # ws (L, D, D), h (B, D)
        def body(h, w):
            h = jnp.tanh(h @ w)
            return h, jnp.sum(h)
        return lax.scan(body, h, ws)
    args = (rand(3, 8, 8, seed=1) / 3, rand(4, 8, seed=2))
    specs = {"dp_4": (M4, {r"^\[1\]$": ("x", None)}),
             "tp_2x2": (M22, {r"^\[0\]$": (None, None, "y"), r"^\[1\]$": ("x", None)}),
             "layers_uneven_4": (M4, {r"^\[0\]$": ("x", None, None)})}  # L=3 on 4 devices
    return build(f, args, *specs[variant])


@program("vocab_4", "dims_2x2")
def embedding_gather(variant):
    def f(table, idx):                                          # table (V=50, 8), idx (4, 6)
        e = table[idx]                                          # (4, 6, 8)
        return e * 2.0, jnp.sum(e, axis=(1, 2))
    idx = np.random.default_rng(3).integers(0, 50, (4, 6)).astype(np.int32)
    if variant == "vocab_4":                                    # 50 rows on 4: 13,13,13,11
        return build(f, (rand(50, 8), idx), M4, {r"^\[0\]$": ("x", None)})
    return build(f, (rand(50, 8), idx), M22, {r"^\[0\]$": (None, "y"), r"^\[1\]$": ("x", None)})


@program("rows_4", "cols_2x2")
def pad_concat_slice(variant):
    def f(a, b):                                                # a (10, 6), b (10, 4)
        p = jnp.pad(a, ((0, 0), (2, 1)), constant_values=1.5)   # (10, 9)
        c = jnp.concatenate([p, b], axis=1)                     # (10, 13)
        s = c[1:9:2, 3:11]                                      # strided slice (4, 8)
        q = lax.pad(a, -1.0, [(1, -1, 1), (0, 0, 0)])           # interior + negative (19, 6)
        return c, s, q
    args = (rand(10, 6, seed=4), rand(10, 4, seed=5))
    if variant == "rows_4":
        return build(f, args, M4, {r".": ("x", None)})
    return build(f, args, M22, {r"^\[0\]$": ("x", "y"), r"^\[1\]$": (None, "y")})


@program("sorted_dim_4", "2x2")
def argmax_sort(variant):
    def f(x):                                                   # x (8, 10)
        return (jnp.argmax(x, axis=1), jnp.sort(x, axis=1), jnp.argsort(x, axis=0),
                jnp.max(x, axis=0))
    x = rand(8, 10, seed=6)
    if variant == "sorted_dim_4":                               # 10 on 4: padding must not win
        return build(f, (x,), M4, {".": (None, "x")})
    return build(f, (x,), M22, {".": ("x", "y")})


@program("rows_4", "contract_2x4")
def uneven_dims(variant):
    def f(x, w):                                                # x (10, 6), w (6, 5)
        y = jax.nn.softmax(x @ w, axis=-1)
        return y, jnp.mean(y, axis=0), jnp.sum(x)
    args = (rand(10, 6, seed=7), rand(6, 5, seed=8))
    if variant == "rows_4":
        return build(f, args, M4, {r"^\[0\]$": ("x", None)})
    # contraction of size 6 on y=4 (2, 2, 2, 0: one shard is all padding)
    return build(f, args, M24, {r"^\[0\]$": ("x", "y"), r"^\[1\]$": ("y", None)},
                 results=[("x", None), None, None])


@program("scan_dim_4", "2x2")
def reduce_window(variant):
    def f(x):                                                   # x (12, 6)
        cs = jnp.cumsum(x, axis=0)
        mx = lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (2, 2), "VALID")      # (6, 3)
        av = lax.reduce_window(x, 0.0, lax.add, (3, 3), (1, 1), "SAME") / 9.0      # (12, 6)
        return cs, mx, av
    x = rand(12, 6, seed=9)
    if variant == "scan_dim_4":
        return build(f, (x,), M4, {".": ("x", None)})
    return build(f, (x,), M22, {".": ("x", "y")})


@program("rows_4", "2x2")
def dynamic_slicing(variant):
    def f(x, upd, i, j):                                        # x (16, 8), upd (4, 3)
        s = lax.dynamic_slice(x, (i, 0), (4, 8))
        u = lax.dynamic_update_slice(x, upd, (i, j))
        c = lax.dynamic_slice(x, (i + 10, j), (4, 3))           # start clamped to 12
        return s, u, c
    args = (rand(16, 8, seed=10), rand(4, 3, seed=11), np.int32(5), np.int32(2))
    if variant == "rows_4":
        return build(f, args, M4, {r"^\[0\]$": ("x", None)})
    return build(f, args, M22, {r"^\[0\]$": ("x", "y"), r"^\[1\]$": (None, "y")})


@program("dp_4", "2x4")
def dropout(variant):
    def f(x, seed):                                             # JAX threefry: while loops
        keep = jax.random.bernoulli(jax.random.key(seed), 0.9, x.shape)
        return jnp.where(keep, x / 0.9, 0.0)
    args = (rand(8, 16, seed=12), np.int32(42))
    if variant == "dp_4":
        return build(f, args, M4, {r"^\[0\]$": ("x", None)})
    return build(f, args, M24, {r"^\[0\]$": ("x", "y")})


@program("contract_2x2", "rows_4")
def low_precision(variant):
    def f(x, w, h):                                             # bf16 (8, 16) @ (16, 8); f16 (8, 6)
        y = jnp.dot(x, w, preferred_element_type=jnp.float32).astype(jnp.bfloat16)
        g = jnp.tanh(h) * h
        return y, g, jnp.sum(g, axis=1)
    import ml_dtypes
    args = (rand(8, 16, seed=13).astype(ml_dtypes.bfloat16),
            rand(16, 8, seed=14).astype(ml_dtypes.bfloat16), rand(8, 6, dtype=np.float16, seed=15))
    if variant == "rows_4":
        return build(f, args, M4, {r"^\[0\]$": ("x", None), r"^\[2\]$": ("x", None)})
    return build(f, args, M22, {r"^\[0\]$": ("x", "y"), r"^\[1\]$": ("y", None),
                                r"^\[2\]$": (None, "y")})


@program("reduced_dim_4", "2x4")
def integers(variant):
    def f(a, b, m):                                             # i32 (8, 12), u8 (8, 12), i1
        s = jnp.sum(a, axis=1)                                  # i32 add reduce
        x = (a ^ (a >> 2)) & 0xFF
        mn = jnp.min(b, axis=1)
        anyv = jnp.any(m, axis=1)                               # boolean or-reduce
        allv = jnp.all(m, axis=1)
        mm = a[:, :8] @ a[:, 4:].T                              # integer contraction (8, 8)
        return s, x, mn, anyv, allv, mm
    rng = np.random.default_rng(16)
    args = (rng.integers(-50, 50, (8, 12)).astype(np.int32),
            rng.integers(0, 255, (8, 12)).astype(np.uint8), rng.random((8, 12)) < 0.1)
    if variant == "reduced_dim_4":
        return build(f, args, M4, {".": (None, "x")})
    return build(f, args, M24, {".": ("x", "y")})


@program("rows_4", "2x4")
def iota_reverse(variant):
    def f(x):                                                   # x (12, 8)
        r = jnp.flip(x, axis=0) + jnp.arange(12, dtype=x.dtype)[:, None]
        return r, jnp.flip(x, axis=(0, 1)) * lax.broadcasted_iota(jnp.float32, (12, 8), 1)
    x = rand(12, 8, seed=17)
    if variant == "rows_4":
        return build(f, (x,), M4, {".": ("x", None)})
    return build(f, (x,), M24, {".": ("x", "y")})


@program("rows_4", "subaxis_2x4")
def transpose_reshape(variant):
    def f(x):                                                   # x (8, 12)
        y = x.reshape(8, 3, 4).transpose(2, 0, 1)               # (4, 8, 3)
        return y.reshape(32, 3), x.T, x.reshape(96)
    x = rand(8, 12, seed=18)
    if variant == "rows_4":
        return build(f, (x,), M4, {".": ("x", None)})
    # dim0 on "y":(1)2, dim1 on "x" then "y":(2)2: one tensor on both axes, sub-axes
    return build(f, (x,), M24, {".": ((Y1,), ("x", Y2))})


CASES = [(name, v) for name, (_, vs) in PROGRAMS.items() for v in vs]


def get(name: str, variant: str):
    return PROGRAMS[name][0](variant)
