"""GPT-style transformer (nanoGPT layout) in plain JAX.

block: x + attn(ln1(x)); x + mlp(ln2(x)), causal multi-head attention, tanh-GELU.
gpt: token + position embedding (gathers), n_layer blocks, final layernorm, logits
tied to the token embedding, cross-entropy loss (a gather of the target logit).
`train_step` = forward + backward + Adam in one function, as DESIGN.md asks.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    n_layer: int = 2
    d_model: int = 32
    n_head: int = 4
    vocab: int = 64
    seq: int = 16
    batch: int = 2
    mlp_ratio: int = 4
    dtype: str = "float32"
    scan_layers: bool = False     # stack layers and lax.scan over them (a while loop)


GPT2_SMALL = Config(n_layer=12, d_model=768, n_head=12, vocab=50257, seq=1024, batch=8)


def layernorm(x, g, b, eps=1e-5):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * g + b


def attention(p, x, n_head):
    B, T, D = x.shape
    hs = D // n_head
    qkv = x @ p["w_qkv"] + p["b_qkv"]                             # (B, T, 3D)
    q, k, v = jnp.split(qkv, 3, axis=-1)
    heads = lambda t: t.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)  # noqa: E731 (B, nh, T, hs)
    q, k, v = heads(q), heads(k), heads(v)
    att = (q @ k.transpose(0, 1, 3, 2)) / np.sqrt(hs).astype(x.dtype)  # (B, nh, T, T)
    causal = jnp.tril(jnp.ones((T, T), bool))
    att = jnp.where(causal, att, jnp.asarray(-1e9, x.dtype))
    att = jax.nn.softmax(att, axis=-1)
    y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, D)           # (B, T, D)
    return y @ p["w_o"] + p["b_o"]


def mlp(p, x):
    h = jax.nn.gelu(x @ p["w_fc"] + p["b_fc"], approximate=True)  # (B, T, 4D)
    return h @ p["w_proj"] + p["b_proj"]


def block(p, x, n_head):
    x = x + attention(p["attn"], layernorm(x, p["ln1_g"], p["ln1_b"]), n_head)
    return x + mlp(p["mlp"], layernorm(x, p["ln2_g"], p["ln2_b"]))


def init_block(cfg: Config, keys: Keys):
    D, H = cfg.d_model, cfg.mlp_ratio * cfg.d_model
    w = lambda *s: keys.normal(s, 0.02, cfg.dtype)  # noqa: E731
    z = lambda *s: keys.zeros(s, cfg.dtype)  # noqa: E731
    o = lambda *s: keys.ones(s, cfg.dtype)  # noqa: E731
    return {"ln1_g": o(D), "ln1_b": z(D), "ln2_g": o(D), "ln2_b": z(D),
            "attn": {"w_qkv": w(D, 3 * D), "b_qkv": z(3 * D), "w_o": w(D, D), "b_o": z(D)},
            "mlp": {"w_fc": w(D, H), "b_fc": z(H), "w_proj": w(H, D), "b_proj": z(D)}}


def init(cfg: Config, keys: Keys):
    layers = [init_block(cfg, keys) for _ in range(cfg.n_layer)]
    if cfg.scan_layers:
        layers = jax.tree_util.tree_map(lambda *xs: keys.stack(xs), *layers)
    return {"wte": keys.normal((cfg.vocab, cfg.d_model), 0.02, cfg.dtype),
            "wpe": keys.normal((cfg.seq, cfg.d_model), 0.01, cfg.dtype),
            "layers": layers,
            "ln_f_g": keys.ones(cfg.d_model, cfg.dtype), "ln_f_b": keys.zeros(cfg.d_model, cfg.dtype)}


def make(cfg: Config):
    """forward(params, idx) -> logits, loss(params, batch), train_step (Adam), sgd step."""
    def forward(params, idx):                                      # idx (B, T) int32
        T = idx.shape[1]
        x = params["wte"][idx] + params["wpe"][:T]                 # (B, T, D) gathers
        if cfg.scan_layers:
            x, _ = jax.lax.scan(lambda h, p: (block(p, h, cfg.n_head), None), x, params["layers"])
        else:
            for p in params["layers"]:
                x = block(p, x, cfg.n_head)
        x = layernorm(x, params["ln_f_g"], params["ln_f_b"])
        return x @ params["wte"].T                                 # (B, T, V)

    def loss(params, batch):
        idx, targets = batch
        logp = jax.nn.log_softmax(forward(params, idx).astype(jnp.float32), axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))

    sgd_step, adam_step = make_train_steps(loss)
    return forward, loss, adam_step, sgd_step


def make_block(cfg: Config):
    """One block alone: block_forward(params, x (B, T, D))."""
    return lambda p, x: block(p, x, cfg.n_head)


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    idx = rng.integers(0, cfg.vocab, (cfg.batch, cfg.seq), dtype=np.int32)
    return idx, np.roll(idx, -1, axis=1)


__all__ = ["Config", "GPT2_SMALL", "init", "make", "make_block", "batch"]
