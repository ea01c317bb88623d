"""Multi-layer perceptron: x (B, D0) -> relu(x W1 + b1) ... -> (B, Dn); MSE loss."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 8)     # D0 -> hidden ... -> Dn
    batch: int = 8
    dtype: str = "float32"


def init(cfg: Config, keys: Keys):
    layers = []
    for a, b in zip(cfg.dims[:-1], cfg.dims[1:]):
        layers.append({"w": keys.normal((a, b), 1 / np.sqrt(a), cfg.dtype),
                       "b": keys.normal((b,), 0.1, cfg.dtype)})
    return {"layers": layers}


def forward(params, x):
    n = len(params["layers"])
    for i, l in enumerate(params["layers"]):
        x = x @ l["w"] + l["b"]                              # (B, D_i) @ (D_i, D_i+1)
        if i < n - 1:
            x = jax.nn.relu(x)
    return x


def loss(params, batch):
    x, y = batch
    return jnp.mean(jnp.square(forward(params, x) - y))


train_step_sgd, train_step_adam = make_train_steps(loss)


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((cfg.batch, cfg.dims[0])).astype(cfg.dtype),
            rng.standard_normal((cfg.batch, cfg.dims[-1])).astype(cfg.dtype))
