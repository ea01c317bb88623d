"""Building blocks shared by the zoo's transformers (BERT, T5, ViT, GShard MoE).

Shapes inline: B batch, T (query) tokens, S key tokens, D model width, nh heads,
hs = D / nh. Parameters are plain dicts; `stack`/`apply_layers` give every model the
same `scan_layers` switch (layers stacked on a leading axis, lax.scan over them: the
program size no longer grows with depth).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .params import Keys
from .transformer import layernorm  # noqa: F401 - re-exported for the models


def rmsnorm(x, g, eps=1e-6):                                       # T5: no mean, no bias
    var = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return (x * jax.lax.rsqrt(var + eps).astype(x.dtype)) * g


def heads(t, nh):                                                  # (B, T, D) -> (B, nh, T, hs)
    B, T, D = t.shape
    return t.reshape(B, T, nh, D // nh).transpose(0, 2, 1, 3)


def attend(q, k, v, mask=None, bias=None, scale=True):
    """q (B, nh, T, hs), k/v (B, nh, S, hs); mask broadcasts to (B, nh, T, S)."""
    B, nh, T, hs = q.shape
    att = q @ k.transpose(0, 1, 3, 2)                              # (B, nh, T, S)
    if scale:
        att = att / np.sqrt(hs).astype(q.dtype)
    if bias is not None:
        att = att + bias
    if mask is not None:
        att = jnp.where(mask, att, jnp.asarray(-1e9, q.dtype))
    att = jax.nn.softmax(att, axis=-1)
    return (att @ v).transpose(0, 2, 1, 3).reshape(B, T, nh * hs)  # (B, T, D)


def self_attention(p, x, nh, mask=None, bias=None, scale=True):
    """Fused QKV projection (Rhino's strided case: heads inside one (D, 3D) weight)."""
    qkv = x @ p["w_qkv"]                                           # (B, T, 3D)
    if "b_qkv" in p:
        qkv = qkv + p["b_qkv"]
    q, k, v = (heads(t, nh) for t in jnp.split(qkv, 3, axis=-1))
    y = attend(q, k, v, mask, bias, scale) @ p["w_o"]
    return y + p["b_o"] if "b_o" in p else y


def cross_attention(p, x, mem, nh, mask=None, scale=True):
    """Queries from x (B, T, D), keys/values from mem (B, S, D)."""
    q = heads(x @ p["w_q"], nh)
    k, v = (heads(t, nh) for t in jnp.split(mem @ p["w_kv"], 2, axis=-1))
    return attend(q, k, v, mask, None, scale) @ p["w_o"]


def causal_mask(T):                                                # (T, T) bool
    return jnp.tril(jnp.ones((T, T), bool))


def ffn(p, x, act=jax.nn.gelu):
    """x W_fc (+ b) -> act -> W_proj (+ b); biases only where the dict has them."""
    h = x @ p["w_fc"]
    if "b_fc" in p:
        h = h + p["b_fc"]
    y = act(h) @ p["w_proj"]
    return y + p["b_proj"] if "b_proj" in p else y


def gelu(x):
    return jax.nn.gelu(x, approximate=True)


def attn_params(keys: Keys, D: int, dtype, bias: bool = True, cross: bool = False) -> dict:
    w = lambda *s: keys.normal(s, 0.02, dtype)  # noqa: E731
    p = {"w_q": w(D, D), "w_kv": w(D, 2 * D)} if cross else {"w_qkv": w(D, 3 * D)}
    p["w_o"] = w(D, D)
    if bias and not cross:
        p.update(b_qkv=keys.zeros(3 * D, dtype), b_o=keys.zeros(D, dtype))
    return p


def ffn_params(keys: Keys, D: int, H: int, dtype, bias: bool = True) -> dict:
    p = {"w_fc": keys.normal((D, H), 0.02, dtype), "w_proj": keys.normal((H, D), 0.02, dtype)}
    if bias:
        p.update(b_fc=keys.zeros(H, dtype), b_proj=keys.zeros(D, dtype))
    return p


def norm_params(keys: Keys, D: int, dtype, bias: bool = True) -> dict:
    p = {"g": keys.ones(D, dtype)}
    if bias:
        p["b"] = keys.zeros(D, dtype)
    return p


def norm(p, x):
    return layernorm(x, p["g"], p["b"]) if "b" in p else rmsnorm(x, p["g"])


def stack(layers: list, keys: Keys, scan: bool):
    """A list of identical layer dicts, or (scan) one dict of arrays with a leading L axis."""
    if not scan:
        return layers
    return jax.tree_util.tree_map(lambda *xs: keys.stack(xs), *layers)


def apply_layers(fn, x, layers, scan: bool):
    """x -> fn(layer, x) for each layer; lax.scan over stacked layers when scan."""
    if scan:
        x, _ = jax.lax.scan(lambda h, p: (fn(p, h), None), x, layers)
        return x
    for p in layers:
        x = fn(p, x)
    return x


def cross_entropy(logits, targets, weights=None):
    """Mean token cross-entropy (f32); weights (same shape as targets) select tokens."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    if weights is None:
        return jnp.mean(nll)
    w = weights.astype(jnp.float32)
    return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)


def tokens(rng: np.random.Generator, vocab: int, shape) -> np.ndarray:
    return rng.integers(0, vocab, shape, dtype=np.int32)
