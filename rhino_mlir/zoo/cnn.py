"""Small conv net: NHWC images -> conv3x3+relu -> maxpool2 -> conv3x3+relu -> mean -> dense."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    batch: int = 4
    size: int = 8                 # H = W
    channels: tuple[int, ...] = (3, 8, 16)
    classes: int = 10
    dtype: str = "float32"


def init(cfg: Config, keys: Keys):
    convs = [{"w": keys.normal((3, 3, a, b), 1 / np.sqrt(9 * a), cfg.dtype),      # HWIO
              "b": keys.normal((b,), 0.1, cfg.dtype)}
             for a, b in zip(cfg.channels[:-1], cfg.channels[1:])]
    c = cfg.channels[-1]
    return {"convs": convs,
            "head": {"w": keys.normal((c, cfg.classes), 1 / np.sqrt(c), cfg.dtype),
                     "b": keys.normal((cfg.classes,), 0.1, cfg.dtype)}}


def conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + b)


def maxpool2(x):                                                  # (B, H, W, C) -> (B, H/2, W/2, C)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def forward(params, x):
    for i, c in enumerate(params["convs"]):
        x = conv(x, c["w"], c["b"])
        if i == 0:
            x = maxpool2(x)
    x = jnp.mean(x, axis=(1, 2))                                   # (B, C)
    return x @ params["head"]["w"] + params["head"]["b"]           # (B, classes)


def loss(params, batch):
    x, labels = batch
    logp = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


train_step_sgd, train_step_adam = make_train_steps(loss)


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((cfg.batch, cfg.size, cfg.size, cfg.channels[0])).astype(cfg.dtype),
            rng.integers(0, cfg.classes, (cfg.batch,), dtype=np.int32))
