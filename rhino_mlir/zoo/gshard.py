"""GShard-style mixture-of-experts language model (Lepikhin et al. 2020).

A pre-LN causal transformer whose every other feed-forward layer is a mixture of E
experts with top-2 gating. Tokens are split into G groups of S (here: one group per
sequence, G = B, S = T); each expert takes at most C = ceil(2 S / E * capacity_factor)
tokens per group, later tokens overflow (dropped, the residual carries them).
    gates (G, S, E) -> top-1 / top-2 masks, slot = running count per expert (cumsum over S)
    combine (G, S, E, C) = gate weight at (expert, slot); dispatch = combine > 0
    expert_in  = einsum(gsec, gsm -> egcm)        # (E, G, C, M): the expert dimension
    expert_out = relu(expert_in wi[e]) wo[e]      # wi (E, M, H), wo (E, H, M)
    y          = einsum(gsec, egcm -> gsm)
The loss adds GShard's auxiliary load-balancing term, mean(me * ce) * E^2 (weight 0.01).
Layers come in (dense, MoE) pairs: scan_layers scans over the pairs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import layers as L
from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    n_layer: int = 2             # total; must be even ((dense, MoE) pairs)
    d_model: int = 32
    n_head: int = 4
    d_ff: int = 64
    experts: int = 4
    capacity_factor: float = 1.25
    aux_weight: float = 0.01
    vocab: int = 64
    seq: int = 16
    batch: int = 2
    dtype: str = "float32"
    scan_layers: bool = False


CONFIGS = {
    "gshard-moe-tiny": Config(),
    # 24 layers (12 MoE) x d 1024, 32 experts of d_ff 4096: 3.5B parameters, 3.2B in experts
    "gshard-moe-3.5b": Config(n_layer=24, d_model=1024, n_head=16, d_ff=4096, experts=32,
                              vocab=32000, seq=1024, batch=64),
}


def capacity(cfg: Config) -> int:
    return max(1, math.ceil(2 * cfg.seq / cfg.experts * cfg.capacity_factor))


def moe(p, x, cfg: Config):
    """x (G, S, M) -> (y (G, S, M), aux loss scalar)."""
    E, C, dt = cfg.experts, capacity(cfg), x.dtype
    gates = jax.nn.softmax((x @ p["wg"]).astype(jnp.float32), axis=-1)      # (G, S, E)
    m1 = jax.nn.one_hot(jnp.argmax(gates, -1), E, dtype=jnp.float32)
    m2 = jax.nn.one_hot(jnp.argmax(gates * (1 - m1), -1), E, dtype=jnp.float32)
    aux = jnp.mean(jnp.mean(gates, 1) * jnp.mean(m1, 1)) * E * E
    pos1 = jnp.cumsum(m1, axis=1) - m1                             # (G, S, E) exclusive count
    m1 = m1 * (pos1 < C)
    pos2 = jnp.cumsum(m2, axis=1) - m2 + jnp.sum(m1, axis=1, keepdims=True)
    m2 = m2 * (pos2 < C)
    g1, g2 = jnp.sum(gates * m1, -1), jnp.sum(gates * m2, -1)      # (G, S)
    denom = jnp.maximum(g1 + g2, 1e-9)
    slot = lambda pos, m: jax.nn.one_hot(jnp.sum(pos * m, -1).astype(jnp.int32), C)  # noqa: E731 (G, S, C)
    combine = ((g1 / denom)[..., None, None] * m1[..., None] * slot(pos1, m1)[:, :, None, :]
               + (g2 / denom)[..., None, None] * m2[..., None] * slot(pos2, m2)[:, :, None, :])
    dispatch = (combine > 0).astype(dt)                           # (G, S, E, C)
    xe = jnp.einsum("gsec,gsm->egcm", dispatch, x)                 # (E, G, C, M)
    h = jax.nn.relu(jnp.einsum("egcm,emh->egch", xe, p["wi"]))
    ye = jnp.einsum("egch,ehm->egcm", h, p["wo"])
    return jnp.einsum("gsec,egcm->gsm", combine.astype(dt), ye), aux


def _pair(cfg: Config, keys: Keys):
    D, H, E, dt = cfg.d_model, cfg.d_ff, cfg.experts, cfg.dtype
    dense = {"ln1": L.norm_params(keys, D, dt), "attn": L.attn_params(keys, D, dt),
             "ln2": L.norm_params(keys, D, dt), "ffn": L.ffn_params(keys, D, H, dt)}
    sparse = {"ln1": L.norm_params(keys, D, dt), "attn": L.attn_params(keys, D, dt),
              "ln2": L.norm_params(keys, D, dt),
              "moe": {"wg": keys.normal((D, E), 0.02, dt), "wi": keys.normal((E, D, H), 0.02, dt),
                      "wo": keys.normal((E, H, D), 0.02, dt)}}
    return {"dense": dense, "moe": sparse}


def init(cfg: Config, keys: Keys):
    if cfg.n_layer % 2:
        raise ValueError(f"gshard-moe: n_layer must be even ((dense, MoE) pairs), got {cfg.n_layer}")
    D, dt = cfg.d_model, cfg.dtype
    return {"wte": keys.normal((cfg.vocab, D), 0.02, dt), "wpe": keys.normal((cfg.seq, D), 0.01, dt),
            "layers": L.stack([_pair(cfg, keys) for _ in range(cfg.n_layer // 2)], keys, cfg.scan_layers),
            "ln_f": L.norm_params(keys, D, dt)}


def make(cfg: Config) -> dict:
    nh = cfg.n_head

    def pair(p, carry):
        x, aux = carry
        causal = L.causal_mask(x.shape[1])
        d, s = p["dense"], p["moe"]
        x = x + L.self_attention(d["attn"], L.norm(d["ln1"], x), nh, causal)
        x = x + L.ffn(d["ffn"], L.norm(d["ln2"], x), L.gelu)
        x = x + L.self_attention(s["attn"], L.norm(s["ln1"], x), nh, causal)
        y, a = moe(s["moe"], L.norm(s["ln2"], x), cfg)
        return x + y, aux + a

    def body(params, idx):                                         # -> logits (B, T, V), aux
        x = params["wte"][idx] + params["wpe"][:idx.shape[1]]
        x, aux = L.apply_layers(pair, (x, jnp.zeros((), jnp.float32)), params["layers"], cfg.scan_layers)
        return L.norm(params["ln_f"], x) @ params["wte"].T, aux

    def forward(params, idx):
        return body(params, idx)[0]

    def loss(params, batch):
        idx, targets = batch
        logits, aux = body(params, idx)
        return L.cross_entropy(logits, targets) + cfg.aux_weight * aux / max(1, cfg.n_layer // 2)

    sgd_step, adam_step = make_train_steps(loss)
    return {"forward": forward, "loss": loss, "train_step_sgd": sgd_step, "train_step": adam_step}


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    idx = L.tokens(rng, cfg.vocab, (cfg.batch, cfg.seq))
    return idx, np.roll(idx, -1, axis=1)
