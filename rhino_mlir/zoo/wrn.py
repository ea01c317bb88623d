"""Wide ResNet (Zagoruyko & Komodakis 2016) in the torchvision wide_resnet50_2 layout.

stem: conv 7x7/2 (base ch) + BN + ReLU, max-pool 3x3/2; stages of bottleneck blocks
    y = relu(x' + BN(conv1x1(relu(BN(conv3x3/s(relu(BN(conv1x1(x)))))))))
with inner width base * width * 2^stage and output 4 * base * 2^stage channels; the
first block of a stage has stride s (2 after stage 0) and a 1x1 projection shortcut.
Global average pool, dense classifier. BatchNorm uses the batch's statistics (training
mode; a reduction over the batch, so data parallelism all-reduces them: sync BN).
NHWC activations, HWIO kernels. WRN-50-2: stages (3, 4, 6, 3), base 64, width 2,
224 x 224 images, 1000 classes: 68.9M parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import layers as L
from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    stages: tuple[int, ...] = (1, 1)
    base: int = 8
    width: int = 2
    size: int = 32               # H = W
    classes: int = 10
    batch: int = 4
    dtype: str = "float32"


CONFIGS = {
    "wrn-tiny": Config(),
    "wrn-50-2": Config(stages=(3, 4, 6, 3), base=64, width=2, size=224, classes=1000, batch=64),
}


def _conv_p(keys: Keys, k: int, cin: int, cout: int, dt):
    return {"w": keys.normal((k, k, cin, cout), float(np.sqrt(2 / (k * k * cin))), dt),
            "g": keys.ones(cout, dt), "b": keys.zeros(cout, dt)}


def init(cfg: Config, keys: Keys):
    dt, b = cfg.dtype, cfg.base
    params = {"stem": _conv_p(keys, 7, 3, b, dt), "stages": []}
    cin = b
    for s, n in enumerate(cfg.stages):
        mid, out = b * cfg.width * 2 ** s, 4 * b * 2 ** s
        blocks = []
        for i in range(n):
            blk = {"c1": _conv_p(keys, 1, cin, mid, dt), "c2": _conv_p(keys, 3, mid, mid, dt),
                   "c3": _conv_p(keys, 1, mid, out, dt)}
            if i == 0:
                blk["proj"] = _conv_p(keys, 1, cin, out, dt)
            blocks.append(blk)
            cin = out
        params["stages"].append(blocks)
    params["head"] = {"w": keys.normal((cin, cfg.classes), float(1 / np.sqrt(cin)), dt),
                      "b": keys.zeros(cfg.classes, dt)}
    return params


def conv_bn(p, x, stride=1, relu=True):
    y = jax.lax.conv_general_dilated(x, p["w"], (stride, stride), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    mu = jnp.mean(y, axis=(0, 1, 2))                               # (C,) over batch and space
    var = jnp.mean(jnp.square(y - mu), axis=(0, 1, 2))
    y = (y - mu) * jax.lax.rsqrt(var + 1e-5) * p["g"] + p["b"]
    return jax.nn.relu(y) if relu else y


def maxpool3s2(x):                                                 # (B, H, W, C) -> (B, H/2, W/2, C)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")


def forward(params, x):                                            # x (B, H, W, 3) -> (B, classes)
    x = maxpool3s2(conv_bn(params["stem"], x, 2))
    for s, blocks in enumerate(params["stages"]):
        for i, blk in enumerate(blocks):
            stride = 2 if (i == 0 and s > 0) else 1
            h = conv_bn(blk["c2"], conv_bn(blk["c1"], x), stride)
            h = conv_bn(blk["c3"], h, relu=False)
            short = conv_bn(blk["proj"], x, stride, relu=False) if "proj" in blk else x
            x = jax.nn.relu(h + short)
    x = jnp.mean(x, axis=(1, 2))                                   # (B, C)
    return x @ params["head"]["w"] + params["head"]["b"]


def loss(params, batch):
    x, labels = batch
    return L.cross_entropy(forward(params, x), labels)


def make(cfg: Config) -> dict:
    sgd_step, adam_step = make_train_steps(loss)
    return {"forward": forward, "loss": loss, "train_step_sgd": sgd_step, "train_step": adam_step}


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((cfg.batch, cfg.size, cfg.size, 3)).astype(cfg.dtype),
            rng.integers(0, cfg.classes, (cfg.batch,), dtype=np.int32))
