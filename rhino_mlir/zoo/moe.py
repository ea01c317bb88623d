"""Mixture of experts with top-k routing and a per-expert capacity (Switch/GShard style).

tokens x (T, D); router logits (T, E); top-k experts per token; a token's slot in an
expert is the running count (cumsum over tokens) of earlier tokens routed there;
tokens past the capacity C are dropped. dispatch (T, E, C) one-hot, combine = dispatch
* gate. Experts: relu(x W1[e]) W2[e] on (E, C, D).
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
    tokens: int = 32
    d_model: int = 16
    d_ff: int = 32
    experts: int = 4
    top_k: int = 2
    capacity: int = 16
    dtype: str = "float32"


def init(cfg: Config, keys: Keys):
    E, D, F = cfg.experts, cfg.d_model, cfg.d_ff
    return {"router": keys.normal((D, E), 1 / np.sqrt(D), cfg.dtype),
            "w1": keys.normal((E, D, F), 1 / np.sqrt(D), cfg.dtype),
            "w2": keys.normal((E, F, D), 1 / np.sqrt(F), cfg.dtype)}


def make(cfg: Config):
    def forward(params, x):
        gates = jax.nn.softmax(x @ params["router"], axis=-1)       # (T, E)
        top_v, top_i = jax.lax.top_k(gates, cfg.top_k)              # (T, k)
        mask = jax.nn.one_hot(top_i, cfg.experts, dtype=jnp.int32)   # (T, k, E)
        # slot of each (token, choice) in its expert: choices of earlier tokens first
        flat = mask.reshape(-1, cfg.experts)                         # (T*k, E)
        pos = (jnp.cumsum(flat, axis=0) - flat).reshape(mask.shape)  # (T, k, E)
        pos = jnp.sum(pos * mask, axis=-1)                          # (T, k)
        keep = pos < cfg.capacity
        slot = jax.nn.one_hot(jnp.where(keep, pos, cfg.capacity), cfg.capacity, dtype=x.dtype)
        dispatch = jnp.einsum("tke,tkc->tec", mask.astype(x.dtype), slot)          # (T, E, C)
        combine = jnp.einsum("tke,tkc,tk->tec", mask.astype(x.dtype), slot, top_v)
        xe = jnp.einsum("tec,td->ecd", dispatch, x)                 # (E, C, D)
        h = jax.nn.relu(jnp.einsum("ecd,edf->ecf", xe, params["w1"]))
        ye = jnp.einsum("ecf,efd->ecd", h, params["w2"])            # (E, C, D)
        return jnp.einsum("tec,ecd->td", combine, ye)               # (T, D)

    def loss(params, batch):
        x, y = batch
        return jnp.mean(jnp.square(forward(params, x) - y))

    sgd_step, adam_step = make_train_steps(loss)
    return forward, loss, adam_step, sgd_step


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((cfg.tokens, cfg.d_model)).astype(cfg.dtype),
            rng.standard_normal((cfg.tokens, cfg.d_model)).astype(cfg.dtype))
